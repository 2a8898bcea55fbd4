// The synchronous engine core: requests in, one Step() at a time, token/text deltas out.
// Not thread-safe: one engine thread owns it (see engine/async_engine.h for the threaded
// front the server uses). Scheduling, block management, the forward pass, sampling,
// detokenization and stop handling all happen inside Step().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "c8/engine/model_bundle.h"
#include "c8/engine/scheduler.h"

namespace c8 {

struct EngineRequest {
  std::string id;
  std::vector<int32_t> prompt;
  SamplingParams params;
  uint32_t rng_stream = 0;  // distinct per sibling of an n > 1 request
  // Structured output (a compiled grammar's matcher, one per sequence); null: unconstrained.
  std::shared_ptr<TokenConstraint> constraint;
  // Special tokens left out of the streamed text (vLLM's skip_special_tokens); false when a
  // tool-call parser needs tags such as <tool_call> that tokenizers declare special.
  bool skip_special_tokens = true;
};

struct TokenOutput {
  int32_t token_id = -1;
  std::optional<float> logprob;
  int32_t rank = 0;
  std::vector<TokenLogprob> top_logprobs;
};

struct RequestOutput {
  std::string id;
  std::vector<TokenOutput> new_tokens;
  std::string delta;  // text newly safe to stream
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
  StopReason stop_reason;
  std::string error;  // set when the request failed (finished is true)
  int32_t num_prompt_tokens = 0;
  int32_t num_output_tokens = 0;
  int32_t num_cached_tokens = 0;  // prompt tokens served by the prefix cache
};

struct EngineStats {
  int32_t num_running = 0, num_waiting = 0;
  double kv_usage = 0;  // 0..1
  int32_t num_free_blocks = 0, num_blocks = 0;
  int64_t prefix_queries = 0, prefix_hits = 0;  // prompt tokens
  int64_t num_preemptions = 0;
  int64_t prompt_tokens = 0, generation_tokens = 0;  // totals computed
};

struct EngineConfig {
  SchedulerConfig scheduler;
  bool enable_prefix_caching = true;
};

class LlmEngine {
 public:
  LlmEngine(ModelBundle& bundle, const EngineConfig& config);

  // Validates and queues a request. Errors name the field (prompt length, token ids).
  Status AddRequest(EngineRequest request);
  bool Abort(const std::string& id);
  // Runs one scheduling + forward + sampling step. A failure of the forward pass fails
  // every request of the step (reported in their outputs); a fatal executor failure (a
  // tensor-parallel rank died) fails everything and fatal() says why.
  std::vector<RequestOutput> Step();
  bool HasWork() const { return scheduler_.HasWork(); }
  // Set when the devices can no longer run steps (the server stops with this message).
  const Status& fatal() const { return executor_.fatal(); }
  EngineStats stats() const;
  const EngineConfig& config() const { return config_; }
  ModelBundle& bundle() { return bundle_; }

 private:
  // Appends the sampling row of `r` (its logits at `logits_row`) to the step's rows.
  void AddSamplingRow(const Request& r, int32_t logits_row);

  ModelBundle& bundle_;
  EngineConfig config_;
  KvCacheManager kv_;
  Scheduler scheduler_;
  Executor& executor_;
  // Step scratch: what the executor gets (batch + sampling rows) and gives back.
  StepInput step_in_;
  StepOutput step_out_;
  std::vector<bool> sampled_;
  // Structured output of the step: the constrained rows' bitmasks (SamplingRows::allowed) and
  // their requests, filled by step_in_.before_sampling while the forward pass runs.
  std::vector<uint32_t> allowed_;
  std::vector<std::pair<int64_t, Request*>> constrained_;  // (first word, request)
  std::vector<std::pair<Request*, std::string>> constraint_errors_;
  uint64_t next_arrival_ = 0;
  int64_t prompt_tokens_ = 0, generation_tokens_ = 0;
};

}  // namespace c8
