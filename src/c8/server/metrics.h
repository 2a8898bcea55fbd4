// Server metrics in the Prometheus text exposition format (version 0.0.4), named as vLLM
// names them where it has a name, every sample labelled model_name="...":
//   gauges     vllm:num_requests_running, vllm:num_requests_waiting, vllm:kv_cache_usage_perc
//              (0..1), c8:kv_cache_free_blocks, c8:kv_cache_total_blocks
//   counters   vllm:prompt_tokens_total, vllm:generation_tokens_total (tokens computed),
//              vllm:prefix_cache_queries_total, vllm:prefix_cache_hits_total (prompt tokens),
//              vllm:num_preemptions_total, vllm:request_success_total{finished_reason=...}
//   histograms vllm:time_to_first_token_seconds, vllm:inter_token_latency_seconds,
//              vllm:time_per_output_token_seconds, vllm:e2e_request_latency_seconds,
//              vllm:request_prompt_tokens, vllm:request_generation_tokens
// Engine-side values come from an EngineStats snapshot at render time; request timings are
// observed by the HTTP threads (thread-safe).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "c8/engine/llm_engine.h"

namespace c8 {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  // Appends "<name>_bucket{labels,le=...} n" (cumulative, ending with +Inf), _sum and _count.
  void Render(const std::string& name, const std::string& labels, std::string* out) const;
  int64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // per bucket, not cumulative; last = above every bound
  double sum_ = 0;
  int64_t count_ = 0;
};

// Escapes a Prometheus label value (backslash, double quote, newline).
std::string EscapeLabelValue(const std::string& v);

class ServerMetrics {
 public:
  explicit ServerMetrics(std::string model_name);

  void ObserveFirstToken(double seconds);  // since the request arrived
  void ObserveInterToken(double seconds);  // between two consecutive output tokens
  // A finished engine request. reason: "stop" | "length" | "abort" | "error".
  // tpot < 0 when the request produced fewer than two tokens.
  void ObserveFinished(const std::string& reason, double e2e_seconds, double tpot_seconds,
                       int64_t prompt_tokens, int64_t generation_tokens);

  std::string Render(const EngineStats& stats) const;

 private:
  std::string labels_;  // model_name="..."
  mutable std::mutex mu_;
  Histogram ttft_, itl_, tpot_, e2e_, prompt_len_, gen_len_;
  std::map<std::string, int64_t> success_;
};

}  // namespace c8
