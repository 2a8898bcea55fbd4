// The benchmark's statistics, pure arithmetic over the per-request outputs (vLLM's
// calculate_metrics). Statistics follow numpy: mean; population std (ddof = 0); median (mean of
// the two middle values for an even count); percentiles with numpy's default "linear"
// interpolation; all of them 0 for an empty list (vLLM's `np.mean(xs or 0)`).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "c8/bench/request.h"

namespace c8::bench {

double Mean(const std::vector<double>& v);
double Median(std::vector<double> v);
double StdDev(const std::vector<double>& v);
// p in [0, 100]: numpy.percentile(v, p) (method="linear").
double Percentile(std::vector<double> v, double p);

// Statistics of one latency metric, in milliseconds.
struct MetricSummary {
  double mean_ms = 0, median_ms = 0, std_ms = 0;
  std::vector<std::pair<double, double>> percentiles_ms;  // (p, value)
};
// `seconds` -> MetricSummary (values x 1000).
MetricSummary Summarize(const std::vector<double>& seconds, const std::vector<double>& percentiles);

struct BenchmarkMetrics {
  int64_t completed = 0, failed = 0;
  int64_t total_input = 0, total_output = 0;
  double request_throughput = 0;      // completed / duration
  double output_throughput = 0;       // total_output / duration
  double total_token_throughput = 0;  // (total_input + total_output) / duration
  // ttft: per successful request; tpot: (latency - ttft) / (output_len - 1) for requests with
  // output_len > 1; itl: every gap of every successful request, pooled; e2el: latency;
  // client_queue_time: time waiting for a --max-concurrency slot; e2el_including_client_queue:
  // latency + client_queue_time.
  MetricSummary ttft, tpot, itl, e2el, client_queue_time, e2el_including_client_queue;
  // Output tokens landing in the busiest 1-second bucket since the first successful request
  // was sent, counting one token per streamed chunk at start + ttft + cumulative itl (vLLM).
  double max_output_tokens_per_s = 0;
  // Most successful requests in flight at once ([start, start + latency) intervals).
  int64_t max_concurrent_requests = 0;
  // Per request (0 for failed ones): usage.completion_tokens when the server sent it, else
  // `count_tokens(generated_text)` when given, else the number of token chunks.
  std::vector<int64_t> output_lens;
};

BenchmarkMetrics ComputeMetrics(const std::vector<RequestOutput>& outputs, double duration_s,
                                const std::vector<double>& percentiles,
                                const std::function<int64_t(const std::string&)>& count_tokens);

}  // namespace c8::bench
