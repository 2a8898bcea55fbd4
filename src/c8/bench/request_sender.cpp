#include "c8/bench/request_sender.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "c8/bench/sse_parser.h"
#include "c8/bench/stream_accumulator.h"

namespace c8::bench {

namespace {

void SetTimeouts(httplib::Client* c, double timeout_s) {
  const double t = std::max(timeout_s, 0.001);
  const time_t sec = static_cast<time_t>(std::floor(t));
  const time_t usec = static_cast<time_t>((t - std::floor(t)) * 1e6);
  c->set_connection_timeout(sec, usec);
  c->set_read_timeout(sec, usec);
  c->set_write_timeout(sec, usec);
}

// The message of an OpenAI-style error body ({"error": {"message": ...}} or {"message": ...}),
// else the body itself (shortened).
std::string ErrorBodyMessage(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (auto e = j.find("error"); e != j.end()) {
      if (e->is_object() && e->contains("message") && (*e)["message"].is_string()) {
        return (*e)["message"].get<std::string>();
      }
      if (e->is_string()) return e->get<std::string>();
    }
    if (auto m = j.find("message"); m != j.end() && m->is_string()) return m->get<std::string>();
    if (auto d = j.find("detail"); d != j.end())
      return d->is_string() ? d->get<std::string>() : d->dump();
  }
  return body.size() > 500 ? body.substr(0, 500) + "..." : body;
}

}  // namespace

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Result<std::pair<std::string, std::string>> SplitBaseUrl(const std::string& base_url) {
  std::string url = base_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return Error("--base-url '" + base_url + "': expected http://HOST[:PORT][/PREFIX]");
  }
  std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return Error("--base-url '" + base_url + "': scheme must be http or https");
  }
  size_t host_start = scheme_end + 3;
  size_t path_start = url.find('/', host_start);
  std::string host_port = url.substr(0, path_start);
  if (host_port.size() <= host_start) return Error("--base-url '" + base_url + "': no host");
  std::string prefix = path_start == std::string::npos ? "" : url.substr(path_start);
  return std::make_pair(host_port, prefix);
}

Result<nlohmann::json> BuildPayload(const EndpointConfig& cfg, const RequestInput& in) {
  nlohmann::json p = nlohmann::json::object();
  p["model"] = cfg.model;
  if (cfg.backend == "openai") {
    if (!in.prompt_text.empty() || in.prompt_ids.empty()) {
      p["prompt"] = in.prompt_text;
    } else {
      p["prompt"] = in.prompt_ids;
    }
    p["repetition_penalty"] = 1.0;
    p["max_tokens"] = in.output_len;
  } else if (cfg.backend == "openai-chat") {
    if (in.prompt_text.empty() && !in.prompt_ids.empty()) {
      return Error("--backend openai-chat: prompts must be text (give --tokenizer)");
    }
    p["messages"] = nlohmann::json::array(
        {{{"role", "user"},
          {"content", nlohmann::json::array({{{"type", "text"}, {"text", in.prompt_text}}})}}});
    p["max_completion_tokens"] = in.output_len;
  } else {
    return Error("--backend '" + cfg.backend + "': expected openai or openai-chat");
  }
  p["stream"] = true;
  p["stream_options"] = {{"include_usage", true}};
  if (cfg.extra_body.is_object()) {
    for (auto& [k, v] : cfg.extra_body.items()) p[k] = v;
  }
  return p;
}

Result<std::unique_ptr<RequestSender>> RequestSender::Create(const EndpointConfig& cfg) {
  C8_ASSIGN_OR_RETURN(auto split, SplitBaseUrl(cfg.base_url));
  std::unique_ptr<RequestSender> s(new RequestSender());
  s->cfg_ = cfg;
  s->path_ = split.second + cfg.endpoint;
  s->client_ = std::make_unique<httplib::Client>(split.first);
  if (!s->client_->is_valid()) {
    return Error("--base-url '" + cfg.base_url + "': cannot create an HTTP client for it");
  }
  s->client_->set_keep_alive(true);
  // No compression: a compressed event stream reaches the client in bursts, not per token.
  s->client_->set_decompress(false);
  s->client_->set_tcp_nodelay(true);
  SetTimeouts(s->client_.get(), cfg.timeout_s);
  return s;
}

RequestSender::~RequestSender() = default;

RequestOutput RequestSender::Send(const RequestInput& in) {
  RequestOutput out;
  out.prompt_len = in.prompt_len;
  auto payload = BuildPayload(cfg_, in);
  if (!payload.ok()) {
    out.error = payload.message();
    out.start_time = NowSeconds();
    return out;
  }
  httplib::Request req;
  req.method = "POST";
  req.path = path_;
  req.headers = {{"Content-Type", "application/json"},
                 {"Accept", "text/event-stream"},
                 {"Accept-Encoding", "identity"}};
  if (!cfg_.api_key.empty()) req.headers.emplace("Authorization", "Bearer " + cfg_.api_key);
  req.body = payload->dump();

  int status = -1;
  std::string reason, error_body;
  bool timed_out = false;
  SseParser parser;
  StreamAccumulator acc(&out);
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    reason = r.reason;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (status != 200) {
      if (error_body.size() < 65536) error_body.append(data, n);
      return true;
    }
    const double t = NowSeconds();
    for (const std::string& p : parser.Feed(std::string_view(data, n))) {
      if (!acc.Consume(p, t)) return false;
    }
    if (t - out.start_time > cfg_.timeout_s) {
      timed_out = true;
      return false;
    }
    return true;
  };

  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  out.start_time = NowSeconds();
  const bool sent = client_->send(req, res, err);
  if (status == 200 && !out.error.empty()) return out;  // failed inside the stream
  if (timed_out) {
    out.success = false;
    out.error = "request timed out after " + std::to_string(cfg_.timeout_s) + " s";
    return out;
  }
  if (!sent && status == -1) {
    out.success = false;
    out.error = "HTTP request to " + path_ + " failed: " + httplib::to_string(err) + " error";
    return out;
  }
  if (status != 200) {
    if (error_body.empty()) error_body = res.body;
    out.success = false;
    out.error = "HTTP " + std::to_string(status) + (reason.empty() ? "" : " " + reason);
    if (!error_body.empty()) out.error += ": " + ErrorBodyMessage(error_body);
    return out;
  }
  if (!sent) {
    out.success = false;
    out.error = "HTTP response from " + path_ + " broke off: " + httplib::to_string(err) + " error";
    return out;
  }
  const double t = NowSeconds();
  for (const std::string& p : parser.Finish()) acc.Consume(p, t);
  acc.Finish();
  return out;
}

Result<std::pair<std::string, std::string>> FetchFirstModel(const std::string& base_url,
                                                            const std::string& api_key,
                                                            double timeout_s) {
  C8_ASSIGN_OR_RETURN(auto split, SplitBaseUrl(base_url));
  httplib::Client client(split.first);
  SetTimeouts(&client, std::min(timeout_s, 60.0));
  httplib::Headers headers;
  if (!api_key.empty()) headers.emplace("Authorization", "Bearer " + api_key);
  const std::string url = base_url + "/v1/models";
  auto res = client.Get(split.second + "/v1/models", headers);
  if (!res) {
    return Error("GET " + url + ": " + httplib::to_string(res.error()) +
                 " error (is the server running?)");
  }
  if (res->status != 200) {
    return Error("GET " + url + ": HTTP " + std::to_string(res->status) + ": " +
                 ErrorBodyMessage(res->body));
  }
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
      !j["data"][0].is_object() || !j["data"][0].contains("id") ||
      !j["data"][0]["id"].is_string()) {
    return Error("GET " + url + ": no models found (expected data[0].id)");
  }
  std::string id = j["data"][0]["id"].get<std::string>();
  std::string root = id;
  if (j["data"][0].contains("root") && j["data"][0]["root"].is_string()) {
    root = j["data"][0]["root"].get<std::string>();
  }
  return std::make_pair(id, root);
}

}  // namespace c8::bench
