// The printed table and the result JSON follow vLLM's layout exactly (expected lines produced
// with Python's own str.format on the same values).
#include "c8/bench/report.h"

#include <gtest/gtest.h>

#include <string>

#include "c8/bench/metrics.h"
#include "scripted_timeline.h"

namespace c8::bench {
namespace {

TEST(Report, TableMatchesVllmLayout) {
  BenchmarkMetrics m = ComputeMetrics(Timeline(), 4.0, {50, 90, 99}, nullptr);
  ReportConfig cfg;
  cfg.max_concurrency = 8;
  cfg.request_rate = 2.5;
  cfg.duration_s = 4.0;
  cfg.percentile_metrics = {"ttft", "tpot", "itl", "e2el"};
  const std::string expected =
      "============ Serving Benchmark Result ============\n"
      "Successful requests:                     3         \n"
      "Failed requests:                         1         \n"
      "Maximum request concurrency:             8         \n"
      "Request rate configured (RPS):           2.50      \n"
      "Benchmark duration (s):                  4.00      \n"
      "Total input tokens:                      60        \n"
      "Total generated tokens:                  10        \n"
      "Request throughput (req/s):              0.75      \n"
      "Output token throughput (tok/s):         2.50      \n"
      "Peak output token throughput (tok/s):    5.50      \n"  // tokens, not chunks
      "Peak concurrent requests:                3.00      \n"
      "Total token throughput (tok/s):          17.50     \n"
      "---------------Time to First Token----------------\n"
      "Mean TTFT (ms):                          750.00    \n"
      "Median TTFT (ms):                        750.00    \n"
      "P50 TTFT (ms):                           750.00    \n"
      "P90 TTFT (ms):                           950.00    \n"
      "P99 TTFT (ms):                           995.00    \n"
      "-----Time per Output Token (excl. 1st token)------\n"
      "Mean TPOT (ms):                          291.67    \n"
      "Median TPOT (ms):                        291.67    \n"
      "P50 TPOT (ms):                           291.67    \n"
      "P90 TPOT (ms):                           325.00    \n"
      "P99 TPOT (ms):                           332.50    \n"
      "---------------Inter-token Latency----------------\n"
      "Mean ITL (ms):                           500.00    \n"
      "Median ITL (ms):                         375.00    \n"
      "P50 ITL (ms):                            375.00    \n"
      "P90 ITL (ms):                            850.00    \n"
      "P99 ITL (ms):                            985.00    \n"
      "----------------End-to-end Latency----------------\n"
      "Mean E2EL (ms):                          1416.67   \n"
      "Median E2EL (ms):                        1500.00   \n"
      "P50 E2EL (ms):                           1500.00   \n"
      "P90 E2EL (ms):                           1900.00   \n"
      "P99 E2EL (ms):                           1990.00   \n"
      "==================================================\n";
  EXPECT_EQ(FormatResultTable(m, cfg), expected);
}

TEST(Report, DefaultTableIsVllmDefault) {
  // vLLM's defaults: request rate inf (no RPS line), no --max-concurrency (no line), metrics
  // ttft,tpot,itl with P99 only.
  BenchmarkMetrics m = ComputeMetrics(Timeline(), 4.0, {99}, nullptr);
  ReportConfig cfg;
  cfg.duration_s = 4.0;
  const std::string t = FormatResultTable(m, cfg);
  EXPECT_EQ(t.find("Maximum request concurrency"), std::string::npos);
  EXPECT_EQ(t.find("Request rate configured"), std::string::npos);
  EXPECT_EQ(t.find("E2EL"), std::string::npos);
  EXPECT_EQ(t.find("P50"), std::string::npos);
  EXPECT_NE(t.find("P99 ITL (ms):                            985.00    \n"), std::string::npos);
  int lines = 0;
  for (char c : t) lines += c == '\n';
  EXPECT_EQ(lines, 1 + 10 + 3 * 4 + 1);
  // The client-queue sections only appear with --max-concurrency (vLLM does the same).
  cfg.percentile_metrics = {"client_queue_time", "e2el_including_client_queue"};
  EXPECT_EQ(FormatResultTable(m, cfg).find("Client"), std::string::npos);
  cfg.max_concurrency = 2;
  const std::string q = FormatResultTable(m, cfg);
  EXPECT_NE(q.find("---------------Client-side Queueing---------------\n"), std::string::npos);
  EXPECT_NE(q.find("Mean Client Queue Time (ms):"), std::string::npos);
  EXPECT_EQ(q.find("Queue-inclusive"), std::string::npos);  // only with a finite rate
  cfg.request_rate = 4;
  EXPECT_NE(FormatResultTable(m, cfg).find("--------Queue-inclusive End-to-end Latency--------\n"),
            std::string::npos);
}

TEST(Report, PythonFormatting) {
  EXPECT_EQ(CenterBanner("Time to First Token", 50, '-'),
            "---------------Time to First Token----------------");
  EXPECT_EQ(Row("Total input tokens:", int64_t{60}),
            "Total input tokens:                      60        ");
  EXPECT_EQ(Row("Benchmark duration (s):", 123456.789),
            "Benchmark duration (s):                  123456.79 ");
  EXPECT_EQ(PyFloatRepr(INFINITY), "inf");
  EXPECT_EQ(PyFloatRepr(1.0), "1.0");
  EXPECT_EQ(PyFloatRepr(1e-5), "1e-05");
  EXPECT_EQ(PyFloatRepr(2.5e-5), "2.5e-05");
  EXPECT_EQ(PyFloatRepr(1e16), "1e+16");
  EXPECT_EQ(PyFloatRepr(1e15), "1000000000000000.0");
  EXPECT_EQ(PyFloatRepr(0.0001), "0.0001");
  EXPECT_EQ(PyFloatRepr(123.456), "123.456");
  EXPECT_EQ(PyFloatRepr(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(PyFloatRepr(-2.0), "-2.0");
}

TEST(Report, ResultJsonKeysAndFileName) {
  auto outputs = Timeline();
  BenchmarkMetrics m = ComputeMetrics(outputs, 4.0, {99, 99.9}, nullptr);
  ReportConfig cfg;
  cfg.duration_s = 4.0;
  RunInfo info;
  info.date = "20250102-030405";
  info.backend = "openai";
  info.model_id = "org/SmolLM2-135M";
  info.num_prompts = 4;
  auto j = BuildResultJson(info, cfg, m, outputs, /*detailed=*/true);
  std::vector<std::string> keys;
  for (auto& [k, v] : j.items()) keys.push_back(k);
  const std::vector<std::string> expected = {"date",
                                             "endpoint_type",
                                             "backend",
                                             "label",
                                             "model_id",
                                             "tokenizer_id",
                                             "num_prompts",
                                             "request_rate",
                                             "burstiness",
                                             "max_concurrency",
                                             "duration",
                                             "completed",
                                             "failed",
                                             "total_input_tokens",
                                             "total_output_tokens",
                                             "request_throughput",
                                             "request_goodput",
                                             "output_throughput",
                                             "total_token_throughput",
                                             "input_lens",
                                             "output_lens",
                                             "ttfts",
                                             "itls",
                                             "latencies",
                                             "start_times",
                                             "queue_times",
                                             "generated_texts",
                                             "errors",
                                             "max_output_tokens_per_s",
                                             "max_concurrent_requests",
                                             "rtfx",
                                             "mean_ttft_ms",
                                             "median_ttft_ms",
                                             "std_ttft_ms",
                                             "p99_ttft_ms",
                                             "p99.9_ttft_ms",
                                             "mean_tpot_ms",
                                             "median_tpot_ms",
                                             "std_tpot_ms",
                                             "p99_tpot_ms",
                                             "p99.9_tpot_ms",
                                             "mean_itl_ms",
                                             "median_itl_ms",
                                             "std_itl_ms",
                                             "p99_itl_ms",
                                             "p99.9_itl_ms"};
  EXPECT_EQ(keys, expected);
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_TRUE(j["max_concurrency"].is_null());
  EXPECT_EQ(j["completed"], 3);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["total_output_tokens"], 10);
  EXPECT_EQ(j["output_lens"], nlohmann::json({4, 5, 1, 0}));
  EXPECT_EQ(j["errors"][3], "HTTP 500 Internal Server Error: boom");
  EXPECT_DOUBLE_EQ(j["p99_ttft_ms"].get<double>(), 995.0);
  // Without --save-detailed the per-request lists are left out, as in vLLM.
  auto k = BuildResultJson(info, cfg, m, outputs, false);
  EXPECT_FALSE(k.contains("ttfts"));
  EXPECT_FALSE(k.contains("generated_texts"));
  EXPECT_TRUE(k.contains("latencies"));
  EXPECT_EQ(DefaultResultFileName(info, cfg), "openai-infqps-SmolLM2-135M-20250102-030405.json");
  cfg.max_concurrency = 8;
  cfg.request_rate = 4;
  EXPECT_EQ(DefaultResultFileName(info, cfg),
            "openai-4.0qps-concurrency8-SmolLM2-135M-20250102-030405.json");
}

}  // namespace
}  // namespace c8::bench
