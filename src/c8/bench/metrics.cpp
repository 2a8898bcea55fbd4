#include "c8/bench/metrics.h"

#include <algorithm>
#include <cmath>

namespace c8::bench {

double Mean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double StdDev(const std::vector<double>& v) {
  if (v.empty()) return 0;
  const double m = Mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double idx = p / 100.0 * static_cast<double>(v.size() - 1);
  const double lo_f = std::floor(idx);
  const size_t lo = static_cast<size_t>(lo_f);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  const double t = idx - lo_f;
  const double a = v[lo], b = v[hi];
  // numpy's _lerp: a + (b - a) * t, computed from the nearer end.
  return t >= 0.5 ? b - (b - a) * (1.0 - t) : a + (b - a) * t;
}

MetricSummary Summarize(const std::vector<double>& seconds,
                        const std::vector<double>& percentiles) {
  MetricSummary s;
  s.mean_ms = Mean(seconds) * 1000.0;
  s.median_ms = Median(seconds) * 1000.0;
  s.std_ms = StdDev(seconds) * 1000.0;
  for (double p : percentiles) s.percentiles_ms.emplace_back(p, Percentile(seconds, p) * 1000.0);
  return s;
}

BenchmarkMetrics ComputeMetrics(const std::vector<RequestOutput>& outputs, double duration_s,
                                const std::vector<double>& percentiles,
                                const std::function<int64_t(const std::string&)>& count_tokens) {
  BenchmarkMetrics m;
  std::vector<double> ttfts, tpots, itls, e2els, queues, e2els_q;
  for (const RequestOutput& o : outputs) {
    if (!o.success) {
      ++m.failed;
      m.output_lens.push_back(0);
      continue;
    }
    int64_t out_len = o.output_tokens;
    if (out_len <= 0) out_len = count_tokens ? count_tokens(o.generated_text) : o.num_chunks;
    m.output_lens.push_back(out_len);
    m.total_input += o.prompt_len;
    m.total_output += out_len;
    if (out_len > 1) tpots.push_back((o.latency - o.ttft) / static_cast<double>(out_len - 1));
    itls.insert(itls.end(), o.itl.begin(), o.itl.end());
    ttfts.push_back(o.ttft);
    e2els.push_back(o.latency);
    queues.push_back(o.client_queue_time);
    e2els_q.push_back(o.latency + o.client_queue_time);
    ++m.completed;
  }
  if (duration_s > 0) {
    m.request_throughput = m.completed / duration_s;
    m.output_throughput = m.total_output / duration_s;
    m.total_token_throughput = (m.total_input + m.total_output) / duration_s;
  }
  m.ttft = Summarize(ttfts, percentiles);
  m.tpot = Summarize(tpots, percentiles);
  m.itl = Summarize(itls, percentiles);
  m.e2el = Summarize(e2els, percentiles);
  m.client_queue_time = Summarize(queues, percentiles);
  m.e2el_including_client_queue = Summarize(e2els_q, percentiles);

  // Peak output tokens per second and peak concurrency over the successful requests.
  double min_start = INFINITY, max_end = -INFINITY;
  for (const RequestOutput& o : outputs) {
    if (!o.success) continue;
    min_start = std::min(min_start, o.start_time);
    max_end = std::max(max_end, o.start_time + o.latency);
  }
  if (m.completed > 0) {
    const int64_t buckets = static_cast<int64_t>(std::ceil(max_end - min_start)) + 1;
    std::vector<double> tokens_per_s(buckets, 0.0);
    std::vector<std::pair<double, int>> events;
    for (size_t i = 0; i < outputs.size(); ++i) {
      const RequestOutput& o = outputs[i];
      if (!o.success) continue;
      // Tokens, not chunks: a server that puts several tokens into one chunk gets each chunk
      // counted as its share of the request's output tokens.
      const int64_t out_len = m.output_lens[i];  // one entry per output, failed ones too
      const int64_t chunks = 1 + static_cast<int64_t>(o.itl.size());
      const double per_chunk =
          out_len > chunks ? static_cast<double>(out_len) / static_cast<double>(chunks) : 1.0;
      double t = o.start_time + o.ttft;
      auto add = [&](double when) {
        const double rel = when - min_start;
        if (rel < 0) return;
        const int64_t b = static_cast<int64_t>(rel);  // Python int(): truncation
        if (b < buckets) tokens_per_s[b] += per_chunk;
      };
      add(t);
      for (double gap : o.itl) {
        t += gap;
        add(t);
      }
      events.emplace_back(o.start_time, 1);
      events.emplace_back(o.start_time + o.latency, -1);
    }
    m.max_output_tokens_per_s = *std::max_element(tokens_per_s.begin(), tokens_per_s.end());
    std::sort(events.begin(), events.end());  // at equal times -1 (end) sorts before +1
    int64_t cur = 0;
    for (auto& [when, d] : events) {
      cur += d;
      m.max_concurrent_requests = std::max(m.max_concurrent_requests, cur);
    }
  }
  return m;
}

}  // namespace c8::bench
