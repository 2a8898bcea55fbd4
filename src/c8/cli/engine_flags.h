// The engine flags every model-running subcommand shares (vLLM spellings), and their
// translation into EngineOptions / EngineConfig. One place, so `generate`, `serve` and the
// offline benchmarks accept the same flags with the same meaning.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "c8/engine/llm_engine.h"
#include "c8/engine/model_bundle.h"

namespace c8::cli {

struct EngineFlags {
  std::string device = "auto";
  int threads = 0;
  int tensor_parallel_size = 1;
  std::string kv_cache_dtype = "auto";
  int64_t max_model_len = 0;
  int64_t block_size = 16;
  bool enforce_eager = false;
  double kv_cache_gib = -1.0;  // auto
  double gpu_memory_utilization = 0.9;
  int32_t max_num_seqs = 256;
  int32_t max_num_batched_tokens = 2048;
  bool prefix_caching = true;
  std::string load_format = "auto";
  std::string quantization;
  uint64_t seed = 0;

  // Adds --device --threads --kv-cache-dtype --max-model-len --block-size --kv-cache-memory
  // --max-num-seqs --max-num-batched-tokens --[no-]enable-prefix-caching --load-format.
  void Add(CLI::App* sub);
  EngineOptions ToEngineOptions(const std::string& model_dir, bool progress) const;
  // max_model_len comes from the loaded model (the engine clamps to it).
  EngineConfig ToEngineConfig(int64_t model_max_len) const;
};

}  // namespace c8::cli
