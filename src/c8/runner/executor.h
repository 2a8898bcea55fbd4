// The engine's one door to the devices: it loads the model onto one worker per rank, sizes the
// paged KV cache for all of them (the same block count everywhere: the scheduler and block pool
// stay single, one block table for all ranks), and runs each step on every rank.
//
// Threads: with one rank the worker runs on the caller's thread (the engine thread), exactly as
// an engine without tensor parallelism. With N ranks each worker has its own thread (CUDA: bound
// to GPU r); Execute hands the same StepInput to all of them, waits, and returns rank 0's
// sampled tokens. A rank that fails mid-step aborts the group's communicators (no rank stays
// blocked in a collective) and the executor turns fatal(): every later step fails at once with
// the message, and the server stops.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "c8/runner/engine_options.h"
#include "c8/runner/step.h"
#include "c8/runner/worker.h"

namespace c8 {

class RankThreads;

class Executor {
 public:
  static Result<std::unique_ptr<Executor>> Create(const EngineOptions& options);
  ~Executor();

  const ModelConfig& config() const { return workers_[0]->model().config(); }
  int64_t max_model_len() const { return workers_[0]->model().max_model_len(); }
  int tensor_parallel_size() const { return static_cast<int>(workers_.size()); }
  std::string device_name() const;  // "cpu", "cuda", "cuda x 2"
  // The whole model's cache shape (all KV heads) with the block count every rank holds.
  const KvCacheSpec& kv_spec() const { return spec_; }
  KvDType layer_dtype(int64_t layer) const { return layers_[static_cast<size_t>(layer)].dtype; }
  const std::vector<KvLayerConfig>& kv_layers() const { return layers_; }
  // Bytes of K+V of one token over all layers and ranks.
  int64_t KvBytesPerToken() const;
  const std::string& kv_summary() const { return kv_summary_; }

  // One step on every rank; `out` gets rank 0's samples. A non-Ok status fails the step's
  // requests; after a fatal failure every call returns fatal().
  Status Execute(const StepInput& in, StepOutput* out);
  const Status& fatal() const { return fatal_; }
  // Why decode graphs were turned off on some rank (said once), or empty.
  std::string TakeGraphWarning();

  // Runs fn on every rank's thread (rank order of results); the first error is returned. A
  // failing rank aborts the communicators so that no other rank hangs in a collective.
  Status RunOnAll(const std::function<Status(Worker&)>& fn);
  // Runs fn on every rank's thread even after a fatal failure (freeing rank-owned memory).
  void CleanupOnAll(const std::function<void(Worker&)>& fn);
  Worker& worker(int rank) { return *workers_[static_cast<size_t>(rank)]; }

 private:
  Executor() = default;
  Status SizeKvCache(const EngineOptions& o);
  // One rank: binds worker 0's device to the calling thread when it is not the last one seen.
  void BindCaller();
  // Records `st` as fatal (said once on stderr) and returns it.
  Status SetFatal(const Status& st);

  std::vector<std::unique_ptr<Communicator>> comms_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<RankThreads> threads_;
  std::vector<KvLayerConfig> layers_;
  KvCacheSpec spec_;
  std::string kv_summary_;
  Status fatal_;
  std::thread::id bound_thread_;
  bool graph_warned_ = false;
};

}  // namespace c8
