#include "c8/server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <mutex>

#include "c8/server/generation_job.h"

namespace c8 {
namespace {

using json = nlohmann::json;

void SendError(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(DumpJson(e.ToJson()), "application/json");
}

ApiError StatusError(int status) {
  switch (status) {
    case 404:
      return ApiError{404, "Not Found: no such route", "invalid_request_error", "", "not_found"};
    case 405:
      return ApiError{405, "Method Not Allowed", "invalid_request_error", "", "method_not_allowed"};
    case 413:
      return ApiError{413, "request body too large", "invalid_request_error", "",
                      "request_too_large"};
    case 400:
      return ApiError{400, "Bad Request", "invalid_request_error", "", ""};
    default:
      if (status >= 500) return ApiError{status, "internal server error", "server_error", "", ""};
      return ApiError{status, "request failed", "invalid_request_error", "", ""};
  }
}

// Counts generation requests in flight (streams until their provider is released).
struct InFlight {
  explicit InFlight(std::atomic<int>& n) : n_(n) { ++n_; }
  ~InFlight() { --n_; }
  std::atomic<int>& n_;
};

}  // namespace

struct HttpServer::Impl {
  ServeOptions opt;
  ModelBundle& bundle;
  AsyncEngine& engine;
  ServerMetrics metrics;
  httplib::Server svr;
  std::atomic<bool> draining{false};
  std::atomic<int> active{0};
  int bound_port = -1;
  std::once_flag structured_once;
  Result<std::shared_ptr<StructuredOutput>> structured = Error("not made");
  int listen_fd = -1;  // the listening socket (set by the socket-options hook)
  int64_t created = static_cast<int64_t>(std::time(nullptr));

  Impl(ServeOptions o, ModelBundle& b, AsyncEngine& e)
      : opt(std::move(o)), bundle(b), engine(e), metrics(opt.served_model_name) {}

  // The grammar engine over the model's vocabulary, made by the first request that needs it.
  Result<std::shared_ptr<StructuredOutput>> Structured() {
    std::call_once(structured_once, [this] {
      if (!bundle.tokenizer) {
        structured = Error("structured output needs the model's tokenizer.json");
        return;
      }
      structured = StructuredOutput::Create(*bundle.tokenizer, engine.vocab_size(),
                                            bundle.defaults.eos_token_ids);
    });
    return structured;
  }

  bool Authorized(const httplib::Request& req, httplib::Response& res) {
    if (opt.api_key.empty()) return true;
    const std::string h = req.get_header_value("Authorization");
    if (h == "Bearer " + opt.api_key) return true;
    SendError(res, ApiError{401,
                            h.empty() ? "missing API key: send 'Authorization: Bearer <key>'"
                                      : "invalid API key",
                            "authentication_error", "", "invalid_api_key"});
    return false;
  }

  void Generate(const httplib::Request& req, httplib::Response& res, ApiKind kind) {
    if (!Authorized(req, res)) return;
    if (draining) {
      SendError(res, ApiError{503, "server is shutting down", "server_error", "", ""});
      return;
    }
    auto guard = std::make_shared<InFlight>(active);
    nlohmann::ordered_json body;
    if (auto e = ParseJsonBody(req.body, &body)) return SendError(res, *e);
    OpenAiRequest r;
    auto err =
        kind == ApiKind::kChat ? ParseChatRequest(body, &r) : ParseCompletionRequest(body, &r);
    if (err) return SendError(res, *err);
    if (!r.model.empty() && r.model != opt.served_model_name) {
      return SendError(res, ApiError{404,
                                     "The model `" + r.model +
                                         "` does not exist (this server "
                                         "serves `" +
                                         opt.served_model_name + "`).",
                                     "invalid_request_error", "model", "model_not_found"});
    }
    GenerationContext ctx{&bundle,
                          &engine,
                          &metrics,
                          opt.served_model_name,
                          opt.return_tokens_as_token_ids,
                          opt.enable_auto_tool_choice && opt.tool_call_parser == "hermes",
                          [this] { return Structured(); }};
    auto started = GenerationJob::Start(
        ctx, std::move(r), NewResponseId(kind == ApiKind::kChat ? "chatcmpl-" : "cmpl-"));
    if (auto* e = std::get_if<ApiError>(&started)) return SendError(res, *e);
    std::shared_ptr<GenerationJob> job = std::move(std::get<1>(started));
    if (!job->stream()) {
      auto out = job->Wait();
      if (auto* e = std::get_if<ApiError>(&out)) return SendError(res, *e);
      res.set_content(DumpJson(std::get<json>(out)), "application/json");
      return;
    }
    // SSE: the provider runs on this worker thread after the handler returns. A failed write
    // means the client went away: abort (frees the KV blocks). Not compressed.
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [job, guard](size_t, httplib::DataSink& sink) -> bool {
          try {
            std::string buf;
            job->NextEvents(&buf, std::chrono::milliseconds(250));
            if (!buf.empty() && !sink.write(buf.data(), buf.size())) {
              job->Abort();
              return false;
            }
            if (job->done()) sink.done();
            return true;
          } catch (...) {
            job->Abort();
            return false;
          }
        },
        [job](bool success) {
          if (!success) job->Abort();
        });
  }

  void Routes() {
    auto wrap = [this](auto fn) {
      return [this, fn](const httplib::Request& req, httplib::Response& res) {
        try {
          fn(req, res);
        } catch (const std::exception& e) {
          SendError(res, ApiError{500, std::string("internal error: ") + e.what(), "server_error",
                                  "", ""});
        } catch (...) {
          SendError(res, ApiError{500, "internal error", "server_error", "", ""});
        }
      };
    };
    svr.Post("/v1/completions", wrap([this](const httplib::Request& q, httplib::Response& s) {
               Generate(q, s, ApiKind::kCompletion);
             }));
    svr.Post("/v1/chat/completions", wrap([this](const httplib::Request& q, httplib::Response& s) {
               Generate(q, s, ApiKind::kChat);
             }));
    auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
      SendError(res, StatusError(405));
    };
    svr.Get("/v1/completions", not_allowed);
    svr.Get("/v1/chat/completions", not_allowed);
    svr.Get("/v1/models", wrap([this](const httplib::Request& q, httplib::Response& s) {
              if (!Authorized(q, s)) return;
              json m = {{"id", opt.served_model_name},
                        {"object", "model"},
                        {"created", created},
                        {"owned_by", "c8"},
                        {"root", opt.model_dir},
                        {"parent", nullptr},
                        {"max_model_len", engine.max_model_len()}};
              s.set_content(DumpJson(json{{"object", "list"}, {"data", json::array({m})}}),
                            "application/json");
            }));
    svr.Get("/health", [](const httplib::Request&, httplib::Response& s) {
      s.status = 200;
      s.set_content("", "text/plain");
    });
    svr.Get("/version", [this](const httplib::Request&, httplib::Response& s) {
      s.set_content(DumpJson(json{{"version", opt.version}}), "application/json");
    });
    svr.Get("/metrics", wrap([this](const httplib::Request&, httplib::Response& s) {
              s.set_content(metrics.Render(engine.stats()), "text/plain; version=0.0.4");
            }));
    // Fills in the body of errors httplib produced itself (404 route, 413 body, 400 parse).
    svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) SendError(res, StatusError(res.status));
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                 std::exception_ptr) { SendError(res, StatusError(500)); });
  }
};

HttpServer::HttpServer(ServeOptions options, ModelBundle& bundle, AsyncEngine& engine)
    : impl_(std::make_unique<Impl>(std::move(options), bundle, engine)) {
  Impl& m = *impl_;
  int threads = m.opt.http_threads;
  if (threads <= 0) threads = std::min(m.opt.max_num_seqs + 16, 1024);
  m.svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  m.svr.set_tcp_nodelay(true);
  m.svr.set_payload_max_length(m.opt.max_body_bytes);
  m.svr.set_keep_alive_max_count(1000);
  m.svr.set_keep_alive_timeout(5);
  m.svr.set_read_timeout(30, 0);
  m.svr.set_write_timeout(30, 0);
  // cpp-httplib (Debian's build) listens with a backlog of 5: a burst of concurrent clients
  // overflows the accept queue and connections are reset before a response. Remember the
  // listening socket (keeping httplib's SO_REUSEADDR) so Bind() can widen the backlog.
  m.svr.set_socket_options([&m](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    m.listen_fd = sock;
  });
  m.Routes();
}

HttpServer::~HttpServer() {
  Stop();
}

Status HttpServer::Bind() {
  Impl& m = *impl_;
  if (m.opt.port == 0) {
    m.bound_port = m.svr.bind_to_any_port(m.opt.host);
    if (m.bound_port <= 0) return Error("cannot bind " + m.opt.host + " (any port)");
  } else {
    if (!m.svr.bind_to_port(m.opt.host, m.opt.port)) {
      return Error("cannot bind " + m.opt.host + ":" + std::to_string(m.opt.port) +
                   " (address in use or not available)");
    }
    m.bound_port = m.opt.port;
  }
  // Listening again on a listening socket only changes its backlog (Linux).
  if (m.listen_fd >= 0) ::listen(m.listen_fd, SOMAXCONN);
  return Status::Ok();
}

int HttpServer::port() const {
  return impl_->bound_port;
}
void HttpServer::Serve() {
  impl_->svr.listen_after_bind();
}
void HttpServer::BeginDrain() {
  impl_->draining = true;
}
int HttpServer::num_active() const {
  return impl_->active.load();
}
void HttpServer::Stop() {
  if (impl_->svr.is_running()) impl_->svr.stop();
}
ServerMetrics& HttpServer::metrics() {
  return impl_->metrics;
}

}  // namespace c8
