// One sequence being served: its tokens, how many of them have K/V in the cache, its
// blocks, and its sampling / detokenizing state. Owned by the engine thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "c8/engine/stop_checker.h"
#include "c8/sampling/sampler.h"
#include "c8/sampling/sampling_params.h"
#include "c8/sampling/token_constraint.h"
#include "c8/tokenizer/stream_decoder.h"

namespace c8 {

enum class RequestStatus { kWaiting, kRunning, kPreempted, kFinished, kAborted };

struct Request {
  std::string id;
  uint64_t arrival_seq = 0;  // FCFS order
  std::vector<int32_t> prompt;
  std::vector<int32_t> output;
  SamplingParams params;
  RequestStatus status = RequestStatus::kWaiting;

  // Tokens (prompt + output prefix) whose K/V is in the cache.
  int32_t num_computed = 0;
  // Cache blocks holding tokens [i * block_size, (i + 1) * block_size).
  std::vector<int32_t> blocks;
  // Chained hashes of the full blocks cached so far (block_hashes.size() <= blocks.size()).
  std::vector<uint64_t> block_hashes;
  int32_t num_prefix_hit_tokens = 0;  // prompt tokens served by the prefix cache
  int32_t num_preemptions = 0;

  // Sampling and output processing.
  std::optional<SamplerRng> rng;
  std::unique_ptr<StopChecker> stop;
  std::unique_ptr<StreamDecoder> decoder;
  std::shared_ptr<TokenConstraint> constraint;  // structured output; null: unconstrained

  int32_t num_tokens() const { return static_cast<int32_t>(prompt.size() + output.size()); }
  int32_t TokenAt(int32_t i) const {
    const int32_t p = static_cast<int32_t>(prompt.size());
    return i < p ? prompt[i] : output[i - p];
  }
  bool finished() const {
    return status == RequestStatus::kFinished || status == RequestStatus::kAborted;
  }
};

}  // namespace c8
