// Continuous batching with a per-step token budget (vLLM v1 style, no phases): every
// request has num_computed catching up to its token count; decode, chunked prefill and
// prefix-cache hits all follow that one rule. FCFS; when blocks run out the most recently
// admitted running request is preempted (its blocks freed, recomputed later).
// Host-only: no backend, no model. Owned by the engine thread.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "c8/engine/request.h"
#include "c8/kv/kv_cache_manager.h"

namespace c8 {

struct SchedulerConfig {
  int32_t max_num_seqs = 256;
  int32_t max_num_batched_tokens = 2048;
  int32_t max_model_len = 4096;
  bool enable_chunked_prefill = true;
};

struct ScheduledSeq {
  Request* request = nullptr;
  int32_t num_new = 0;     // tokens computed this step: [num_computed, num_computed + num_new)
  int32_t num_cached = 0;  // == request->num_computed at scheduling time
};

struct SchedulerOutput {
  std::vector<ScheduledSeq> seqs;  // running (in admission order), then newly admitted
  std::vector<Request*> preempted;
  int32_t num_tokens = 0;
  bool empty() const { return seqs.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, KvCacheManager& kv) : config_(config), kv_(kv) {}

  // Takes ownership; the request joins the waiting queue.
  void Add(std::unique_ptr<Request> request);
  // Picks this step's work.
  SchedulerOutput Schedule();
  // After the forward pass: advances num_computed of every scheduled sequence and caches
  // newly filled blocks. Returns the sequences that now need a sampled token.
  std::vector<Request*> OnStepDone(const SchedulerOutput& out);
  // Marks a request finished (or aborted) and frees its blocks. The request stays owned
  // until TakeFinished().
  void Finish(Request* request, RequestStatus status);
  // Aborts by id wherever it is; false if unknown.
  bool Abort(const std::string& id);
  // Finished requests, handed back to the caller.
  std::vector<std::unique_ptr<Request>> TakeFinished();

  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  bool HasWork() const { return !running_.empty() || !waiting_.empty(); }
  int64_t num_preemptions() const { return num_preemptions_; }
  KvCacheManager& kv() { return kv_; }

 private:
  void Preempt(Request* r);
  SeqBlocks Blocks(Request* r) { return SeqBlocks{r->blocks, r->block_hashes}; }
  std::vector<int32_t> AllTokens(const Request* r) const;

  SchedulerConfig config_;
  KvCacheManager& kv_;
  std::vector<Request*> running_;
  std::deque<Request*> waiting_;
  std::vector<std::unique_ptr<Request>> owned_;
  std::vector<std::unique_ptr<Request>> finished_;
  int64_t num_preemptions_ = 0;
};

}  // namespace c8
