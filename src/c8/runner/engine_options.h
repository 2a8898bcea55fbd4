// Everything needed to put a model on its device(s) for serving: which model, which backend,
// how many tensor-parallel ranks, and how the paged KV cache is sized.
#pragma once

#include <cstdint>
#include <string>

#include "c8/backend/backend.h"
#include "c8/util/progress.h"

namespace c8 {

struct EngineOptions {
  std::string model_dir;
  BackendOptions backend;
  // Ranks (--tensor-parallel-size, -tp): one worker per GPU (rank r on GPU r), or N CPU
  // workers in this process sharing the cores on the CPU backend.
  int tensor_parallel_size = 1;
  std::string kv_cache_dtype = "auto";  // auto | bf16 | fp32 | int8
  int64_t max_model_len = 0;            // 0: config max_position_embeddings (capped at 32768)
  int64_t block_size = 16;
  // KV cache GiB per rank; 0 = exactly one full context; < 0 (auto) = 1 GiB on the CPU, and on
  // a GPU gpu_memory_utilization of device memory minus weights and the measured activation peak.
  double kv_cache_gib = -1.0;
  double gpu_memory_utilization = 0.9;
  int64_t max_num_batched_tokens = 2048;  // the activation-peak profile run
  int64_t max_num_seqs = 256;
  std::string load_format = "auto";  // auto | dummy (random weights from config.json alone)
  // Dummy weights' linear scheme: none | w8a8 | w8a8_dynamic (checkpoints say their own).
  std::string quantization;
  uint64_t seed = 0;  // dummy weights
  // Decode steps run eagerly (no CUDA graphs); graphs cover batches up to max_num_seqs (<= 512).
  bool enforce_eager = false;
  ProgressFn progress;
};

}  // namespace c8
