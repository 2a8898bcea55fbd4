// A scripted set of request timelines shared by the metrics and report tests: OpenAI stream
// chunks fed to StreamAccumulator at chosen times.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "c8/bench/request.h"
#include "c8/bench/stream_accumulator.h"

namespace c8::bench {

inline std::string TextChunk(const std::string& text) {
  return R"({"choices":[{"index":0,"text":")" + text + R"(","finish_reason":null}]})";
}
inline std::string UsageChunk(int prompt, int completion) {
  return R"({"choices":[],"usage":{"prompt_tokens":)" + std::to_string(prompt) +
         R"(,"completion_tokens":)" + std::to_string(completion) + "}}";
}

// A request sent at `start` whose token chunks arrive at `chunk_times`, then (optionally) a
// usage chunk, then [DONE].
inline RequestOutput Scripted(double start, int64_t dataset_prompt_len,
                              std::vector<double> chunk_times, int usage_prompt,
                              int usage_completion) {
  RequestOutput out;
  out.start_time = start;
  out.prompt_len = dataset_prompt_len;
  StreamAccumulator acc(&out);
  for (double t : chunk_times) EXPECT_TRUE(acc.Consume(TextChunk("x"), t));
  const double end = chunk_times.empty() ? start : chunk_times.back();
  if (usage_completion >= 0) {
    EXPECT_TRUE(acc.Consume(UsageChunk(usage_prompt, usage_completion), end));
  }
  EXPECT_TRUE(acc.Consume("[DONE]", end + 0.125));
  acc.Finish();
  return out;
}

// The timeline (seconds; every value is exact in binary):
//   A: sent 100.00, chunks 100.50 100.75 101.00 101.50; usage prompt 10, completion 4
//      ttft 0.5, itl [0.25 0.25 0.5], latency 1.5, tpot (1.5-0.5)/3 = 1/3
//   B: sent 100.25, chunks 101.25 102.25 (multi-token chunks); usage prompt 20, completion 5
//      ttft 1.0, itl [1.0], latency 2.0, tpot (2.0-1.0)/4 = 0.25
//   C: sent 100.50, one chunk 101.25, no usage chunk -> output len = 1 chunk; dataset len 30
//      ttft 0.75, itl [], latency 0.75, no tpot (one token)
//   D: failed (HTTP error)
//   benchmark duration 4.0 s
inline std::vector<RequestOutput> Timeline() {
  std::vector<RequestOutput> v;
  v.push_back(Scripted(100.0, 999, {100.5, 100.75, 101.0, 101.5}, 10, 4));
  v.push_back(Scripted(100.25, 999, {101.25, 102.25}, 20, 5));
  v.push_back(Scripted(100.5, 30, {101.25}, 0, -1));
  RequestOutput d;
  d.success = false;
  d.error = "HTTP 500 Internal Server Error: boom";
  d.prompt_len = 40;
  d.start_time = 100.0;
  v.push_back(d);
  return v;
}

}  // namespace c8::bench
