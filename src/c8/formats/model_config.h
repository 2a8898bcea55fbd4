// The decoder-only model description read from a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "c8/util/status.h"

namespace c8 {

enum class Architecture { kLlama, kQwen2, kQwen3, kDeepseekV2, kDeepseekV3 };

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

// Multi-head Latent Attention (DeepSeek V2 / V3). The paged cache holds, per token, the
// kv_a_layernorm-ed latent (kv_lora_rank) as the "K" part and the roped shared key
// (qk_rope_head_dim, always 16-bit) as the "V" part.
struct MlaConfig {
  int64_t q_lora_rank = 0;  // 0: a plain q_proj
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  bool rope_interleave = true;  // rope dims in (x0, x1) pairs (DeepSeek's layout)
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
};

// Mixture of experts (DeepSeek V2 / V3): routed experts plus shared experts; the first
// first_k_dense layers (and layers off moe_layer_freq) keep a dense MLP.
struct MoeConfig {
  enum class Scoring { kSoftmax, kSigmoid };
  // greedy: top-k of the scores; group_limited_greedy: top-k within the topk_group groups of
  // highest max score; noaux_tc (V3): groups ranked by the sum of their top-2 biased scores,
  // experts chosen by biased score, weighted by the unbiased one.
  enum class TopK { kGreedy, kGroupLimited, kNoAuxTc };
  int64_t num_experts = 0;  // n_routed_experts; 0: no MoE
  int64_t top_k = 1;
  int64_t num_shared_experts = 0;
  int64_t intermediate_size = 0;  // moe_intermediate_size (per expert)
  int64_t first_k_dense = 0;
  int64_t layer_freq = 1;
  int64_t n_group = 1, topk_group = 1;
  Scoring scoring = Scoring::kSoftmax;
  TopK topk_method = TopK::kGreedy;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  bool IsMoeLayer(int64_t l) const {
    return num_experts > 0 && l >= first_k_dense && l % layer_freq == 0;
  }
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

  // DeepSeek V2 / V3 only. For them num_kv_heads is 1 and head_dim is kv_lora_rank: the KV
  // cache geometry (one latent "head"); cache_v_dim() is the rope part's width.
  MlaConfig mla;
  MoeConfig moe;
  bool is_mla() const { return mla.kv_lora_rank > 0; }
  int64_t cache_v_dim() const { return is_mla() ? mla.qk_rope_head_dim : head_dim; }

  int64_t q_size() const { return num_heads * head_dim; }
  int64_t kv_size() const { return num_kv_heads * head_dim; }
};

// Reads and validates <model_dir>/config.json. Errors name the file and the key.
Result<ModelConfig> LoadModelConfig(const std::string& model_dir);
Result<ModelConfig> ParseModelConfig(const std::string& json_text, const std::string& source_name);

}  // namespace c8
