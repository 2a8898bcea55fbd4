// Llama / Qwen2 / Qwen3 decoder (one implementation, flags for QKV bias and QK-norm),
// written only against the Backend op interface.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "c8/backend/backend.h"
#include "c8/formats/model_config.h"
#include "c8/formats/safetensors.h"
#include "c8/kv/kv_cache.h"
#include "c8/model/forward_batch.h"
#include "c8/util/progress.h"

namespace c8 {

struct ModelLoadOptions {
  int64_t max_model_len = 0;  // 0: the config's max_position_embeddings
  ProgressFn progress;        // per tensor
  // "auto": safetensors of the directory; "dummy": seeded random weights for config.json
  // alone (benchmarks of large shapes; identical on every backend for the same seed).
  std::string load_format = "auto";
  uint64_t seed = 0;
};

// Deterministic pseudo-random weights for --load-format dummy: uniform with std `std_dev`
// around `mean`, a function of (seed, name, index) only.
void FillDummyWeights(const std::string& name, uint64_t seed, float mean, float std_dev, float* out,
                      int64_t n);

class DecoderModel {
 public:
  // Reads <dir>/config.json and the safetensors weights; every missing tensor or shape
  // mismatch is an error naming the tensor.
  static Result<std::unique_ptr<DecoderModel>> Load(const std::string& dir, Backend& backend,
                                                    const ModelLoadOptions& options);
  ~DecoderModel();

  const ModelConfig& config() const { return config_; }
  int64_t max_model_len() const { return max_model_len_; }
  Backend& backend() { return backend_; }
  int64_t WeightBytes() const { return weight_bytes_; }

  // Calibration hook: called per layer with this step's K and V after RoPE and QK-norm,
  // on the host: k, v (T, num_kv_heads * head_dim) fp32. Slows the forward pass.
  using KvObserver = std::function<void(int64_t layer, const float* k, const float* v, int64_t T)>;
  void SetKvObserver(KvObserver observer) { kv_observer_ = std::move(observer); }

  // Runs one step over batch: writes every new token's K/V to its slot in `cache` and
  // returns fp32 logits (R, vocab) of the requested rows in `logits`.
  Status Forward(const ForwardBatch& batch, KvCache& cache, std::vector<float>& logits);
  // Decode steps (one new token per sequence, every sequence sampled) of up to `max_batch`
  // sequences run as captured graphs when the backend has them (CUDA graphs): one graph per
  // (batch bucket, block-table width bucket, cache), captured on first use, replayed after.
  // 0 turns graphs off (--enforce-eager). Call before the first forward for best effect.
  void EnableGraphs(int32_t max_batch);
  int32_t graph_max_batch() const { return graph_max_batch_; }
  // Why graphs were turned off at run time (a capture failed), or empty.
  const std::string& graph_error() const { return graph_error_; }
  // Graphs captured so far (for logs and tests).
  size_t num_graphs() const { return graphs_.size(); }

  // Same step, but leaves the logits on the backend: `logits` = fp32 (R, vocab) backend memory
  // owned by the model, valid until the next forward call (empty tensor when R = 0). For
  // Backend::SampleRows, so that only sampled ids cross to the host.
  Status ForwardDevice(const ForwardBatch& batch, KvCache& cache, Tensor* logits);

 private:
  struct Layer {
    Tensor input_norm, post_norm;  // (H)
    Tensor qkv_w;                  // ((Hq + 2 Hkv) D, H)
    Tensor qkv_b;                  // ((Hq + 2 Hkv) D) or empty
    Tensor q_norm, k_norm;         // (D) or empty
    Tensor o_w;                    // (H, Hq D)
    Tensor gate_up_w;              // (2 I, H)
    Tensor down_w;                 // (H, I)
  };
  DecoderModel(Backend& b) : backend_(b) {}
  Status LoadWeights(const WeightStore* ws, const ModelLoadOptions& options);
  void EnsureScratch(int64_t tokens, int64_t logit_rows);
  Status CheckBatch(const ForwardBatch& batch) const;
  // Queues every op of one step (no copies, no synchronization: also what graphs capture).
  // ids, positions, rows: backend int32 (T), (T), (R); logits: fp32 (R, vocab) view or empty.
  void QueueStep(const AttentionMeta& meta, const int32_t* ids, const int32_t* positions,
                 const int32_t* rows, int64_t T, int64_t R, KvCache& cache, Tensor* logits);
  // Decode step through a graph; false (nothing queued) when the batch does not qualify.
  Result<bool> ForwardGraph(const ForwardBatch& batch, KvCache& cache, Tensor* logits);
  void DestroyGraphs();
  void* Track(void* p) {
    owned_.push_back(p);
    return p;
  }

  Backend& backend_;
  ModelConfig config_;
  int64_t max_model_len_ = 0;
  int64_t weight_bytes_ = 0;
  Tensor embed_, final_norm_, lm_head_, rope_;
  std::vector<Layer> layers_;
  std::vector<void*> owned_;
  KvObserver kv_observer_;
  std::vector<float> observe_qkv_, observe_k_, observe_v_;
  // Scratch, grown on demand.
  int64_t scratch_tokens_ = 0, scratch_rows_ = 0;
  void *hidden_ = nullptr, *residual_ = nullptr, *normed_ = nullptr, *qkv_ = nullptr,
       *attn_ = nullptr, *gate_up_ = nullptr, *act_ = nullptr, *rows_ = nullptr, *logits_ = nullptr,
       *meta_ints_ = nullptr;
  size_t meta_ints_capacity_ = 0;
  // Graphs: key (cache id, batch bucket, block-table width) -> captured graph.
  struct GraphEntry {
    int64_t id = 0;
    uint64_t epoch = 0;
    uint64_t last_use = 0;
  };
  int32_t graph_max_batch_ = 0;
  int32_t graph_max_blocks_ = 0;  // block-table width capacity of graph_meta_
  std::string graph_error_;
  std::map<std::tuple<uint64_t, int32_t, int32_t>, GraphEntry> graphs_;
  uint64_t graph_clock_ = 0;
  void* graph_meta_ =
      nullptr;  // ids | positions | query_start | num_cached | tables | slots | rows
  std::vector<int32_t> graph_ints_;
};

}  // namespace c8
