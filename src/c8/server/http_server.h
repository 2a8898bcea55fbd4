// The OpenAI-compatible HTTP server (cpp-httplib, one worker thread per connection).
//
// Routes: POST /v1/completions, POST /v1/chat/completions (JSON or SSE streams),
// GET /v1/models, GET /health, GET /version, GET /metrics (Prometheus text).
// Worker threads parse, template and tokenize (see engine/async_engine.h for the thread
// ownership), submit to the AsyncEngine and wait on their request's output queue. A
// streaming client that goes away (a failed write) has its requests aborted, which frees
// their KV blocks. Every handler catches everything: a bad request is a 4xx OpenAI-style
// error body, never a crash.
#pragma once

#include <memory>
#include <string>

#include "c8/engine/async_engine.h"
#include "c8/server/metrics.h"
#include "c8/server/serve_options.h"

namespace c8 {

class HttpServer {
 public:
  // `bundle` and `engine` must outlive the server.
  HttpServer(ServeOptions options, ModelBundle& bundle, AsyncEngine& engine);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (port 0: a free one). Errors name the address.
  Status Bind();
  int port() const;
  // Accepts and serves until Stop(); blocks the calling thread.
  void Serve();
  // Drain: from now on generation requests get 503 (health, metrics still answer).
  void BeginDrain();
  // HTTP generation requests being served (streams included).
  int num_active() const;
  // Stops listening and returns from Serve() once the workers are done.
  void Stop();

  ServerMetrics& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace c8
