// Captured decode steps (CUDA graphs) of one worker: one graph per (cache, batch bucket,
// block-table width bucket), captured on first use after an eager run of the padded step,
// replayed after. Batch buckets are vLLM's (1, 2, 4, then multiples of 8); block-table widths
// are powers of two (>= 16 blocks) so that few graphs cover every context (the attention
// kernels skip key ranges past each sequence's context). A graph is re-captured when the
// backend's workspace or the model's activation buffers moved since its capture; a failed
// capture turns graphs off for good (the worker keeps serving eagerly) and says why.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "c8/kv/kv_cache.h"
#include "c8/model/forward_batch.h"
#include "c8/model/model.h"

namespace c8 {

class DecodeGraphs {
 public:
  DecodeGraphs(Backend& backend, Model& model) : backend_(backend), model_(model) {}
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // Decode steps (one new token per sequence, every sequence sampled) of up to `max_batch`
  // sequences run as graphs when the backend has them; 0 turns graphs off (--enforce-eager).
  void Enable(int32_t max_batch);
  int32_t max_batch() const { return max_batch_; }
  // Why graphs were turned off at run time (a capture failed), or empty.
  const std::string& error() const { return error_; }
  size_t size() const { return graphs_.size(); }

  // Runs `b` through a graph (capturing it first if needed) and points `logits` at its
  // (S, vocab) fp32 logits; false (nothing queued) when the batch does not qualify.
  Result<bool> TryRun(const ForwardBatch& b, KvCache& cache, Tensor* logits);

 private:
  struct Entry {
    int64_t id = 0;
    uint64_t backend_epoch = 0, scratch_epoch = 0;
    uint64_t last_use = 0;
  };
  void DestroyAll();

  Backend& backend_;
  Model& model_;
  int32_t max_batch_ = 0;
  int32_t max_blocks_ = 0;  // block-table width capacity of meta_
  std::string error_;
  std::map<std::tuple<uint64_t, int32_t, int32_t>, Entry> graphs_;
  uint64_t clock_ = 0;
  void* meta_ = nullptr;  // ids | positions | query_start | num_cached | tables | slots | rows
  std::vector<int32_t> ints_;
};

}  // namespace c8
