#include "c8/bench/report.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace c8::bench {

namespace {

struct MetricDesc {
  const char* key;     // "ttft"
  const char* name;    // "TTFT"
  const char* header;  // "Time to First Token"
};
constexpr MetricDesc kMetrics[] = {
    {"ttft", "TTFT", "Time to First Token"},
    {"tpot", "TPOT", "Time per Output Token (excl. 1st token)"},
    {"itl", "ITL", "Inter-token Latency"},
    {"e2el", "E2EL", "End-to-end Latency"},
    {"client_queue_time", "Client Queue Time", "Client-side Queueing"},
    {"e2el_including_client_queue", "E2EL incl. Client Queue",
     "Queue-inclusive End-to-end Latency"},
};

const MetricSummary& SummaryOf(const BenchmarkMetrics& m, const std::string& key) {
  if (key == "ttft") return m.ttft;
  if (key == "tpot") return m.tpot;
  if (key == "itl") return m.itl;
  if (key == "e2el") return m.e2el;
  if (key == "client_queue_time") return m.client_queue_time;
  return m.e2el_including_client_queue;
}

// The metric sections printed, in vLLM's order: selected ones, the client-queue ones only with
// --max-concurrency (the queue-inclusive E2EL also only with a finite request rate).
std::vector<const MetricDesc*> PrintedMetrics(const ReportConfig& cfg) {
  std::vector<const MetricDesc*> out;
  for (const MetricDesc& d : kMetrics) {
    const std::string key = d.key;
    bool selected = false;
    for (const std::string& s : cfg.percentile_metrics) selected = selected || s == key;
    if (!selected) continue;
    if (key == "client_queue_time" && !cfg.max_concurrency) continue;
    if (key == "e2el_including_client_queue" &&
        (!cfg.max_concurrency || std::isinf(cfg.request_rate))) {
      continue;
    }
    out.push_back(&d);
  }
  return out;
}

std::string PercentileWord(double p) {
  if (std::floor(p) == p && std::fabs(p) < 1e15) {
    return std::to_string(static_cast<int64_t>(p));
  }
  return PyFloatRepr(p);
}

}  // namespace

std::string PyFloatRepr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string s(buf, res.ptr);  // "-d.ddde+XX"
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  const size_t e_pos = s.find('e');
  std::string digits = s.substr(0, e_pos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp10 = std::atoi(s.c_str() + e_pos + 1);
  const int decpt = exp10 + 1;  // digits d1 d2 ... with the point after position decpt
  std::string out;
  if (decpt <= -4 || decpt > 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof(e), "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += e;
  } else if (decpt <= 0) {
    out = "0." + std::string(-decpt, '0') + digits;
  } else if (decpt >= static_cast<int>(digits.size())) {
    out = digits + std::string(decpt - digits.size(), '0') + ".0";
  } else {
    out = digits.substr(0, decpt) + "." + digits.substr(decpt);
  }
  return sign + out;
}

std::string CenterBanner(const std::string& s, int width, char fill) {
  const int n = static_cast<int>(s.size());
  if (n >= width) return s;
  const int left = (width - n) / 2;
  return std::string(left, fill) + s + std::string(width - n - left, fill);
}

std::string Row(const std::string& label, int64_t value) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%-40s %-10lld", label.c_str(), static_cast<long long>(value));
  return buf;
}

std::string Row(const std::string& label, double value) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), "%-40s %-10.2f", label.c_str(), value);
  return buf;
}

bool IsKnownPercentileMetric(const std::string& name) {
  for (const MetricDesc& d : kMetrics) {
    if (name == d.key) return true;
  }
  return false;
}

std::string FormatResultTable(const BenchmarkMetrics& m, const ReportConfig& cfg) {
  std::string t;
  auto line = [&t](const std::string& s) { t += s + "\n"; };
  line(CenterBanner(" Serving Benchmark Result ", 50, '='));
  line(Row("Successful requests:", m.completed));
  line(Row("Failed requests:", m.failed));
  if (cfg.max_concurrency) line(Row("Maximum request concurrency:", *cfg.max_concurrency));
  if (!std::isinf(cfg.request_rate)) line(Row("Request rate configured (RPS):", cfg.request_rate));
  line(Row("Benchmark duration (s):", cfg.duration_s));
  line(Row("Total input tokens:", m.total_input));
  line(Row("Total generated tokens:", m.total_output));
  line(Row("Request throughput (req/s):", m.request_throughput));
  line(Row("Output token throughput (tok/s):", m.output_throughput));
  line(Row("Peak output token throughput (tok/s):", m.max_output_tokens_per_s));
  line(Row("Peak concurrent requests:", static_cast<double>(m.max_concurrent_requests)));
  line(Row("Total token throughput (tok/s):", m.total_token_throughput));
  for (const MetricDesc* d : PrintedMetrics(cfg)) {
    const MetricSummary& s = SummaryOf(m, d->key);
    line(CenterBanner(d->header, 50, '-'));
    line(Row(std::string("Mean ") + d->name + " (ms):", s.mean_ms));
    line(Row(std::string("Median ") + d->name + " (ms):", s.median_ms));
    for (auto& [p, v] : s.percentiles_ms) {
      std::string label = "P";  // appends, not "P" + ...: dodges a GCC 12 -Wrestrict false alarm
      label += PercentileWord(p);
      label += std::string(" ") + d->name + " (ms):";
      line(Row(label, v));
    }
  }
  line(std::string(50, '='));
  return t;
}

nlohmann::ordered_json BuildResultJson(const RunInfo& info, const ReportConfig& cfg,
                                       const BenchmarkMetrics& m,
                                       const std::vector<RequestOutput>& outputs, bool detailed) {
  using J = nlohmann::ordered_json;
  J j = J::object();
  j["date"] = info.date;
  j["endpoint_type"] = info.backend;
  j["backend"] = info.backend;
  j["label"] = info.label ? J(*info.label) : J(nullptr);
  j["model_id"] = info.model_id;
  j["tokenizer_id"] = info.tokenizer_id ? J(*info.tokenizer_id) : J(nullptr);
  j["num_prompts"] = info.num_prompts;
  j["request_rate"] = std::isinf(cfg.request_rate) ? J("inf") : J(cfg.request_rate);
  j["burstiness"] = info.burstiness;
  j["max_concurrency"] = cfg.max_concurrency ? J(*cfg.max_concurrency) : J(nullptr);
  j["duration"] = cfg.duration_s;
  j["completed"] = m.completed;
  j["failed"] = m.failed;
  j["total_input_tokens"] = m.total_input;
  j["total_output_tokens"] = m.total_output;
  j["request_throughput"] = m.request_throughput;
  j["request_goodput"] = nullptr;
  j["output_throughput"] = m.output_throughput;
  j["total_token_throughput"] = m.total_token_throughput;
  J input_lens = J::array(), ttfts = J::array(), itls = J::array(), latencies = J::array(),
    start_times = J::array(), queue_times = J::array(), texts = J::array(), errors = J::array();
  for (const RequestOutput& o : outputs) {
    input_lens.push_back(o.prompt_len);
    ttfts.push_back(o.ttft);
    itls.push_back(o.itl);
    latencies.push_back(o.latency);
    start_times.push_back(o.start_time);
    queue_times.push_back(o.client_queue_time);
    texts.push_back(o.generated_text);
    errors.push_back(o.error);
  }
  if (detailed) {
    j["input_lens"] = std::move(input_lens);
    j["output_lens"] = m.output_lens;
    j["ttfts"] = std::move(ttfts);
    j["itls"] = std::move(itls);
  }
  j["latencies"] = std::move(latencies);
  if (detailed) j["start_times"] = std::move(start_times);
  j["queue_times"] = std::move(queue_times);
  if (detailed) {
    j["generated_texts"] = std::move(texts);
    j["errors"] = std::move(errors);
  }
  j["max_output_tokens_per_s"] = m.max_output_tokens_per_s;
  j["max_concurrent_requests"] = m.max_concurrent_requests;
  j["rtfx"] = 0.0;
  for (const MetricDesc* d : PrintedMetrics(cfg)) {
    const MetricSummary& s = SummaryOf(m, d->key);
    const std::string k = d->key;
    j["mean_" + k + "_ms"] = s.mean_ms;
    j["median_" + k + "_ms"] = s.median_ms;
    j["std_" + k + "_ms"] = s.std_ms;
    for (auto& [p, v] : s.percentiles_ms) {
      std::string key = "p";
      key += PercentileWord(p);
      key += "_" + k + "_ms";
      j[key] = v;
    }
  }
  return j;
}

std::string DefaultResultFileName(const RunInfo& info, const ReportConfig& cfg) {
  std::string base_model = info.model_id;
  if (size_t slash = base_model.rfind('/'); slash != std::string::npos) {
    base_model = base_model.substr(slash + 1);
  }
  std::string conc =
      cfg.max_concurrency ? "-concurrency" + std::to_string(*cfg.max_concurrency) : "";
  std::string label = info.label.value_or(info.backend);
  if (label.empty()) label = info.backend;
  return label + "-" + PyFloatRepr(cfg.request_rate) + "qps" + conc + "-" + base_model + "-" +
         info.date + ".json";
}

}  // namespace c8::bench
