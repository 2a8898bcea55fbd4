// Everything loaded from one model directory for serving: backend, weights, tokenizer,
// chat template, generation defaults and the paged KV cache.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "c8/backend/backend.h"
#include "c8/engine/generation_config.h"
#include "c8/kv/kv_cache.h"
#include "c8/model/decoder_model.h"
#include "c8/tokenizer/chat_template.h"
#include "c8/tokenizer/tokenizer.h"
#include "c8/util/progress.h"

namespace c8 {

struct EngineOptions {
  std::string model_dir;
  BackendOptions backend;
  std::string kv_cache_dtype = "auto";  // auto | bf16 | fp32 | int8
  int64_t max_model_len = 0;            // 0: config max_position_embeddings (capped at 32768)
  int64_t block_size = 16;
  // KV cache GiB; 0 = exactly one full context; < 0 (auto) = 1 GiB on the CPU, and on a GPU
  // gpu_memory_utilization of device memory minus weights and the measured activation peak.
  double kv_cache_gib = -1.0;
  double gpu_memory_utilization = 0.9;
  int64_t max_num_batched_tokens = 2048;  // the activation-peak profile run
  int64_t max_num_seqs = 256;
  std::string load_format = "auto";  // auto | dummy (random weights from config.json alone)
  uint64_t seed = 0;                 // dummy weights
  // Decode steps run eagerly (no CUDA graphs); graphs cover batches up to max_num_seqs (<= 512).
  bool enforce_eager = false;
  ProgressFn progress;
};

// KV dtype of every layer: `want` is auto (the checkpoint's C8 layers int8, others bf16),
// bf16, fp32 (all layers) or int8 (the checkpoint's C8 layers; an error without scales).
// With dummy weights (no checkpoint) int8 gets synthetic per-channel scales.
Result<std::vector<KvLayerConfig>> ResolveKvLayers(const std::string& model_dir,
                                                   const ModelConfig& config,
                                                   const std::string& want,
                                                   bool dummy_weights = false);

struct ModelBundle {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<DecoderModel> model;
  std::optional<Tokenizer> tokenizer;  // absent only for dummy weights without tokenizer.json
  std::optional<ChatTemplate> chat_template;  // absent when the model ships none
  std::string chat_template_error;            // why it is absent
  GenerationDefaults defaults;
  std::unique_ptr<KvCache> kv_cache;
  std::string kv_summary;  // how the KV cache was sized and how many tokens fit per dtype

  static Result<std::unique_ptr<ModelBundle>> Load(const EngineOptions& options);

  // Tokenizes a plain prompt (adding BOS when tokenizer_config.json asks for it).
  std::vector<int32_t> EncodePrompt(const std::string& text) const;
  // Renders the chat template (add_generation_prompt) and tokenizes the result.
  Result<std::vector<int32_t>> EncodeChat(const nlohmann::json& messages,
                                          const nlohmann::json& extra = {}) const;
};

}  // namespace c8
