// The interface between the worker (runner/worker.h) and a model family: the Llama / Qwen
// decoder (decoder_model.h) and DeepSeek V2 / V3 with MLA and MoE (deepseek_model.h). A model
// holds one rank's weights and activation buffers and queues the backend ops of one step;
// metadata upload, attention planning, graphs, KV storage and sampling belong to the worker.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "c8/backend/backend.h"
#include "c8/backend/communicator.h"
#include "c8/formats/model_config.h"
#include "c8/kv/kv_cache.h"
#include "c8/model/tensor_parallel.h"
#include "c8/util/progress.h"

namespace c8 {

struct ModelLoadOptions {
  int64_t max_model_len = 0;  // 0: the config's max_position_embeddings
  ProgressFn progress;        // per tensor
  // "auto": safetensors of the directory; "dummy": seeded random weights for config.json
  // alone (benchmarks of large shapes; identical on every backend and every tensor-parallel
  // size for the same seed).
  std::string load_format = "auto";
  uint64_t seed = 0;
  // Dummy weights only: the linears' scheme ("" or "none": 16-bit; "w8a8", "w8a8_dynamic").
  // Real checkpoints say theirs in quant_model_description.json.
  std::string quantization;
};

// The device pointers of one step (all backend memory) and its sizes.
struct StepBuffers {
  const AttentionMeta* meta = nullptr;
  const int32_t* ids = nullptr;        // (T)
  const int32_t* positions = nullptr;  // (T)
  const int32_t* rows = nullptr;       // (R) rows of T whose logits are wanted
  int64_t T = 0, R = 0;
};

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;  // the whole model's
  virtual const ShardSpec& shard() const = 0;
  virtual int64_t max_model_len() const = 0;
  virtual Backend& backend() = 0;
  virtual int64_t WeightBytes() const = 0;
  // The linears' scheme, e.g. "W8A8 x196, FLOAT x56" ("FLOAT" for a 16-bit model).
  virtual const std::string& quant_summary() const = 0;
  // This rank's attention heads (MLA: the heads and the latent "head" of the cache).
  virtual AttentionShape attention_shape() const = 0;

  // Calibration hook: called per layer with this step's cache entries on the host: k, v
  // (T, this rank's KV heads * head_dim) fp32 (MLA: the latent and the roped key). Slows the
  // forward pass.
  using KvObserver = std::function<void(int64_t layer, const float* k, const float* v, int64_t T)>;
  virtual void SetKvObserver(KvObserver observer) = 0;
  virtual bool has_kv_observer() const = 0;
  // Calibration of W8A8 activation ranges: called with the fp32 host copy of every linear's
  // input, x (T, K), at site 0 (q|k|v input), 1 (o_proj input), 2 (gate|up input), 3
  // (down_proj input) of each layer. Slows steps down (copies to the host).
  // MLA calibration: the absorbed query q_lat (T, heads * kv_lora_rank) of every layer, on the
  // host (only MLA models call it).
  using QueryObserver = std::function<void(int64_t layer, const float* q, int64_t T)>;
  virtual void SetQueryObserver(QueryObserver observer) { (void)observer; }
  using ActivationObserver =
      std::function<void(int64_t layer, int site, const float* x, int64_t T, int64_t K)>;
  virtual void SetActivationObserver(ActivationObserver observer) = 0;

  // Grows the activation buffers to hold `tokens` tokens and `rows` logits rows. Buffers that
  // move bump scratch_epoch() (graphs captured against the old ones must not run).
  virtual Status EnsureScratch(int64_t tokens, int64_t rows) = 0;
  virtual uint64_t scratch_epoch() const = 0;
  // Queues every op of one step (no copies, no synchronization: also what graphs capture):
  // writes every new token's cache entries into `cache` and leaves fp32 logits (R, vocab) in
  // `logits` (model-owned backend memory, valid until the next step; empty when R = 0).
  // EnsureScratch must have been called for T and R.
  virtual void QueueStep(const StepBuffers& step, KvCache& cache, Tensor* logits) = 0;
  // The first `rows` rows of the logits buffer QueueStep fills: fp32 (rows, vocab).
  virtual Tensor logits(int64_t rows) const = 0;
};

// Reads <dir>/config.json and loads the model family its architecture names.
Result<std::unique_ptr<Model>> LoadModel(const std::string& dir, Backend& backend,
                                         const ModelLoadOptions& options,
                                         const ShardSpec& shard = {}, Communicator* comm = nullptr);

}  // namespace c8
