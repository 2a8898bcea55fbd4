// `c8 serve MODEL`: the OpenAI-compatible HTTP server (vLLM-style flags).
//
// Threads: the main thread loads the model and then waits for SIGINT/SIGTERM (a handler
// writes to a self-pipe, a watcher thread wakes the main thread); one thread runs the HTTP
// accept loop (worker threads parse, template, tokenize); the AsyncEngine's thread owns the
// LlmEngine. Shutdown drains: new requests get 503, in-flight requests get up to
// --shutdown-timeout seconds to finish, the rest are aborted, then the process exits 0.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "c8/cli/commands.h"
#include "c8/cli/engine_flags.h"
#include "c8/engine/async_engine.h"
#include "c8/engine/model_bundle.h"
#include "c8/server/http_server.h"

namespace c8::cli {

namespace {

struct ServeArgs {
  std::string model;
  ServeOptions serve;
  EngineFlags engine;
  double shutdown_timeout_s = 5.0;
  bool quiet = false;
};

// Signal state shared with the watcher thread.
struct SignalState {
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;      // SIGINT/SIGTERM received
  std::string fatal;  // set when the engine stopped running steps (not a signal)
};

// Process-wide by nature (a signal handler cannot take arguments): the self-pipe and whether
// the server is up yet.
int g_signal_pipe[2] = {-1, -1};
std::atomic<bool> g_serving{false};

extern "C" void OnSignal(int signo) {
  if (!g_serving.load()) _exit(128 + signo);
  const char c = static_cast<char>(signo);
  [[maybe_unused]] ssize_t n = ::write(g_signal_pipe[1], &c, 1);
}

std::string KvSummary(const ModelBundle& m) {
  std::map<std::string, int> n;
  const int64_t layers = m.executor->config().num_layers;
  for (int64_t i = 0; i < layers; ++i) n[std::string(KvDTypeName(m.executor->layer_dtype(i)))]++;
  std::string s;
  for (const auto& [name, count] : n) {
    if (!s.empty()) s += ", ";
    s += name + " x" + std::to_string(count);
  }
  return s + " (of " + std::to_string(layers) + " layers)";
}

int Run(ServeArgs& a) {
  // SIGINT/SIGTERM: the handler writes the signal number to a pipe (async-signal-safe); a
  // watcher thread turns it into a count the main thread waits on. While the model is still
  // loading a signal just ends the process.
  if (::pipe(g_signal_pipe) != 0) {
    std::fprintf(stderr, "c8 serve: error: pipe() failed\n");
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a closed client socket is a failed write, not a kill
  auto sig = std::make_shared<SignalState>();
  std::thread([sig] {
    for (;;) {
      char c = 0;
      const ssize_t n = ::read(g_signal_pipe[0], &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      {
        std::lock_guard<std::mutex> lock(sig->mu);
        ++sig->count;
      }
      sig->cv.notify_all();
    }
  }).detach();

  if (a.serve.api_key.empty()) {
    if (const char* k = std::getenv("C8_API_KEY"); k && *k)
      a.serve.api_key = k;
    else if (const char* v = std::getenv("VLLM_API_KEY"); v && *v)
      a.serve.api_key = v;
  }
  if (a.serve.served_model_name.empty()) a.serve.served_model_name = a.model;
  a.serve.model_dir = a.model;
  a.serve.version = C8_VERSION;
  a.serve.max_num_seqs = a.engine.max_num_seqs;

  EngineOptions eo = a.engine.ToEngineOptions(a.model, !a.quiet);
  auto bundle = ModelBundle::Load(eo);
  if (!bundle.ok()) {
    std::fprintf(stderr, "c8 serve: error: %s\n", bundle.message().c_str());
    return 1;
  }
  ModelBundle& m = **bundle;
  if (!a.quiet) std::fprintf(stderr, "c8 serve: %s\n", m.kv_summary.c_str());
  EngineConfig ec = a.engine.ToEngineConfig(m.executor->max_model_len());
  AsyncEngine engine(m, ec);
  // A tensor-parallel rank that fails stops the server (the engine has failed every request).
  engine.SetFatalHandler([sig](const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(sig->mu);
      if (sig->fatal.empty()) sig->fatal = why;
    }
    sig->cv.notify_all();
  });
  HttpServer server(a.serve, m, engine);
  if (Status st = server.Bind(); !st.ok()) {
    std::fprintf(stderr, "c8 serve: error: %s\n", st.message().c_str());
    return 1;
  }
  const KvCacheSpec& spec = m.executor->kv_spec();
  const EngineStats st0 = engine.stats();
  std::fprintf(stderr,
               "c8 serve: model %s (served as '%s'), backend %s, linears %s\n"
               "c8 serve: KV cache %s, block size %lld, %d blocks = %lld tokens, prefix "
               "caching %s, max_model_len %d\n"
               "c8 serve: listening on http://%s:%d%s\n",
               a.model.c_str(), a.serve.served_model_name.c_str(),
               m.executor->device_name().c_str(),
               m.executor->worker(0).model().quant_summary().c_str(), KvSummary(m).c_str(),
               static_cast<long long>(spec.block_size), st0.num_blocks,
               static_cast<long long>(st0.num_blocks) * static_cast<long long>(spec.block_size),
               a.engine.prefix_caching ? "on" : "off", engine.max_model_len(), a.serve.host.c_str(),
               server.port(), a.serve.api_key.empty() ? "" : " (API key required)");
  std::fflush(stderr);

  std::thread http([&] { server.Serve(); });
  g_serving = true;
  {
    std::unique_lock<std::mutex> lock(sig->mu);
    sig->cv.wait(lock, [&] { return sig->count > 0 || !sig->fatal.empty(); });
  }
  std::string fatal;
  {
    std::lock_guard<std::mutex> lock(sig->mu);
    fatal = sig->fatal;
  }
  if (!fatal.empty()) std::fprintf(stderr, "c8 serve: error: %s\n", fatal.c_str());
  std::fprintf(stderr, "c8 serve: shutting down: draining %d request(s) (up to %.1f s)\n",
               server.num_active(), a.shutdown_timeout_s);
  server.BeginDrain();
  auto wait_idle = [&](double seconds) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
    while (server.num_active() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::unique_lock<std::mutex> lock(sig->mu);
      // A second signal (or one after a fatal stop, which drains by itself): stop waiting.
      if (sig->count > (fatal.empty() ? 1 : 0)) break;
      sig->cv.wait_for(lock, std::chrono::milliseconds(50));
    }
  };
  wait_idle(a.shutdown_timeout_s);
  if (server.num_active() > 0) {
    std::fprintf(stderr, "c8 serve: aborting %d request(s)\n", server.num_active());
    engine.AbortAll();
    wait_idle(5.0);
  }
  server.Stop();
  http.join();
  engine.Shutdown();
  {
    // The engine may have failed while draining after a signal.
    std::lock_guard<std::mutex> lock(sig->mu);
    if (fatal.empty() && !sig->fatal.empty()) {
      fatal = sig->fatal;
      std::fprintf(stderr, "c8 serve: error: %s\n", fatal.c_str());
    }
  }
  std::fprintf(stderr, "c8 serve: stopped\n");
  return fatal.empty() ? 0 : 1;
}

}  // namespace

Runner RegisterServe(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* sub = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  sub->add_option("model", a->model, "Model directory (Hugging Face layout)")->required();
  sub->add_option("--host", a->serve.host, "Address to listen on")->capture_default_str();
  sub->add_option("--port", a->serve.port, "Port to listen on (0 = any free port)")
      ->capture_default_str();
  sub->add_option("--api-key", a->serve.api_key,
                  "Require 'Authorization: Bearer KEY' on /v1/* (default: env C8_API_KEY, "
                  "then VLLM_API_KEY)");
  sub->add_option("--served-model-name", a->serve.served_model_name,
                  "Model name clients use (default: the MODEL argument)");
  a->engine.Add(sub);
  sub->add_option("--max-body-bytes", a->serve.max_body_bytes,
                  "Largest accepted request body (larger: 413)")
      ->capture_default_str();
  sub->add_option("--http-threads", a->serve.http_threads,
                  "HTTP worker threads (0 = max-num-seqs + 16)")
      ->capture_default_str();
  sub->add_option("--shutdown-timeout", a->shutdown_timeout_s,
                  "Seconds in-flight requests get to finish on SIGINT/SIGTERM")
      ->capture_default_str();
  sub->add_flag("--return-tokens-as-token-ids", a->serve.return_tokens_as_token_ids,
                "Logprobs name tokens 'token_id:<id>' instead of their text");
  sub->add_flag("--enable-auto-tool-choice", a->serve.enable_auto_tool_choice,
                "Let the model call tools on its own (tool_choice \"auto\", the default when a "
                "chat request has tools); needs --tool-call-parser");
  sub->add_option("--tool-call-parser", a->serve.tool_call_parser,
                  "How the model's tool calls are parsed into tool_calls: hermes (Qwen2.5 / "
                  "Qwen3 / Hermes <tool_call> JSON)")
      ->check(CLI::IsMember({"hermes"}));
  sub->add_flag("--quiet,-q", a->quiet, "No loading progress on stderr");
  return [a, sub]() {
    if (!sub->parsed()) return kNotParsed;
    return Run(*a);
  };
}

}  // namespace c8::cli
