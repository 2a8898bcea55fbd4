// End to end against a tiny in-process fake OpenAI server (cpp-httplib on 127.0.0.1, ephemeral
// port) that streams scripted chunks with small sleeps.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "c8/bench/bench_serve.h"

namespace c8::bench {
namespace {

// /v1/models lists "fake-model"; /v1/completions streams one chunk per requested token
// ("t0 ", "t1 ", ...) 2 ms apart, then a usage chunk and [DONE]. The POST numbered
// `fail_nth` (1-based, counting the initial test request) gets HTTP 500 with an OpenAI error.
class FakeServer {
 public:
  explicit FakeServer(int fail_nth) : fail_nth_(fail_nth) {
    server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    server_.set_tcp_nodelay(true);  // as real servers: no Nagle batching of small chunks
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"fake-model","root":"/models/fake"}]})",
                      "application/json");
    });
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      const int n = ++posts_;
      last_auth_ = req.get_header_value("Authorization");
      nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
      if (n == fail_nth_) {
        res.status = 500;
        res.set_content(R"({"object":"error","message":"scripted failure","code":500})",
                        "application/json");
        return;
      }
      if (!body.is_object() || !body.value("stream", false) || !body.contains("max_tokens")) {
        res.status = 400;
        res.set_content(R"({"error":{"message":"bad request body"}})", "application/json");
        return;
      }
      last_body_ = body;
      const int64_t max_tokens = body["max_tokens"].get<int64_t>();
      const int64_t prompt_tokens =
          body["prompt"].is_array() ? static_cast<int64_t>(body["prompt"].size()) : 1;
      const int now = ++in_flight_;
      int prev = max_in_flight_.load();
      while (now > prev && !max_in_flight_.compare_exchange_weak(prev, now)) {
      }
      res.set_chunked_content_provider(
          "text/event-stream", [this, max_tokens, prompt_tokens](size_t, httplib::DataSink& sink) {
            for (int64_t i = 0; i < max_tokens; ++i) {
              std::this_thread::sleep_for(std::chrono::milliseconds(2));
              nlohmann::json c = {
                  {"id", "cmpl-1"},
                  {"object", "text_completion"},
                  {"choices", {{{"index", 0}, {"text", "t" + std::to_string(i) + " "}}}}};
              std::string ev = "data: " + c.dump() + "\n\n";
              if (!sink.write(ev.data(), ev.size())) break;
            }
            nlohmann::json u = {{"choices", nlohmann::json::array()},
                                {"usage",
                                 {{"prompt_tokens", prompt_tokens},
                                  {"completion_tokens", max_tokens},
                                  {"total_tokens", prompt_tokens + max_tokens}}}};
            // Leave the in-flight count before the client can see [DONE] and send its next
            // request: decrementing after sink.done() raced with that next request.
            --in_flight_;
            std::string tail = "data: " + u.dump() + "\n\ndata: [DONE]\n\n";
            sink.write(tail.data(), tail.size());
            sink.done();
            return true;
          });
    });
    // Chat: a role-only first delta, then one content delta per token, usage, [DONE].
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req,
                                                httplib::Response& res) {
      ++posts_;
      nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
      if (!body.is_object() || !body.contains("messages") ||
          !body.contains("max_completion_tokens")) {
        res.status = 400;
        res.set_content(R"({"error":{"message":"bad chat body"}})", "application/json");
        return;
      }
      last_body_ = body;
      const int64_t n = body["max_completion_tokens"].get<int64_t>();
      res.set_chunked_content_provider("text/event-stream", [n](size_t, httplib::DataSink& sink) {
        std::string ev =
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
            "\"content\":\"\"}}]}\n\n";
        for (int64_t i = 0; i < n; ++i) {
          ev += "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w\"}}]}\n\n";
        }
        ev += "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":" +
              std::to_string(n) + "}}\n\ndata: [DONE]\n\n";
        sink.write(ev.data(), ev.size());
        sink.done();
        return true;
      });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int posts() const { return posts_; }
  int max_in_flight() const { return max_in_flight_; }
  nlohmann::json last_body() const { return last_body_; }
  std::string last_auth() const { return last_auth_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;
  int fail_nth_;
  std::atomic<int> posts_{0}, in_flight_{0}, max_in_flight_{0};
  nlohmann::json last_body_;
  std::string last_auth_;
};

BenchServeOptions SmallRun(const std::string& url) {
  BenchServeOptions o;
  o.endpoint.base_url = url;
  o.endpoint.timeout_s = 30;
  o.endpoint.extra_body = {{"temperature", 0.0}, {"ignore_eos", true}};
  o.endpoint.api_key = "sk-test";
  o.dataset.num_prompts = 12;
  o.dataset.input_len = 16;
  o.dataset.output_len = 6;
  o.dataset.range_ratio = 0.5;
  o.dataset.vocab_size = 1000;
  o.dataset.seed = 3;
  return o;
}

TEST(BenchServeE2E, CompletesCountsTokensAndAFailure) {
  FakeServer server(/*fail_nth=*/4);  // the 3rd benchmark request (after the test request)
  BenchServeOptions o = SmallRun(server.url());
  o.max_concurrency = 3;
  o.metric_percentiles = {50, 90, 99};
  o.percentile_metrics = {"ttft", "tpot", "itl", "e2el"};
  o.save_result = true;
  o.save_detailed = true;
  o.result_dir = std::string(C8_BINARY_DIR) + "/bench_e2e_results";
  o.result_filename = "result.json";
  std::ostringstream log;
  auto r = RunBenchServe(o, &log);
  ASSERT_TRUE(r.ok()) << r.message();
  std::cout << log.str();  // the sample table, for the record

  // Model from GET /v1/models: the request's "model" is its id.
  EXPECT_EQ(server.last_body()["model"], "fake-model");
  EXPECT_EQ(server.last_body()["ignore_eos"], true);
  EXPECT_TRUE(server.last_body()["prompt"].is_array());
  EXPECT_EQ(server.last_auth(), "Bearer sk-test");
  EXPECT_EQ(server.posts(), 1 + 12);
  EXPECT_LE(server.max_in_flight(), 3);

  const BenchmarkMetrics& m = r->metrics;
  EXPECT_EQ(m.completed, 11);
  EXPECT_EQ(m.failed, 1);
  int64_t want_out = 0, want_in = 0, failed_idx = -1;
  for (size_t i = 0; i < r->outputs.size(); ++i) {
    const RequestOutput& out = r->outputs[i];
    if (!out.success) {
      failed_idx = static_cast<int64_t>(i);
      EXPECT_NE(out.error.find("HTTP 500"), std::string::npos) << out.error;
      EXPECT_NE(out.error.find("scripted failure"), std::string::npos) << out.error;
      continue;
    }
    // The server produced max_tokens chunks "t0 t1 ..." and usage = max_tokens.
    EXPECT_EQ(out.output_tokens, out.num_chunks);
    EXPECT_EQ(static_cast<int64_t>(out.itl.size()), out.num_chunks - 1);
    EXPECT_EQ(out.generated_text.substr(0, 6), "t0 t1 ");
    EXPECT_GT(out.ttft, 0);
    EXPECT_GE(out.latency, out.ttft);
    want_out += out.output_tokens;
    want_in += out.prompt_len;
  }
  ASSERT_GE(failed_idx, 0);
  EXPECT_EQ(m.total_output, want_out);
  EXPECT_EQ(m.total_input, want_in);
  EXPECT_GE(want_out, 11 * 3);  // output lengths in [3, 9]
  EXPECT_GT(m.max_output_tokens_per_s, 0);
  EXPECT_LE(m.max_concurrent_requests, 3);

  const std::string s = log.str();
  EXPECT_NE(s.find("Starting initial single prompt test run..."), std::string::npos);
  EXPECT_NE(s.find("Maximum request concurrency: 3\n"), std::string::npos);
  EXPECT_NE(s.find("Failed requests during benchmark run detected (capping to 10):"),
            std::string::npos);
  EXPECT_NE(s.find("Successful requests:                     11        \n"), std::string::npos);
  EXPECT_NE(s.find("Failed requests:                         1         \n"), std::string::npos);
  EXPECT_NE(s.find("Total generated tokens:                  " + std::to_string(want_out)),
            std::string::npos);
  EXPECT_NE(s.find("P90 E2EL (ms):"), std::string::npos);

  // The saved JSON.
  ASSERT_EQ(r->result_path, o.result_dir + "/result.json");
  std::ifstream f(r->result_path);
  nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["completed"], 11);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["total_output_tokens"], want_out);
  EXPECT_EQ(j["max_concurrency"], 3);
  EXPECT_EQ(j["model_id"], "/models/fake");
  EXPECT_EQ(j["output_lens"][failed_idx], 0);
  EXPECT_NE(j["errors"][failed_idx].get<std::string>().find("HTTP 500"), std::string::npos);
  EXPECT_TRUE(j.contains("p90_tpot_ms"));
  std::filesystem::remove_all(o.result_dir);
}

TEST(BenchServeE2E, UnlimitedConcurrencyAndPoissonRate) {
  FakeServer server(/*fail_nth=*/0);
  BenchServeOptions o = SmallRun(server.url());
  o.model = "my-model";
  o.served_model_name = "served";
  o.request_rate = 200;  // 12 requests spread over 60 ms
  std::ostringstream log;
  auto r = RunBenchServe(o, &log);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->metrics.completed, 12);
  EXPECT_EQ(r->metrics.failed, 0);
  EXPECT_EQ(server.last_body()["model"], "served");
  EXPECT_NE(log.str().find("Traffic request rate: 200.0\n"), std::string::npos);
  EXPECT_NE(log.str().find("Burstiness factor: 1.0 (Poisson process)\n"), std::string::npos);
  EXPECT_NE(log.str().find("Maximum request concurrency: None\n"), std::string::npos);
  EXPECT_NE(log.str().find("Request rate configured (RPS):           200.00    \n"),
            std::string::npos);
  EXPECT_EQ(r->result_path, "");
}

TEST(BenchServeE2E, ChatBackendWithTokenizer) {
  std::string dir = std::getenv("C8_SMOLLM2_DIR")
                        ? std::getenv("C8_SMOLLM2_DIR")
                        : std::string(C8_SOURCE_DIR) + "/models/smollm2-135m-instruct";
  if (!std::filesystem::exists(dir + "/tokenizer.json")) {
    GTEST_SKIP() << "no tokenizer.json in " << dir;
  }
  FakeServer server(/*fail_nth=*/0);
  BenchServeOptions o = SmallRun(server.url());
  o.model = "m";
  o.tokenizer_path = dir;  // a directory holding tokenizer.json
  o.endpoint.backend = "openai-chat";
  o.endpoint.endpoint = "/v1/chat/completions";
  o.dataset.num_prompts = 4;
  auto r = RunBenchServe(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->metrics.completed, 4);
  const nlohmann::json body = server.last_body();
  const nlohmann::json msg = body["messages"][0];
  EXPECT_EQ(msg["role"], "user");
  EXPECT_FALSE(msg["content"][0]["text"].get<std::string>().empty());
  for (const RequestOutput& out : r->outputs) {
    // The role-only delta is the first token chunk (vLLM counts it for TTFT).
    EXPECT_EQ(out.num_chunks, out.output_tokens + 1);
    EXPECT_EQ(out.generated_text, std::string(out.output_tokens, 'w'));
    EXPECT_EQ(out.prompt_len, 5);  // from usage
  }
  EXPECT_EQ(r->result["tokenizer_id"], dir);
}

TEST(BenchServeE2E, FailedTestRunAborts) {
  FakeServer server(/*fail_nth=*/1);  // the initial test request fails
  BenchServeOptions o = SmallRun(server.url());
  o.model = "m";
  auto r = RunBenchServe(o, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("Initial test run failed"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("scripted failure"), std::string::npos) << r.message();
}

TEST(BenchServeE2E, ConnectionErrorsAreCountedNotFatal) {
  // A port nobody listens on: take an ephemeral one and close it.
  int port = 0;
  {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
    close(fd);  // bound but never listening: connections are refused
  }
  BenchServeOptions o = SmallRun("http://127.0.0.1:" + std::to_string(port));
  o.model = "m";
  o.initial_test = false;
  o.dataset.num_prompts = 3;
  std::ostringstream log;
  auto r = RunBenchServe(o, &log);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->metrics.completed, 0);
  EXPECT_EQ(r->metrics.failed, 3);
  EXPECT_NE(r->outputs[0].error.find("Connection"), std::string::npos) << r->outputs[0].error;
  // Without a model, GET /v1/models fails with a clear error.
  o.model = "";
  auto m = RunBenchServe(o, nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("/v1/models"), std::string::npos) << m.message();
}

TEST(BenchServeE2E, BadOptionsAreErrors) {
  BenchServeOptions o = SmallRun("http://127.0.0.1:1");
  o.model = "m";
  o.percentile_metrics = {"ttft", "latency"};
  auto r = RunBenchServe(o, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("'latency'"), std::string::npos);
  o.percentile_metrics = {"ttft"};
  o.endpoint.backend = "openai-chat";
  r = RunBenchServe(o, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("--tokenizer"), std::string::npos);
}

}  // namespace
}  // namespace c8::bench
