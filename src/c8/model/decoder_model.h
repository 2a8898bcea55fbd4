// Llama / Qwen2 / Qwen3 decoder (one implementation, flags for QKV bias and QK-norm), written
// only against the Backend op interface. A thin object: it holds this rank's weights and
// activation buffers and queues the ops of one step; metadata upload, attention planning, graphs,
// KV storage and sampling belong to the worker (runner/worker.h) that drives it.
//
// Tensor parallelism (model/tensor_parallel.h): the model holds its rank's shard and calls the
// communicator after the row-parallel O / down projections and the vocab-parallel embedding
// (all-reduce) and after the LM head (column gather of the logits).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "c8/backend/backend.h"
#include "c8/backend/communicator.h"
#include "c8/formats/model_config.h"
#include "c8/kv/kv_cache.h"
#include "c8/model/model.h"
#include "c8/model/tensor_parallel.h"
#include "c8/model/weight_loader.h"
#include "c8/util/progress.h"

namespace c8 {

class DecoderModel final : public Model {
 public:
  // Reads <dir>/config.json and this rank's slices of the safetensors weights; every missing
  // tensor or shape mismatch is an error naming the tensor. `comm` is null for one rank.
  static Result<std::unique_ptr<DecoderModel>> Load(const std::string& dir, Backend& backend,
                                                    const ModelLoadOptions& options,
                                                    const ShardSpec& shard = {},
                                                    Communicator* comm = nullptr);
  ~DecoderModel() override;

  const ModelConfig& config() const override { return config_; }  // the whole model's
  const ShardSpec& shard() const override { return shard_; }
  int64_t max_model_len() const override { return max_model_len_; }
  Backend& backend() override { return backend_; }
  int64_t WeightBytes() const override { return weight_bytes_; }
  // The linears' scheme, e.g. "W8A8 x196, FLOAT x56" ("FLOAT" for a 16-bit model).
  const std::string& quant_summary() const override { return quant_summary_; }
  // This rank's attention heads.
  AttentionShape attention_shape() const override;

  // Calibration hook: called per layer with this step's K and V after RoPE and QK-norm,
  // on the host: k, v (T, this rank's KV heads * head_dim) fp32. Slows the forward pass.
  void SetKvObserver(KvObserver observer) override { kv_observer_ = std::move(observer); }
  // Calibration of W8A8 activation ranges: called with the fp32 host copy of every linear's
  // input, x (T, K), at site 0 (q|k|v input), 1 (o_proj input), 2 (gate|up input), 3
  // (down_proj input) of each layer. Slows steps down (copies to the host).
  void SetActivationObserver(ActivationObserver observer) override {
    act_observer_ = std::move(observer);
  }
  bool has_kv_observer() const override { return static_cast<bool>(kv_observer_); }

  // Grows the activation buffers to hold `tokens` tokens and `rows` logits rows. Buffers that
  // move bump scratch_epoch() (graphs captured against the old ones must not run).
  Status EnsureScratch(int64_t tokens, int64_t rows) override;
  uint64_t scratch_epoch() const override { return scratch_epoch_; }

  // Queues every op of one step (no copies, no synchronization: also what graphs capture):
  // writes every new token's K/V into `cache` and leaves fp32 logits (R, vocab) in `logits`
  // (model-owned backend memory, valid until the next step; empty when R = 0). EnsureScratch
  // must have been called for T and R.
  void QueueStep(const StepBuffers& step, KvCache& cache, Tensor* logits) override;
  // The first `rows` rows of the logits buffer QueueStep fills: fp32 (rows, vocab).
  Tensor logits(int64_t rows) const override {
    return Tensor(logits_, DType::kF32, {rows, config_.vocab_size});
  }

 private:
  struct Layer {
    Tensor input_norm, post_norm;      // (H)
    Tensor input_norm_b, post_norm_b;  // (H) or empty: anti-outlier smoothing's norm bias
    LinearWeight qkv_w;                // ((hq + 2 hkv) D, H): this rank's heads
    Tensor qkv_b;                      // ((hq + 2 hkv) D) or empty (folded into W8A8)
    Tensor q_norm, k_norm;             // (D) or empty
    LinearWeight o_w;                  // (H, hq D)
    LinearWeight gate_up_w;            // (2 i, H): this rank's gate rows | up rows
    LinearWeight down_w;               // (H, i)
  };
  explicit DecoderModel(Backend& b) : backend_(b) {}
  Status LoadWeights(const WeightStore* ws, const ModelLoadOptions& options);
  void ObserveKv(int64_t layer, const Tensor& qkv, int64_t T);

  Backend& backend_;
  Communicator* comm_ = nullptr;
  ModelConfig config_;
  ShardSpec shard_;
  int64_t max_model_len_ = 0;
  int64_t weight_bytes_ = 0;
  std::string quant_summary_;
  Tensor embed_, final_norm_, final_norm_b_, lm_head_, rope_;  // embed_, lm_head_: (vocab_block, H)
  std::vector<Layer> layers_;
  std::vector<void*> owned_;
  KvObserver kv_observer_;
  ActivationObserver act_observer_;
  std::vector<float> observe_act_;
  void ObserveActivation(int64_t layer, int site, const Tensor& x);
  std::vector<float> observe_qkv_, observe_k_, observe_v_;
  // Activation buffers, grown on demand.
  int64_t scratch_tokens_ = 0, scratch_rows_ = 0;
  uint64_t scratch_epoch_ = 1;
  void *hidden_ = nullptr, *residual_ = nullptr, *normed_ = nullptr, *qkv_ = nullptr,
       *attn_ = nullptr, *gate_up_ = nullptr, *act_ = nullptr, *rows_ = nullptr, *logits_ = nullptr,
       *local_logits_ = nullptr;
};

}  // namespace c8
