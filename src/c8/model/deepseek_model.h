// DeepSeek V2 / V3 (DeepseekV2ForCausalLM, DeepseekV3ForCausalLM), written only against the
// Backend op interface: Multi-head Latent Attention with the absorbed formulation over a paged
// latent cache, and mixture-of-experts MLPs.
//
// Attention of layer l, per token (H heads, latent r, rope R, nope dn, value dv):
//   q        = q_proj(x)  or  q_b_proj(rmsnorm(q_a_proj(x)))          (H, dn + R)
//   c        = rmsnorm(kv_a_proj_with_mqa(x)[:r])                      (r)   -> cache "K"
//   k_pe     = rope(kv_a_proj_with_mqa(x)[r:])                          (R)   -> cache "V"
//   q_lat[h] = W_UK[h]^T q_nope[h]   (W_UK[h] = kv_b_proj rows of head h's nope part)
//   o_lat[h] = sum_j softmax_j(scale (q_lat[h] . c_j + rope(q_pe[h]) . k_pe_j)) c_j
//   out      = o_proj(concat_h W_UV[h] o_lat[h])
// which equals the expanded attention of the reference (k = [W_UK c | k_pe], v = W_UV c).
// DeepSeek's rope rotates (x0, x1) pairs (rope_interleave); scale = 1 / sqrt(dn + R), times
// the YaRN mscale(factor, mscale_all_dim)^2 when the rope is scaled.
//
// MLP of layer l: dense SwiGLU for the first first_k_dense_replace layers; otherwise shared
// experts (one SwiGLU of n_shared * moe_intermediate) plus the routed experts chosen by the
// router (backend MoeRoute / MoeExperts). kv_b_proj and the router stay float.
// One rank only (tensor parallelism for DeepSeek is not implemented).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "c8/formats/safetensors.h"
#include "c8/model/model.h"

namespace c8 {

class DeepseekModel final : public Model {
 public:
  static Result<std::unique_ptr<DeepseekModel>> Load(const std::string& dir, Backend& backend,
                                                     const ModelLoadOptions& options,
                                                     const ShardSpec& shard = {},
                                                     Communicator* comm = nullptr);
  ~DeepseekModel() override;

  const ModelConfig& config() const override { return config_; }
  const ShardSpec& shard() const override { return shard_; }
  int64_t max_model_len() const override { return max_model_len_; }
  Backend& backend() override { return backend_; }
  int64_t WeightBytes() const override { return weight_bytes_; }
  const std::string& quant_summary() const override { return quant_summary_; }
  // num_heads H, one latent "KV head" of head_dim kv_lora_rank, rope_dim, the MLA scale.
  AttentionShape attention_shape() const override;
  // k: the normed latent (T, kv_lora_rank); v: the roped key (T, qk_rope_head_dim).
  void SetKvObserver(KvObserver observer) override { kv_observer_ = std::move(observer); }
  bool has_kv_observer() const override { return static_cast<bool>(kv_observer_); }
  void SetQueryObserver(QueryObserver observer) override { q_observer_ = std::move(observer); }
  // W8A8 activation calibration is not wired for DeepSeek yet: the observer is never called.
  void SetActivationObserver(ActivationObserver observer) override {
    act_observer_ = std::move(observer);
  }
  Status EnsureScratch(int64_t tokens, int64_t rows) override;
  uint64_t scratch_epoch() const override { return scratch_epoch_; }
  void QueueStep(const StepBuffers& step, KvCache& cache, Tensor* logits) override;
  Tensor logits(int64_t rows) const override {
    return Tensor(logits_, DType::kF32, {rows, config_.vocab_size});
  }

 private:
  struct Layer {
    Tensor input_norm, post_norm;  // (hidden)
    LinearWeight q_w;              // (H (dn + R), hidden), no q LoRA
    LinearWeight q_a_w;            // (q_lora_rank, hidden)
    Tensor q_a_norm;               // (q_lora_rank)
    LinearWeight q_b_w;            // (H (dn + R), q_lora_rank)
    LinearWeight kv_a_lat_w;       // (r, hidden): kv_a_proj_with_mqa rows [0, r)
    LinearWeight kv_a_rope_w;      // (R, hidden): rows [r, r + R)
    Tensor kv_a_norm;              // (r)
    Tensor w_uk_t;                 // (H, r, dn): absorbs q_nope into the latent space
    Tensor w_uv;                   // (H, dv, r): latent outputs to values
    LinearWeight o_w;              // (hidden, H dv)
    bool moe = false;
    LinearWeight gate_up_w, down_w;  // dense MLP, or the shared experts of a MoE layer
    bool has_mlp = false;
    MoeRouter router;
    MoeExpertWeights experts;
  };
  explicit DeepseekModel(Backend& b) : backend_(b) {}
  Status LoadWeights(const WeightStore* ws, const ModelLoadOptions& options);

  Backend& backend_;
  ModelConfig config_;
  ShardSpec shard_;
  int64_t max_model_len_ = 0;
  int64_t weight_bytes_ = 0;
  std::string quant_summary_;
  float scale_ = 1.0f;
  Tensor embed_, final_norm_, lm_head_, rope_;
  std::vector<Layer> layers_;
  std::vector<void*> owned_;
  KvObserver kv_observer_;
  QueryObserver q_observer_;
  std::vector<float> observe_q_;
  ActivationObserver act_observer_;
  std::vector<float> observe_k_, observe_v_;
  int64_t scratch_tokens_ = 0, scratch_rows_ = 0;
  uint64_t scratch_epoch_ = 1;
  void *hidden_ = nullptr, *residual_ = nullptr, *normed_ = nullptr, *qa_ = nullptr,
       *qa_normed_ = nullptr, *q_ = nullptr, *kv_lat_ = nullptr, *latent_ = nullptr,
       *kpe_ = nullptr, *q_lat_ = nullptr, *o_lat_ = nullptr, *attn_ = nullptr, *gate_up_ = nullptr,
       *act_ = nullptr, *topk_ids_ = nullptr, *topk_w_ = nullptr, *rows_ = nullptr,
       *logits_ = nullptr;
};

}  // namespace c8
