// One device's share of a model: its backend, its shard of the weights, its slice of the paged
// KV cache (this rank's KV heads and C8 scales; block ids are the same on every rank), the
// per-step metadata upload, the attention plan made once per step and reused by every layer,
// its captured decode graphs, and sampling.
//
// Thread ownership: calls into a worker never overlap. Under tensor parallelism each worker is
// created and driven by its own rank thread (see executor.h). With one rank it is created on the
// thread that builds the executor and driven by whichever thread calls Executor (the serving
// engine's step thread); the executor calls Backend::BindThread whenever that thread changes,
// so every driving thread has the worker's device current before its first op.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "c8/backend/backend.h"
#include "c8/backend/communicator.h"
#include "c8/kv/kv_cache.h"
#include "c8/model/model.h"
#include "c8/runner/decode_graphs.h"
#include "c8/runner/step.h"

namespace c8 {

struct WorkerConfig {
  std::string model_dir;
  ModelLoadOptions load;
  ShardSpec shard;  // default: the whole model
};

// The C8 parameters of this rank's KV heads: channels [kv_head_begin * D, + num_kv_heads * D).
std::vector<KvLayerConfig> SliceKvLayers(const std::vector<KvLayerConfig>& layers,
                                         const ShardSpec& shard, int64_t head_dim);

// Structural checks of one step (sizes agree, ids in the vocabulary, positions below
// max_model_len); errors name what is wrong.
Status CheckForwardBatch(const ForwardBatch& b, const ModelConfig& config, int64_t max_model_len);

class Worker {
 public:
  // Loads this rank's weights onto `backend` (taken over). `comm` (may be null for one rank)
  // must outlive the worker.
  static Result<std::unique_ptr<Worker>> Create(const WorkerConfig& config,
                                                std::unique_ptr<Backend> backend,
                                                Communicator* comm);
  ~Worker();

  Backend& backend() { return *backend_; }
  Model& model() { return *model_; }
  const ShardSpec& shard() const { return model_->shard(); }
  Communicator* comm() { return comm_; }

  // ---- KV cache -------------------------------------------------------------------------
  // Bytes of one block of this rank's KV heads in every layer (layers: the whole model's).
  int64_t KvBytesPerBlock(const std::vector<KvLayerConfig>& layers, int64_t block_size) const;
  // This rank's cache geometry (its KV heads; MLA's latent and rope parts).
  KvCacheSpec CacheSpec(int64_t block_size, int64_t num_blocks) const;
  // One forward pass of `tokens` tokens (`rows` of them sampled) against a temporary cache,
  // so that activation buffers and workspaces reach their peak before free memory is measured.
  Status ProfileActivationPeak(int64_t tokens, int64_t rows,
                               const std::vector<KvLayerConfig>& layers, int64_t block_size);
  std::optional<DeviceMemory> MemoryInfo() { return backend_->MemoryInfo(); }
  // The serving cache: num_blocks blocks of this rank's heads (layers: the whole model's).
  Status CreateKvCache(const std::vector<KvLayerConfig>& layers, int64_t block_size,
                       int64_t num_blocks);
  KvCache& cache() { return *cache_; }
  bool has_cache() const { return cache_ != nullptr; }

  // ---- steps ----------------------------------------------------------------------------
  // Decode steps of up to `max_batch` sequences as graphs (0: off, --enforce-eager).
  void EnableGraphs(int32_t max_batch) { graphs_->Enable(max_batch); }
  const DecodeGraphs& graphs() const { return *graphs_; }
  // Checks the batch, uploads its metadata, plans attention, queues the step against `cache`
  // (a graph when it qualifies). `logits` = fp32 (R, vocab) backend memory valid until the next
  // step (empty when R = 0).
  Status Forward(const ForwardBatch& batch, KvCache& cache, Tensor* logits);
  // Same, with the logits copied to the host (evaluation, tests).
  Status ForwardHost(const ForwardBatch& batch, KvCache& cache, std::vector<float>* logits);
  // One serving step against the worker's cache; samples when `sample` (rank 0 does, the
  // other ranks only run the model). A non-Ok status fails the whole step.
  Status Execute(const StepInput& in, bool sample, StepOutput* out);
  // The backend's sticky first error, then the communicator's (asynchronous failures of
  // queued work surface here; after a synchronizing call they cover the whole step).
  Status Health() const;

 private:
  Worker() = default;

  std::unique_ptr<Backend> backend_;
  Communicator* comm_ = nullptr;
  std::unique_ptr<Model> model_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<DecodeGraphs> graphs_;
  // Integer metadata of eager steps, one backend buffer:
  // ids | positions | query_start | num_cached | block_tables | slot_mapping | logits_rows.
  void* meta_ints_ = nullptr;
  size_t meta_ints_capacity_ = 0;
  std::vector<int32_t> ints_;
};

}  // namespace c8
