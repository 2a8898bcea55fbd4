// Response, chunk, usage and logprobs formatting; Prometheus exposition text.
#include "c8/server/openai_response.h"

#include <gtest/gtest.h>

#include "c8/server/metrics.h"

namespace c8 {
namespace {

using json = nlohmann::json;

std::string FakeText(int32_t id) {
  return id == 9 ? std::string("\xe2\x82") : "t" + std::to_string(id);
}

TEST(OpenAiResponse, FinishAndStopReasons) {
  EXPECT_TRUE(FinishReasonJson(FinishReason::kNone, false).is_null());
  EXPECT_EQ(FinishReasonJson(FinishReason::kStop, false), "stop");
  EXPECT_EQ(FinishReasonJson(FinishReason::kLength, false), "length");
  EXPECT_EQ(FinishReasonJson(FinishReason::kNone, true), "abort");
  EXPECT_TRUE(StopReasonJson(StopReason{}).is_null());
  EXPECT_EQ(StopReasonJson(StopReason{std::string("###")}), "###");
  EXPECT_EQ(StopReasonJson(StopReason{int32_t{7}}), 7);
}

TEST(OpenAiResponse, Usage) {
  json u = UsageJson(Usage{10, 4, 3});
  EXPECT_EQ(u["prompt_tokens"], 10);
  EXPECT_EQ(u["completion_tokens"], 4);
  EXPECT_EQ(u["total_tokens"], 14);
  EXPECT_EQ(u["prompt_tokens_details"]["cached_tokens"], 3);
}

std::vector<TokenOutput> Tokens() {
  TokenOutput a;
  a.token_id = 1;
  a.logprob = -0.5f;
  a.top_logprobs = {{1, -0.5f}, {2, -1.5f}};
  TokenOutput b;
  b.token_id = 3;
  b.logprob = -2.0f;
  b.top_logprobs = {{2, -0.25f}, {4, -std::numeric_limits<float>::infinity()}};
  return {a, b};
}

TEST(OpenAiResponse, CompletionLogprobs) {
  int64_t off = 5;
  json lp = CompletionLogprobsJson(Tokens(), FakeText, &off);
  EXPECT_EQ(lp["tokens"], json({"t1", "t3"}));
  EXPECT_EQ(lp["token_logprobs"], json({-0.5, -2.0}));
  EXPECT_EQ(lp["text_offset"], json({5, 7}));
  EXPECT_EQ(off, 9);
  // Top N plus the sampled token; -inf becomes -9999.
  EXPECT_EQ(lp["top_logprobs"][0], json({{"t1", -0.5}, {"t2", -1.5}}));
  EXPECT_EQ(lp["top_logprobs"][1], json({{"t2", -0.25}, {"t4", -9999.0}, {"t3", -2.0}}));
}

TEST(OpenAiResponse, ChatLogprobs) {
  json lp = ChatLogprobsJson(Tokens(), FakeText);
  ASSERT_EQ(lp["content"].size(), 2u);
  const json& e = lp["content"][0];
  EXPECT_EQ(e["token"], "t1");
  EXPECT_DOUBLE_EQ(e["logprob"].get<double>(), -0.5);
  EXPECT_EQ(e["bytes"], json({116, 49}));
  ASSERT_EQ(e["top_logprobs"].size(), 2u);
  EXPECT_EQ(e["top_logprobs"][1]["token"], "t2");
  EXPECT_TRUE(e["top_logprobs"][1].contains("bytes"));
}

TEST(OpenAiResponse, PartialUtf8TokenSerializes) {
  TokenOutput t;
  t.token_id = 9;
  t.logprob = -1.0f;
  json lp = ChatLogprobsJson(std::vector<TokenOutput>{t}, FakeText);
  EXPECT_EQ(lp["content"][0]["bytes"], json({0xe2, 0x82}));
  const std::string s = DumpJson(lp);  // replaced, no throw
  EXPECT_NE(s.find("\xef\xbf\xbd"), std::string::npos);
}

TEST(OpenAiResponse, CompletionResponse) {
  ResponseMeta meta{ApiKind::kCompletion, "cmpl-1", 123, "m"};
  ChoiceResult c0{0, "hello", {}, FinishReason::kStop, StopReason{std::string("!")}, false};
  ChoiceResult c1{1, "x", {}, FinishReason::kLength, StopReason{}, false};
  json r = ResponseJson(meta, {c0, c1}, {json(), json()}, Usage{3, 2, 0});
  EXPECT_EQ(r["id"], "cmpl-1");
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["created"], 123);
  EXPECT_EQ(r["model"], "m");
  ASSERT_EQ(r["choices"].size(), 2u);
  EXPECT_EQ(r["choices"][0]["text"], "hello");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["choices"][0]["stop_reason"], "!");
  EXPECT_TRUE(r["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(r["choices"][1]["index"], 1);
  EXPECT_EQ(r["choices"][1]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["total_tokens"], 5);
}

TEST(OpenAiResponse, ChatResponseAndChunks) {
  ResponseMeta meta{ApiKind::kChat, "chatcmpl-1", 1, "m"};
  ChoiceResult c{0, "hi", {}, FinishReason::kStop, StopReason{}, false};
  json r = ResponseJson(meta, {c}, {}, Usage{1, 1, 0});
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["choices"][0]["message"], json({{"role", "assistant"}, {"content", "hi"}}));

  json first = ChunkJson(meta, 0, "He", true, json(), json(), json());
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], json({{"role", "assistant"}, {"content", "He"}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  json last = ChunkJson(meta, 2, "", false, json(), "length", json());
  EXPECT_EQ(last["choices"][0]["index"], 2);
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");

  json u = UsageChunkJson(meta, Usage{2, 3, 1});
  EXPECT_TRUE(u["choices"].empty());
  EXPECT_EQ(u["usage"]["completion_tokens"], 3);

  ResponseMeta cm{ApiKind::kCompletion, "cmpl-2", 1, "m"};
  json cc = ChunkJson(cm, 1, "abc", true, json(), "stop", 5);
  EXPECT_EQ(cc["object"], "text_completion");
  EXPECT_EQ(cc["choices"][0]["text"], "abc");
  EXPECT_EQ(cc["choices"][0]["stop_reason"], 5);
  EXPECT_FALSE(cc["choices"][0].contains("delta"));
}

TEST(OpenAiResponse, Sse) {
  EXPECT_EQ(SseData(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_STREQ(kSseDone, "data: [DONE]\n\n");
  EXPECT_EQ(Utf8Length("h\xc3\xa9llo"), 5);
}

TEST(OpenAiResponse, ApiErrorShape) {
  ApiError e{404, "no such model", "invalid_request_error", "model", "model_not_found"};
  json j = e.ToJson();
  EXPECT_EQ(j, json({{"error",
                      {{"message", "no such model"},
                       {"type", "invalid_request_error"},
                       {"param", "model"},
                       {"code", "model_not_found"}}}}));
  json b = BadRequest("x").ToJson();
  EXPECT_TRUE(b["error"]["param"].is_null());
  EXPECT_TRUE(b["error"]["code"].is_null());
}

TEST(Metrics, HistogramBuckets) {
  Histogram h({0.1, 1.0});
  h.Observe(0.05);
  h.Observe(0.1);  // le is inclusive
  h.Observe(0.5);
  h.Observe(5.0);
  std::string out;
  h.Render("x_seconds", "model_name=\"m\"", &out);
  EXPECT_EQ(out,
            "x_seconds_bucket{model_name=\"m\",le=\"0.1\"} 2\n"
            "x_seconds_bucket{model_name=\"m\",le=\"1\"} 3\n"
            "x_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 4\n"
            "x_seconds_sum{model_name=\"m\"} 5.65\n"
            "x_seconds_count{model_name=\"m\"} 4\n");
}

TEST(Metrics, ExpositionText) {
  ServerMetrics m("my \"model\"");
  m.ObserveFirstToken(0.2);
  m.ObserveInterToken(0.03);
  m.ObserveFinished("length", 1.5, 0.05, 10, 4);
  m.ObserveFinished("abort", 0.5, -1, 3, 0);
  EngineStats s;
  s.num_running = 2;
  s.num_waiting = 1;
  s.kv_usage = 0.25;
  s.num_free_blocks = 30;
  s.num_blocks = 40;
  s.prefix_queries = 100;
  s.prefix_hits = 64;
  s.num_preemptions = 3;
  s.prompt_tokens = 1000;
  s.generation_tokens = 50;
  const std::string t = m.Render(s);
  const std::string L = "{model_name=\"my \\\"model\\\"\"}";
  for (const std::string& line :
       {"vllm:num_requests_running" + L + " 2",
        "vllm:num_requests_waiting" + L + " 1",
        "vllm:kv_cache_usage_perc" + L + " 0.25",
        "c8:kv_cache_free_blocks" + L + " 30",
        "c8:kv_cache_total_blocks" + L + " 40",
        "vllm:prompt_tokens_total" + L + " 1000",
        "vllm:generation_tokens_total" + L + " 50",
        "vllm:prefix_cache_queries_total" + L + " 100",
        "vllm:prefix_cache_hits_total" + L + " 64",
        "vllm:num_preemptions_total" + L + " 3",
        std::string("# TYPE vllm:kv_cache_usage_perc gauge"),
        std::string("# TYPE vllm:prompt_tokens_total counter"),
        std::string("# TYPE vllm:time_to_first_token_seconds histogram"),
        std::string("vllm:request_success_total{model_name=\"my \\\"model\\\"\",finished_reason="
                    "\"length\"} 1"),
        std::string("vllm:request_success_total{model_name=\"my \\\"model\\\"\",finished_reason="
                    "\"abort\"} 1"),
        std::string("vllm:request_success_total{model_name=\"my \\\"model\\\"\",finished_reason="
                    "\"stop\"} 0"),
        "vllm:time_to_first_token_seconds_count" + L + " 1",
        "vllm:inter_token_latency_seconds_count" + L + " 1",
        "vllm:time_per_output_token_seconds_count" + L + " 1",
        "vllm:e2e_request_latency_seconds_count" + L + " 2",
        "vllm:e2e_request_latency_seconds_sum" + L + " 2"}) {
    EXPECT_NE(t.find(line + "\n"), std::string::npos) << line;
  }
  // Every non-comment line is "name{labels} value".
  size_t pos = 0;
  while (pos < t.size()) {
    const size_t end = t.find('\n', pos);
    ASSERT_NE(end, std::string::npos);
    const std::string line = t.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("# ", 0) == 0) continue;
    EXPECT_NE(line.find("{model_name="), std::string::npos) << line;
    EXPECT_NE(line.find("} "), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace c8
