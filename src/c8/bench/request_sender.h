// HTTP client for one OpenAI-compatible endpoint (cpp-httplib): builds vLLM's request payloads,
// streams the response through SseParser + StreamAccumulator and times it.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "c8/bench/request.h"
#include "c8/util/status.h"

namespace httplib {
class Client;
}

namespace c8::bench {

struct EndpointConfig {
  std::string base_url = "http://127.0.0.1:8000";  // scheme://host[:port][/prefix]
  std::string endpoint = "/v1/completions";
  std::string backend = "openai";  // "openai" (completions) | "openai-chat"
  std::string model;               // the "model" field sent
  std::string api_key;             // sent as "Authorization: Bearer ..." when not empty
  double timeout_s = 6 * 3600;     // per request, from send to the end of the body
  // Merged into every payload last: sampling parameters, ignore_eos.
  nlohmann::json extra_body = nlohmann::json::object();
};

// The JSON body vLLM's benchmark sends:
//   openai:      {model, prompt (text or token ids), repetition_penalty: 1.0, max_tokens,
//                 stream: true, stream_options: {include_usage: true}, ...extra_body}
//   openai-chat: {model, messages: [{role: user, content: [{type: text, text}]}],
//                 max_completion_tokens, stream: true, stream_options: {...}, ...extra_body}
Result<nlohmann::json> BuildPayload(const EndpointConfig& cfg, const RequestInput& in);

// Seconds on the steady clock (the benchmark's time base).
double NowSeconds();

// Splits "http://host:port/prefix" into {"http://host:port", "/prefix"}; error when the URL
// has no http:// or https:// scheme or no host.
Result<std::pair<std::string, std::string>> SplitBaseUrl(const std::string& base_url);

// Sends requests to one endpoint, reusing its keep-alive connection between calls. Not
// thread-safe: use one sender per worker thread.
class RequestSender {
 public:
  static Result<std::unique_ptr<RequestSender>> Create(const EndpointConfig& cfg);
  ~RequestSender();

  // Sends `in` and returns the timed output. Never fails as a call: HTTP errors, connection
  // errors and malformed streams come back as success = false with `error` set.
  RequestOutput Send(const RequestInput& in);

 private:
  RequestSender() = default;
  EndpointConfig cfg_;
  std::string path_;  // prefix + endpoint
  std::unique_ptr<httplib::Client> client_;
};

// GET {base_url}/v1/models: {id, root} of the first model ("root" falls back to "id").
Result<std::pair<std::string, std::string>> FetchFirstModel(const std::string& base_url,
                                                            const std::string& api_key,
                                                            double timeout_s);

}  // namespace c8::bench
