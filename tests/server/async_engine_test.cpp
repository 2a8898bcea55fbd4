// The engine thread and generation jobs on the real SmolLM2 (skipped when the converted model
// is absent): outputs match the synchronous engine, submit errors come back as values, abort
// returns every KV block, n fans out with distinct streams, streams end with [DONE].
#include "c8/engine/async_engine.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "c8/server/generation_job.h"

namespace c8 {
namespace {

using namespace std::chrono_literals;

std::string SmolDir() {
  if (const char* e = std::getenv("C8_SMOLLM2_DIR")) return e;
  return std::string(C8_SOURCE_DIR) + "/models/smollm2-135m-instruct";
}

class AsyncEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(SmolDir() + "/config.json")) return;
    EngineOptions o;
    o.model_dir = SmolDir();
    o.backend.device = "cpu";
    o.max_model_len = 512;
    o.kv_cache_gib = 0.05;
    auto b = ModelBundle::Load(o);
    ASSERT_TRUE(b.ok()) << b.message();
    bundle_ = std::move(b).value().release();
  }
  static void TearDownTestSuite() {
    delete bundle_;
    bundle_ = nullptr;
  }
  void SetUp() override {
    if (!bundle_) GTEST_SKIP() << "SmolLM2 not found at " << SmolDir() << " (set C8_SMOLLM2_DIR)";
    EngineConfig ec;
    ec.scheduler.max_model_len = 512;
    engine_ = std::make_unique<AsyncEngine>(*bundle_, ec);
  }

  EngineRequest Greedy(const std::string& id, const std::string& prompt, int max_tokens) {
    EngineRequest r;
    r.id = id;
    r.prompt = bundle_->EncodePrompt(prompt);
    r.params.temperature = 0;
    r.params.max_tokens = max_tokens;
    r.params.ignore_eos = true;
    return r;
  }

  // Collects events until every id finished.
  std::map<std::string, std::vector<int32_t>> Drain(OutputStream& s, size_t n) {
    std::map<std::string, std::vector<int32_t>> out;
    size_t finished = 0;
    while (finished < n) {
      std::vector<EngineEvent> evs;
      if (!s.PopAll(&evs, 30s)) {
        ADD_FAILURE() << "timed out";
        break;
      }
      for (auto& e : evs) {
        EXPECT_TRUE(e.output.error.empty()) << e.output.error;
        for (auto& t : e.output.new_tokens) out[e.output.id].push_back(t.token_id);
        if (e.output.finished) ++finished;
      }
    }
    return out;
  }

  void ExpectAllBlocksFree() {
    for (int i = 0; i < 200; ++i) {
      EngineStats s = engine_->stats();
      if (s.num_free_blocks == s.num_blocks && s.num_running == 0 && s.num_waiting == 0 &&
          engine_->num_in_flight() == 0) {
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    EngineStats s = engine_->stats();
    ADD_FAILURE() << "free " << s.num_free_blocks << " of " << s.num_blocks << ", running "
                  << s.num_running;
  }

  static ModelBundle* bundle_;
  std::unique_ptr<AsyncEngine> engine_;
};

ModelBundle* AsyncEngineTest::bundle_ = nullptr;

TEST_F(AsyncEngineTest, MatchesSynchronousEngine) {
  const std::vector<std::string> prompts = {"The capital of France is", "def add(a, b):"};
  // Reference: the synchronous engine, one request at a time.
  std::vector<std::vector<int32_t>> ref;
  {
    EngineConfig ec;
    ec.scheduler.max_model_len = 512;
    engine_.reset();  // one engine on the KV cache at a time
    LlmEngine sync(*bundle_, ec);
    for (size_t i = 0; i < prompts.size(); ++i) {
      ASSERT_TRUE(sync.AddRequest(Greedy("r", prompts[i], 6)).ok());
      std::vector<int32_t> out;
      while (sync.HasWork()) {
        for (auto& o : sync.Step()) {
          for (auto& t : o.new_tokens) out.push_back(t.token_id);
        }
      }
      ref.push_back(out);
    }
    EngineConfig ec2;
    ec2.scheduler.max_model_len = 512;
    engine_ = std::make_unique<AsyncEngine>(*bundle_, ec2);
  }
  auto sink = std::make_shared<OutputStream>();
  std::vector<EngineRequest> reqs = {Greedy("a", prompts[0], 6), Greedy("b", prompts[1], 6)};
  ASSERT_TRUE(engine_->Submit(std::move(reqs), sink).ok());
  auto got = Drain(*sink, 2);
  EXPECT_EQ(got["a"], ref[0]);
  EXPECT_EQ(got["b"], ref[1]);
  ExpectAllBlocksFree();
  EXPECT_GT(engine_->stats().generation_tokens, 0);
}

TEST_F(AsyncEngineTest, SubmitErrorsAreAllOrNone) {
  auto sink = std::make_shared<OutputStream>();
  EngineRequest good = Greedy("ok", "Hello", 4);
  EngineRequest bad = Greedy("bad", "Hello", 4);
  bad.prompt.push_back(1 << 30);  // out of vocabulary
  std::vector<EngineRequest> reqs;
  reqs.push_back(std::move(good));
  reqs.push_back(std::move(bad));
  Status st = engine_->Submit(std::move(reqs), sink);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("vocabulary"), std::string::npos) << st.message();
  ExpectAllBlocksFree();
  // Duplicate ids in flight are refused.
  std::vector<EngineRequest> two;
  two.push_back(Greedy("dup", "Hello", 50));
  two.push_back(Greedy("dup", "Hello", 50));
  EXPECT_FALSE(engine_->Submit(std::move(two), sink).ok());
  ExpectAllBlocksFree();
}

TEST_F(AsyncEngineTest, AbortFreesBlocksAndAbortAllNotifies) {
  auto sink = std::make_shared<OutputStream>();
  std::vector<EngineRequest> reqs;
  reqs.push_back(Greedy("long1", "Once upon a time", 400));
  reqs.push_back(Greedy("long2", "In a galaxy far away", 400));
  ASSERT_TRUE(engine_->Submit(std::move(reqs), sink).ok());
  std::vector<EngineEvent> evs;
  ASSERT_TRUE(sink->PopAll(&evs, 30s));
  engine_->Abort({"long1"});
  // long2 keeps going; AbortAll finishes it with aborted = true.
  engine_->AbortAll();
  bool got_abort = false;
  for (int i = 0; i < 100 && !got_abort; ++i) {
    evs.clear();
    sink->PopAll(&evs, 100ms);
    for (auto& e : evs) {
      if (e.output.finished) {
        EXPECT_EQ(e.output.id, "long2");
        EXPECT_TRUE(e.aborted);
        got_abort = true;
      }
    }
  }
  EXPECT_TRUE(got_abort);
  ExpectAllBlocksFree();
  engine_->Shutdown();
  auto s2 = std::make_shared<OutputStream>();
  std::vector<EngineRequest> late;
  late.push_back(Greedy("late", "x", 1));
  EXPECT_FALSE(engine_->Submit(std::move(late), s2).ok());
}

GenerationContext Ctx(ModelBundle* b, AsyncEngine* e, ServerMetrics* m) {
  GenerationContext ctx;
  ctx.bundle = b;
  ctx.engine = e;
  ctx.metrics = m;
  ctx.model_name = "smol";
  return ctx;
}

TEST_F(AsyncEngineTest, CompletionJobFanOutAndUsage) {
  ServerMetrics metrics("smol");
  OpenAiRequest r;
  nlohmann::ordered_json body = nlohmann::ordered_json::parse(
      R"({"prompt":["Hello there","The sky is"],"n":2,"max_tokens":4,"temperature":1.0,
          "seed":5,"ignore_eos":true,"logprobs":2})");
  ASSERT_FALSE(ParseCompletionRequest(body, &r));
  auto started = GenerationJob::Start(Ctx(bundle_, engine_.get(), &metrics), r, "cmpl-t");
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<GenerationJob>>(started));
  auto job = std::move(std::get<1>(started));
  EXPECT_EQ(job->num_choices(), 4);
  auto out = job->Wait();
  ASSERT_TRUE(std::holds_alternative<nlohmann::json>(out));
  const nlohmann::json& j = std::get<nlohmann::json>(out);
  ASSERT_EQ(j["choices"].size(), 4u);
  int64_t completion = 0;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(j["choices"][i]["index"], i);
    EXPECT_EQ(j["choices"][i]["finish_reason"], "length");
    EXPECT_EQ(j["choices"][i]["logprobs"]["tokens"].size(), 4u);
    completion += 4;
  }
  EXPECT_EQ(j["usage"]["completion_tokens"], completion);
  const int64_t p0 = static_cast<int64_t>(bundle_->EncodePrompt("Hello there").size());
  const int64_t p1 = static_cast<int64_t>(bundle_->EncodePrompt("The sky is").size());
  EXPECT_EQ(j["usage"]["prompt_tokens"], p0 + p1);
  // Siblings with the same seed draw from different streams: a 4-token sample rarely repeats,
  // but the same request again reproduces every choice.
  auto again = GenerationJob::Start(Ctx(bundle_, engine_.get(), &metrics), r, "cmpl-u");
  auto j2 = std::get<nlohmann::json>(std::get<1>(again)->Wait());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(j2["choices"][i]["text"], j["choices"][i]["text"]);
  const std::string text = metrics.Render(engine_->stats());
  EXPECT_NE(text.find("finished_reason=\"length\"} 8"), std::string::npos) << text;
  ExpectAllBlocksFree();
}

TEST_F(AsyncEngineTest, ChatJobStreamsAndEndsWithDone) {
  OpenAiRequest r;
  nlohmann::ordered_json body = nlohmann::ordered_json::parse(
      R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":0,
          "ignore_eos":true,"stream":true,"stream_options":{"include_usage":true},
          "logprobs":true})");
  ASSERT_FALSE(ParseChatRequest(body, &r));
  auto started = GenerationJob::Start(Ctx(bundle_, engine_.get(), nullptr), r, "chatcmpl-t");
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<GenerationJob>>(started));
  auto job = std::move(std::get<1>(started));
  std::string sse;
  for (int i = 0; i < 400 && !job->done(); ++i) job->NextEvents(&sse, 100ms);
  ASSERT_TRUE(job->done());
  ASSERT_GE(sse.size(), 14u);
  EXPECT_EQ(sse.substr(sse.size() - 14), "data: [DONE]\n\n");
  // Count logprob entries over the chunks; the usage chunk agrees.
  int tokens = 0, roles = 0;
  int64_t usage = -1;
  size_t pos = 0;
  while ((pos = sse.find("data: {", pos)) != std::string::npos) {
    const size_t end = sse.find("\n\n", pos);
    auto j = nlohmann::json::parse(sse.substr(pos + 6, end - pos - 6));
    pos = end;
    if (j.contains("usage")) {
      usage = j["usage"]["completion_tokens"];
      continue;
    }
    const auto& c = j["choices"][0];
    if (c["delta"].contains("role")) ++roles;
    if (!c["logprobs"].is_null()) tokens += static_cast<int>(c["logprobs"]["content"].size());
  }
  EXPECT_EQ(roles, 1);
  EXPECT_EQ(tokens, 5);
  EXPECT_EQ(usage, 5);
}

TEST_F(AsyncEngineTest, JobRejectsContextOverflowAndAbortsOnDestruction) {
  OpenAiRequest r;
  ASSERT_FALSE(ParseCompletionRequest(
      nlohmann::ordered_json::parse(R"({"prompt":"hi","max_tokens":100000})"), &r));
  auto s = GenerationJob::Start(Ctx(bundle_, engine_.get(), nullptr), r, "cmpl-x");
  ASSERT_TRUE(std::holds_alternative<ApiError>(s));
  EXPECT_EQ(std::get<ApiError>(s).status, 400);
  EXPECT_NE(std::get<ApiError>(s).message.find("maximum context length is 512"), std::string::npos);

  OpenAiRequest big;
  std::string prompt;
  for (int i = 0; i < 600; ++i) prompt += "hello ";
  nlohmann::ordered_json b;
  b["prompt"] = prompt;
  ASSERT_FALSE(ParseCompletionRequest(b, &big));
  auto s2 = GenerationJob::Start(Ctx(bundle_, engine_.get(), nullptr), big, "cmpl-y");
  ASSERT_TRUE(std::holds_alternative<ApiError>(s2));
  EXPECT_EQ(std::get<ApiError>(s2).param, "prompt");

  // A job dropped mid-generation (client gone) aborts its requests.
  OpenAiRequest longr;
  ASSERT_FALSE(ParseCompletionRequest(
      nlohmann::ordered_json::parse(
          R"({"prompt":"Once upon a time","max_tokens":400,"ignore_eos":true,"stream":true})"),
      &longr));
  auto s3 = GenerationJob::Start(Ctx(bundle_, engine_.get(), nullptr), longr, "cmpl-z");
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<GenerationJob>>(s3));
  {
    auto job = std::move(std::get<1>(s3));
    std::string sse;
    while (sse.empty()) job->NextEvents(&sse, 100ms);
  }
  ExpectAllBlocksFree();
}

}  // namespace
}  // namespace c8
