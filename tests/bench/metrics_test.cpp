// Metric arithmetic on scripted streams: every expected value is computed by hand below.
#include "c8/bench/metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "scripted_timeline.h"

namespace c8::bench {
namespace {

TEST(Metrics, PerRequestValuesFromStream) {
  auto v = Timeline();
  ASSERT_TRUE(v[0].success);
  EXPECT_DOUBLE_EQ(v[0].ttft, 0.5);
  EXPECT_EQ(v[0].itl, (std::vector<double>{0.25, 0.25, 0.5}));
  EXPECT_DOUBLE_EQ(v[0].latency, 1.5);  // the last token chunk, not [DONE]
  EXPECT_EQ(v[0].output_tokens, 4);
  EXPECT_EQ(v[0].prompt_len, 10);  // usage.prompt_tokens replaces the dataset's count
  EXPECT_EQ(v[0].generated_text, "xxxx");
  EXPECT_EQ(v[2].output_tokens, 0);
  EXPECT_EQ(v[2].num_chunks, 1);
  EXPECT_EQ(v[2].prompt_len, 30);
}

TEST(Metrics, HandComputedAggregates) {
  const auto v = Timeline();
  BenchmarkMetrics m = ComputeMetrics(v, 4.0, {99}, nullptr);
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.total_input, 10 + 20 + 30);
  EXPECT_EQ(m.total_output, 4 + 5 + 1);
  EXPECT_EQ(m.output_lens, (std::vector<int64_t>{4, 5, 1, 0}));
  EXPECT_DOUBLE_EQ(m.request_throughput, 3 / 4.0);
  EXPECT_DOUBLE_EQ(m.output_throughput, 10 / 4.0);
  EXPECT_DOUBLE_EQ(m.total_token_throughput, 70 / 4.0);

  // TTFT [0.5 1.0 0.75]: mean 0.75; median 0.75; std sqrt((.0625+.0625+0)/3) = 0.2041241;
  // P99: sorted [.5 .75 1], rank .99*2 = 1.98 -> .75 + .98*.25 = 0.995.
  EXPECT_NEAR(m.ttft.mean_ms, 750.0, 1e-9);
  EXPECT_NEAR(m.ttft.median_ms, 750.0, 1e-9);
  EXPECT_NEAR(m.ttft.std_ms, 204.12414523193150, 1e-9);
  ASSERT_EQ(m.ttft.percentiles_ms.size(), 1u);
  EXPECT_EQ(m.ttft.percentiles_ms[0].first, 99.0);
  EXPECT_NEAR(m.ttft.percentiles_ms[0].second, 995.0, 1e-9);

  // TPOT [1/3 0.25] (C has one token): mean 0.2916667; median same; std 0.0416667;
  // P99: rank .99 -> .25 + .99*(1/3 - .25) = 0.3325.
  EXPECT_NEAR(m.tpot.mean_ms, 291.66666666666667, 1e-9);
  EXPECT_NEAR(m.tpot.median_ms, 291.66666666666667, 1e-9);
  EXPECT_NEAR(m.tpot.std_ms, 41.666666666666667, 1e-9);
  EXPECT_NEAR(m.tpot.percentiles_ms[0].second, 332.5, 1e-9);

  // ITL pooled [.25 .25 .5 1.0]: mean 0.5; median (.25+.5)/2 = 0.375;
  // std sqrt((.0625+.0625+0+.25)/4) = 0.3061862; P99: rank 2.97 -> .5 + .97*.5 = 0.985.
  EXPECT_NEAR(m.itl.mean_ms, 500.0, 1e-9);
  EXPECT_NEAR(m.itl.median_ms, 375.0, 1e-9);
  EXPECT_NEAR(m.itl.std_ms, 306.18621784789726, 1e-9);
  EXPECT_NEAR(m.itl.percentiles_ms[0].second, 985.0, 1e-9);

  // E2EL [1.5 2.0 0.75]: mean 1.4166667; median 1.5; P99: rank 1.98 -> 1.5 + .98*.5 = 1.99.
  EXPECT_NEAR(m.e2el.mean_ms, 1416.6666666666667, 1e-9);
  EXPECT_NEAR(m.e2el.median_ms, 1500.0, 1e-9);
  EXPECT_NEAR(m.e2el.percentiles_ms[0].second, 1990.0, 1e-9);

  // Peak output tokens/s: first send 100.0, last end 102.25 -> ceil(2.25)+1 = 4 buckets.
  // Chunk times since 100.0: A .5 .75 1.0 1.5, B 1.25 2.25, C 1.25. Tokens, not chunks: B has
  // 5 output tokens in 2 chunks, so each of its chunks counts 2.5 tokens (A 4 in 4, C 1 in 1).
  //   bucket 0: A.5 A.75 = 2; bucket 1: A1.0 A1.5 B1.25 C1.25 = 1+1+2.5+1 = 5.5;
  //   bucket 2: B2.25 = 2.5.
  EXPECT_DOUBLE_EQ(m.max_output_tokens_per_s, 5.5);
  // In flight: A [100, 101.5), B [100.25, 102.25), C [100.5, 101.25) -> 3 at 100.5.
  EXPECT_EQ(m.max_concurrent_requests, 3);
}

TEST(Metrics, OutputLengthFallsBackToTokenCounter) {
  auto v = Timeline();
  // C has no usage: a tokenizer-based counter gives 3 tokens for its text "x".
  BenchmarkMetrics m = ComputeMetrics(v, 4.0, {99}, [](const std::string&) { return 3; });
  EXPECT_EQ(m.output_lens[2], 3);
  EXPECT_EQ(m.total_output, 4 + 5 + 3);
}

TEST(Metrics, NumpyPercentilesAndMedian) {
  std::vector<double> v = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};  // 1..10 shuffled
  EXPECT_DOUBLE_EQ(Percentile(v, 50), 5.5);
  EXPECT_DOUBLE_EQ(Percentile(v, 90), 9.1);   // rank 8.1
  EXPECT_DOUBLE_EQ(Percentile(v, 99), 9.91);  // rank 8.91
  EXPECT_DOUBLE_EQ(Percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile(v, 100), 10);
  EXPECT_DOUBLE_EQ(Median(v), 5.5);
  EXPECT_DOUBLE_EQ(Median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(Mean(v), 5.5);
  EXPECT_NEAR(StdDev(v), 2.8722813232690143, 1e-12);  // sqrt(8.25)
  // Empty lists give 0 (vLLM's np.mean(xs or 0)).
  EXPECT_EQ(Percentile({}, 99), 0);
  EXPECT_EQ(Mean({}), 0);
  MetricSummary s = Summarize({}, {50, 90, 99});
  EXPECT_EQ(s.percentiles_ms.size(), 3u);
  EXPECT_EQ(s.percentiles_ms[2].second, 0);
}

TEST(Metrics, AllFailed) {
  RequestOutput f;
  f.error = "x";
  BenchmarkMetrics m = ComputeMetrics({f, f}, 2.0, {99}, nullptr);
  EXPECT_EQ(m.completed, 0);
  EXPECT_EQ(m.failed, 2);
  EXPECT_EQ(m.max_output_tokens_per_s, 0);
  EXPECT_EQ(m.ttft.mean_ms, 0);
  EXPECT_EQ(m.request_throughput, 0);
}

}  // namespace
}  // namespace c8::bench
