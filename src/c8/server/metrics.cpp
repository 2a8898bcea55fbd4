#include "c8/server/metrics.h"

#include <algorithm>
#include <cstdio>

namespace c8 {
namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}

void Header(std::string* out, const std::string& name, const char* type, const char* help) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void Sample(std::string* out, const std::string& name, const std::string& labels, double v) {
  *out += name + "{" + labels + "} " + Num(v) + "\n";
}

std::vector<double> LengthBuckets() {
  std::vector<double> b;
  for (double x = 1; x <= 1048576; x *= 2) b.push_back(x);
  return b;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double v) {
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::Render(const std::string& name, const std::string& labels, std::string* out) const {
  int64_t cum = 0;
  const std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    *out += name + "_bucket{" + labels + sep + "le=\"" + Num(bounds_[i]) + "\"} " +
            std::to_string(cum) + "\n";
  }
  *out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(count_) + "\n";
  *out += name + "_sum{" + labels + "} " + Num(sum_) + "\n";
  *out += name + "_count{" + labels + "} " + std::to_string(count_) + "\n";
}

std::string EscapeLabelValue(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\') {
      o += "\\\\";
    } else if (c == '"') {
      o += "\\\"";
    } else if (c == '\n') {
      o += "\\n";
    } else {
      o += c;
    }
  }
  return o;
}

ServerMetrics::ServerMetrics(std::string model_name)
    : labels_("model_name=\"" + EscapeLabelValue(model_name) + "\""),
      ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
             1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}),
      itl_({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
            20.0, 40.0, 80.0}),
      tpot_({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
             10.0, 20.0, 40.0, 80.0}),
      e2e_({0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
            30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}),
      prompt_len_(LengthBuckets()),
      gen_len_(LengthBuckets()) {
  for (const char* r : {"stop", "length", "abort", "error"}) success_[r] = 0;
}

void ServerMetrics::ObserveFirstToken(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.Observe(s);
}

void ServerMetrics::ObserveInterToken(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  itl_.Observe(s);
}

void ServerMetrics::ObserveFinished(const std::string& reason, double e2e, double tpot,
                                    int64_t prompt_tokens, int64_t generation_tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  ++success_[reason];
  e2e_.Observe(e2e);
  if (tpot >= 0) tpot_.Observe(tpot);
  prompt_len_.Observe(static_cast<double>(prompt_tokens));
  gen_len_.Observe(static_cast<double>(generation_tokens));
}

std::string ServerMetrics::Render(const EngineStats& s) const {
  std::string o;
  const std::string& L = labels_;
  auto gauge = [&](const char* name, const char* help, double v) {
    Header(&o, name, "gauge", help);
    Sample(&o, name, L, v);
  };
  auto counter = [&](const char* name, const char* help, double v) {
    Header(&o, name, "counter", help);
    Sample(&o, name, L, v);
  };
  gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
        s.num_running);
  gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", s.num_waiting);
  gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", s.kv_usage);
  gauge("c8:kv_cache_free_blocks", "KV-cache blocks on the free list (cached or empty).",
        s.num_free_blocks);
  gauge("c8:kv_cache_total_blocks", "Usable KV-cache blocks.", s.num_blocks);
  counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.",
          static_cast<double>(s.prompt_tokens));
  counter("vllm:generation_tokens_total", "Number of generation tokens processed.",
          static_cast<double>(s.generation_tokens));
  counter("vllm:prefix_cache_queries_total",
          "Prefix cache queries, in terms of number of queried tokens.",
          static_cast<double>(s.prefix_queries));
  counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.",
          static_cast<double>(s.prefix_hits));
  counter("vllm:num_preemptions_total", "Cumulative number of preemptions from the engine.",
          static_cast<double>(s.num_preemptions));

  std::lock_guard<std::mutex> lock(mu_);
  Header(&o, "vllm:request_success_total", "counter", "Count of successfully processed requests.");
  for (const auto& [reason, n] : success_) {
    o += "vllm:request_success_total{" + L + ",finished_reason=\"" + EscapeLabelValue(reason) +
         "\"} " + std::to_string(n) + "\n";
  }
  auto hist = [&](const char* name, const char* help, const Histogram& h) {
    Header(&o, name, "histogram", help);
    h.Render(name, L, &o);
  };
  hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", ttft_);
  hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", itl_);
  hist("vllm:time_per_output_token_seconds",
       "Histogram of time per output token in seconds (per request mean after the first).", tpot_);
  hist("vllm:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.",
       e2e_);
  hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", prompt_len_);
  hist("vllm:request_generation_tokens", "Number of generation tokens processed.", gen_len_);
  return o;
}

}  // namespace c8
