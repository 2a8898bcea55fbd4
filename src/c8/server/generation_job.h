// One OpenAI generation request in flight, from parsed request to response: builds the
// prompts (chat template / tokenizer, on the calling HTTP thread), checks them against the
// context, fans out prompts x n engine requests (same seed, rng_stream = sibling index),
// collects their outputs from the AsyncEngine and formats the whole response or its SSE
// chunks. Choice index = prompt index * n + sibling. No HTTP here: the server feeds the
// stream text to its socket.
//
// Destroying a job whose requests are unfinished aborts them (client gone, server error).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "c8/engine/async_engine.h"
#include "c8/server/api_error.h"
#include "c8/server/metrics.h"
#include "c8/server/openai_request.h"
#include "c8/server/openai_response.h"
#include "c8/server/tool_call_parser.h"
#include "c8/structured/structured_output.h"

namespace c8 {

struct GenerationContext {
  ModelBundle* bundle = nullptr;
  AsyncEngine* engine = nullptr;
  ServerMetrics* metrics = nullptr;  // optional
  std::string model_name;            // reported in responses
  // --return-tokens-as-token-ids: logprobs name tokens "token_id:<id>" (text may not
  // round-trip through JSON, ids always do).
  bool tokens_as_ids = false;
  // --enable-auto-tool-choice with --tool-call-parser hermes: tool_choice "auto" is served
  // (the model's <tool_call> output becomes tool_calls).
  bool auto_tool_choice = false;
  // The grammar engine for structured output (made on first use); null: none.
  std::function<Result<std::shared_ptr<StructuredOutput>>()> structured;
};

class GenerationJob {
 public:
  // Tokenizes, validates against the context and submits. `id` is the response id
  // ("cmpl-..." / "chatcmpl-..."), also the prefix of the engine request ids.
  static std::variant<ApiError, std::unique_ptr<GenerationJob>> Start(const GenerationContext& ctx,
                                                                      OpenAiRequest request,
                                                                      std::string id);
  ~GenerationJob();

  // Waits for every choice and returns the whole response, or an error (500 when the engine
  // failed a request).
  std::variant<ApiError, nlohmann::json> Wait();

  // Streaming: waits up to `timeout` for outputs and appends their SSE events to *out
  // (chunks; then, once everything finished, the usage chunk and "data: [DONE]").
  void NextEvents(std::string* out, std::chrono::milliseconds timeout);
  // The stream is complete ("data: [DONE]" was produced).
  bool done() const { return done_sent_; }
  // Aborts every unfinished request (the client went away).
  void Abort();

  bool stream() const { return request_.stream; }
  int num_choices() const { return static_cast<int>(choices_.size()); }

 private:
  struct Choice {
    std::string engine_id;
    int prompt_index = 0;
    ChoiceResult result;
    std::string error;
    bool finished = false;
    bool sent_first = false;  // stream: role / echo sent
    int64_t prompt_tokens = 0, output_tokens = 0, cached_tokens = 0;
    int64_t text_offset = 0;  // completions logprobs
    std::chrono::steady_clock::time_point first_token, last_token;
    bool has_token = false;
    std::vector<int32_t> token_ids;                 // every output token so far
    std::unique_ptr<HermesToolStreamParser> tools;  // stream, tool_choice auto
    bool tool_header_sent = false;                  // stream, named tool choice
  };
  // Chat with tools: turns the choice's final text into message.content / tool_calls.
  void ShapeToolMessage(nlohmann::json& choice, const Choice& c) const;
  // Chat with tools, streaming: rewrites one chunk's delta (and finish_reason).
  void ShapeToolDelta(nlohmann::json& chunk, Choice& c, const std::string& text, bool finished);
  // return_token_ids: adds prompt_token_ids / token_ids to a response or chunk.
  void AddTokenIds(nlohmann::json& j, const Choice& c, std::span<const int32_t> ids,
                   bool with_prompt) const;

  GenerationJob() = default;
  // Applies one engine event to its choice (and the metrics). Returns the choice index.
  int Apply(EngineEvent& event);
  nlohmann::json LogprobsOf(Choice& c, std::span<const TokenOutput> tokens);
  Usage TotalUsage() const;
  std::string TokenText(int32_t id) const;

  GenerationContext ctx_;
  OpenAiRequest request_;
  ResponseMeta meta_;
  std::vector<std::string> prompt_texts_;         // echo
  std::vector<std::vector<int32_t>> prompt_ids_;  // return_token_ids
  std::vector<Choice> choices_;
  std::shared_ptr<OutputStream> outputs_;
  std::chrono::steady_clock::time_point arrival_;
  int remaining_ = 0;
  bool done_sent_ = false;
};

// A fresh response id: prefix + 24 hex digits.
std::string NewResponseId(const std::string& prefix);

}  // namespace c8
