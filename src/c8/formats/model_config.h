// The decoder-only model description read from a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "c8/util/status.h"

namespace c8 {

enum class Architecture { kLlama, kQwen2, kQwen3 };

// rope_scaling of config.json. Types supported: default (none), linear, llama3, yarn.
struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3, kYarn };
  Type type = Type::kNone;
  double factor = 1.0;
  // llama3
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 0;
  // yarn
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double attention_factor = 0.0;  // 0: derived from factor (0.1 * ln(factor) + 1)
  double mscale = 0.0;
  double mscale_all_dim = 0.0;
  bool truncate = true;
};

struct ModelConfig {
  Architecture arch = Architecture::kLlama;
  std::string architecture_name;  // e.g. "Qwen3ForCausalLM"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projection biases (Qwen2: always true)
  bool qk_norm = false;         // per-head RMSNorm on q and k before RoPE (Qwen3)
  std::vector<int64_t> eos_token_ids;
  int64_t bos_token_id = -1;
  std::string torch_dtype;

  int64_t q_size() const { return num_heads * head_dim; }
  int64_t kv_size() const { return num_kv_heads * head_dim; }
};

// Reads and validates <model_dir>/config.json. Errors name the file and the key.
Result<ModelConfig> LoadModelConfig(const std::string& model_dir);
Result<ModelConfig> ParseModelConfig(const std::string& json_text, const std::string& source_name);

}  // namespace c8
