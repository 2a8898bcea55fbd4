// SSE parsing of streamed bodies split at arbitrary byte boundaries, and the OpenAI chunk
// rules (usage-only final chunk, [DONE], chat deltas, error objects).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "c8/bench/request_sender.h"
#include "c8/bench/sse_parser.h"
#include "c8/bench/stream_accumulator.h"

namespace c8::bench {
namespace {

const char* kStream =
    "data: {\"choices\":[{\"index\":0,\"text\":\"He\"}]}\n\n"
    ": ping\n\n"
    "data: {\"choices\":[{\"index\":0,\"text\":\"llo \\u00e9\"}]}\n\n"
    "event: message\ndata: {\"choices\":[{\"index\":0,\"text\":\"\"}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,"
    "\"total_tokens\":10}}\n\n"
    "data: [DONE]\n\n";

const std::vector<std::string> kPayloads = {
    "{\"choices\":[{\"index\":0,\"text\":\"He\"}]}",
    "{\"choices\":[{\"index\":0,\"text\":\"llo \\u00e9\"}]}",
    "{\"choices\":[{\"index\":0,\"text\":\"\"}]}",
    "{\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,"
    "\"total_tokens\":10}}",
    "[DONE]"};

std::vector<std::string> FeedPieces(const std::string& s, const std::vector<size_t>& cuts) {
  SseParser p;
  std::vector<std::string> out;
  size_t prev = 0;
  for (size_t c : cuts) {
    for (auto& e : p.Feed(s.substr(prev, c - prev))) out.push_back(e);
    prev = c;
  }
  for (auto& e : p.Feed(s.substr(prev))) out.push_back(e);
  for (auto& e : p.Finish()) out.push_back(e);
  return out;
}

std::string WithCrLf(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\n') o += '\r';
    o += c;
  }
  return o;
}

TEST(SseParser, WholeBody) {
  EXPECT_EQ(FeedPieces(kStream, {}), kPayloads);
}

TEST(SseParser, EverySingleSplitPoint) {
  const std::string s = kStream;
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    ASSERT_EQ(FeedPieces(s, {cut}), kPayloads) << "split at byte " << cut;
  }
}

TEST(SseParser, EveryTwoSplitPointsCrLf) {
  const std::string s = WithCrLf(kStream);
  for (size_t a = 0; a <= s.size(); a += 3) {
    for (size_t b = a; b <= s.size(); b += 7) {
      ASSERT_EQ(FeedPieces(s, {a, b}), kPayloads) << "splits at " << a << ", " << b;
    }
  }
}

TEST(SseParser, ByteByByte) {
  const std::string s = kStream;
  std::vector<size_t> cuts;
  for (size_t i = 1; i < s.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(FeedPieces(s, cuts), kPayloads);
}

TEST(SseParser, CompletePendingDataIsEmittedEarly) {
  SseParser p;
  // A data line with a complete JSON value need not wait for the blank line (vLLM does this).
  auto a = p.Feed("data: {\"choices\":[{\"text\":\"a\"}]}\n");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0], "{\"choices\":[{\"text\":\"a\"}]}");
  // Incomplete JSON waits.
  EXPECT_TRUE(p.Feed("\ndata: {\"choices\":[{\"te").empty());
  auto b = p.Feed("xt\":\"b\"}]}\n\n");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0], "{\"choices\":[{\"text\":\"b\"}]}");
  // A last event without its terminator comes out at Finish().
  EXPECT_TRUE(p.Feed("data: [DO").empty());
  auto c = p.Feed("NE]");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0], "[DONE]");
  EXPECT_TRUE(p.Finish().empty());
}

TEST(SseParser, MultiLineData) {
  auto v = FeedPieces("data: {\"a\":\ndata: 1}\n\n", {});
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], "{\"a\":\n1}");
}

TEST(StreamAccumulator, CompletionsStreamAtEverySplit) {
  const std::string s = kStream;
  for (size_t cut = 0; cut <= s.size(); cut += 5) {
    RequestOutput out;
    out.start_time = 10.0;
    out.prompt_len = 99;
    StreamAccumulator acc(&out);
    SseParser p;
    // Bytes before the cut arrive at t = 10.5, the rest at t = 11.0.
    for (auto& e : p.Feed(s.substr(0, cut))) ASSERT_TRUE(acc.Consume(e, 10.5));
    for (auto& e : p.Feed(s.substr(cut))) ASSERT_TRUE(acc.Consume(e, 11.0));
    acc.Finish();
    ASSERT_TRUE(out.success) << out.error;
    EXPECT_EQ(out.generated_text, "Hello \xc3\xa9");
    EXPECT_EQ(out.output_tokens, 3);
    EXPECT_EQ(out.prompt_len, 7);
    EXPECT_EQ(out.num_chunks, 3);  // the empty-text chunk counts as a token chunk
    EXPECT_EQ(out.itl.size(), 2u);
    EXPECT_TRUE(acc.done());
  }
}

TEST(StreamAccumulator, ChatDeltas) {
  RequestOutput out;
  out.start_time = 1.0;
  StreamAccumulator acc(&out);
  // vLLM's chat stream starts with a role-only delta: it already counts for TTFT.
  EXPECT_TRUE(
      acc.Consume(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})", 1.5));
  EXPECT_TRUE(acc.Consume(R"({"choices":[{"index":0,"delta":{"content":"Hi"}}]})", 1.75));
  EXPECT_TRUE(acc.Consume(
      R"({"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}]})", 2.0));
  EXPECT_TRUE(
      acc.Consume(R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}})", 2.5));
  EXPECT_TRUE(acc.Consume("[DONE]", 2.5));
  acc.Finish();
  ASSERT_TRUE(out.success);
  EXPECT_EQ(out.generated_text, "Hi!");
  EXPECT_DOUBLE_EQ(out.ttft, 0.5);
  EXPECT_EQ(out.itl, (std::vector<double>{0.25, 0.25}));
  EXPECT_DOUBLE_EQ(out.latency, 1.0);  // the usage chunk does not extend the latency
  EXPECT_EQ(out.output_tokens, 2);
}

TEST(StreamAccumulator, ErrorObjectInStream) {
  RequestOutput out;
  StreamAccumulator acc(&out);
  EXPECT_TRUE(acc.Consume(R"({"choices":[{"text":"a"}]})", 1.0));
  EXPECT_FALSE(acc.Consume(R"({"error":{"message":"KV cache exhausted","code":500}})", 1.1));
  acc.Finish();
  EXPECT_FALSE(out.success);
  EXPECT_NE(out.error.find("KV cache exhausted"), std::string::npos);
}

TEST(StreamAccumulator, MalformedAndEmptyStreams) {
  {
    RequestOutput out;
    StreamAccumulator acc(&out);
    EXPECT_FALSE(acc.Consume("{not json", 1.0));
    acc.Finish();
    EXPECT_FALSE(out.success);
    EXPECT_NE(out.error.find("not a JSON object"), std::string::npos);
  }
  {
    RequestOutput out;
    StreamAccumulator acc(&out);
    EXPECT_TRUE(acc.Consume(R"({"choices":[],"usage":{"completion_tokens":0}})", 1.0));
    EXPECT_TRUE(acc.Consume("[DONE]", 1.0));
    acc.Finish();
    EXPECT_FALSE(out.success);
    EXPECT_NE(out.error.find("Never received a valid chunk"), std::string::npos);
  }
}

TEST(RequestSender, PayloadsMatchVllm) {
  EndpointConfig cfg;
  cfg.model = "m";
  cfg.extra_body = {{"temperature", 0.0}, {"ignore_eos", true}};
  RequestInput in;
  in.prompt_ids = {1, 2, 3};
  in.prompt_len = 3;
  in.output_len = 16;
  auto p = BuildPayload(cfg, in);
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ(*p, nlohmann::json::parse(R"({"model":"m","prompt":[1,2,3],"repetition_penalty":1.0,
      "max_tokens":16,"stream":true,"stream_options":{"include_usage":true},
      "temperature":0.0,"ignore_eos":true})"));
  cfg.backend = "openai-chat";
  EXPECT_FALSE(BuildPayload(cfg, in).ok());  // chat needs text
  in.prompt_text = "hi";
  p = BuildPayload(cfg, in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, nlohmann::json::parse(R"({"model":"m",
      "messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],
      "max_completion_tokens":16,"stream":true,"stream_options":{"include_usage":true},
      "temperature":0.0,"ignore_eos":true})"));
  cfg.backend = "tgi";
  EXPECT_FALSE(BuildPayload(cfg, in).ok());
}

TEST(RequestSender, SplitBaseUrl) {
  auto a = SplitBaseUrl("http://127.0.0.1:8000");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "http://127.0.0.1:8000");
  EXPECT_EQ(a->second, "");
  auto b = SplitBaseUrl("https://api.example.com/proxy/");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->first, "https://api.example.com");
  EXPECT_EQ(b->second, "/proxy");
  EXPECT_FALSE(SplitBaseUrl("127.0.0.1:8000").ok());
  EXPECT_FALSE(SplitBaseUrl("ftp://x").ok());
}

}  // namespace
}  // namespace c8::bench
