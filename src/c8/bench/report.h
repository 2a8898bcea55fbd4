// The result table printed by `vllm bench serve` and the JSON its --save-result writes, with
// vLLM's exact layout: 50-wide banners ("{:=^50}" / "{:-^50}"), rows "{:<40} {:<10}" (integers)
// or "{:<40} {:<10.2f}" (floats; note the trailing padding to 10 columns).
#pragma once

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "c8/bench/metrics.h"
#include "c8/bench/request.h"

namespace c8::bench {

// Python's repr() of a float: "inf", "1.0", "0.5", "2.5e-05".
std::string PyFloatRepr(double v);
// Python's "{s:{c}^{n}}".format(...): `s` centred in `width` columns padded with `fill`.
std::string CenterBanner(const std::string& s, int width, char fill);
// "{:<40} {:<10}" and "{:<40} {:<10.2f}".
std::string Row(const std::string& label, int64_t value);
std::string Row(const std::string& label, double value);

// The metric sections vLLM can print, in its order: ttft, tpot, itl, e2el, client_queue_time,
// e2el_including_client_queue. Returns an error naming an unknown one.
bool IsKnownPercentileMetric(const std::string& name);

struct ReportConfig {
  std::optional<int64_t> max_concurrency;
  double request_rate = INFINITY;
  double duration_s = 0;
  std::vector<std::string> percentile_metrics = {"ttft", "tpot", "itl"};
};

// The table, from the "===== Serving Benchmark Result =====" banner to the closing "=" line,
// each line ending in "\n".
std::string FormatResultTable(const BenchmarkMetrics& m, const ReportConfig& cfg);

// Settings recorded at the top of the result JSON.
struct RunInfo {
  std::string date;  // "%Y%m%d-%H%M%S"
  std::string backend;
  std::optional<std::string> label;
  std::string model_id;
  std::optional<std::string> tokenizer_id;
  int64_t num_prompts = 0;
  double burstiness = 1.0;
};

// vLLM's result JSON, keys in its order: date, endpoint_type, backend, label, model_id,
// tokenizer_id, num_prompts, request_rate ("inf" or a number), burstiness, max_concurrency,
// duration, completed, failed, total_input_tokens, total_output_tokens, request_throughput,
// request_goodput (null), output_throughput, total_token_throughput, [input_lens, output_lens,
// ttfts, itls,] latencies, [start_times,] queue_times, [generated_texts, errors,]
// max_output_tokens_per_s, max_concurrent_requests, rtfx, then mean_/median_/std_/p<P>_<metric>_ms
// for each printed metric. The bracketed per-request lists only with `detailed`
// (vLLM's --save-detailed).
nlohmann::ordered_json BuildResultJson(const RunInfo& info, const ReportConfig& cfg,
                                       const BenchmarkMetrics& m,
                                       const std::vector<RequestOutput>& outputs, bool detailed);

// vLLM's default file name: "{label or backend}-{rate}qps[-concurrency{N}]-{model basename}-
// {date}.json", e.g. "openai-infqps-concurrency8-SmolLM2-20250101-120000.json".
std::string DefaultResultFileName(const RunInfo& info, const ReportConfig& cfg);

}  // namespace c8::bench
