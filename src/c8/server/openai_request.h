// Parsing and validation of OpenAI-style request bodies (/v1/completions and
// /v1/chat/completions) into native structs. Pure functions: no model, no engine, no I/O.
//
// Rules (OpenAI / vLLM): unknown fields are ignored, except those a client relies on that c8
// does not implement (e.g. response_format structural_tag, another guided decoding backend),
// which get a 400 naming the field rather than silence; null means "unset"; a field of the wrong
// type, or out of its range, gives a 400 ApiError whose `param` names the field. Integers may
// be written as integral floats (5.0). Range checks reuse SamplingParams::Validate.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "c8/sampling/sampling_params.h"
#include "c8/server/api_error.h"
#include "c8/structured/grammar_spec.h"

namespace c8 {

enum class ApiKind { kCompletion, kChat };

// tool_choice of a chat request with tools: none (tools only rendered into the prompt), auto
// (the model may call; its output is parsed, --enable-auto-tool-choice), required (at least one
// call, forced by a grammar), named (that function, forced by its parameters' schema).
enum class ToolChoice { kNone, kAuto, kRequired, kNamed };

// One prompt of /v1/completions: text, or token ids.
struct PromptInput {
  bool is_text = true;
  std::string text;
  std::vector<int32_t> ids;
};

struct OpenAiRequest {
  ApiKind kind = ApiKind::kCompletion;
  std::string model;  // "" when absent

  // /v1/completions
  std::vector<PromptInput> prompts;  // a batch: each prompt gives n choices
  bool echo = false;

  // /v1/chat/completions
  nlohmann::ordered_json messages;  // array of {role, content (string or null), ...}
  // Extra template variables: chat_template_kwargs (e.g. enable_thinking), tools, documents.
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
  bool add_generation_prompt = true;
  bool chat_logprobs = false;  // logprobs: true (the top count is params.logprobs)
  ToolChoice tool_choice = ToolChoice::kNone;
  std::string tool_name;  // kNamed
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();

  // Both.
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  SamplingParams params;       // params.logprobs: completions `logprobs`, chat `top_logprobs`
  // vLLM's return_token_ids: prompt and output token ids in the response (and each chunk).
  bool return_token_ids = false;
  // Structured output: response_format json_object / json_schema, guided_json / guided_regex /
  // guided_choice / guided_grammar, structured_outputs, or the forced tool calls of
  // tool_choice required / named. Inactive when none is set.
  GrammarSpec grammar;
  bool max_tokens_set = false;
  // Sampling fields the request set (names as GenerationDefaults::ApplyTo expects).
  std::vector<std::string> explicit_fields;
};

// Largest accepted `n` (fan-out) per request.
inline constexpr int32_t kMaxN = 128;
// Deepest JSON nesting accepted in a body.
inline constexpr int kMaxJsonDepth = 64;

// Parses a body as a JSON object without exceptions. Rejects nesting deeper than `max_depth`
// before parsing (so nothing recursive ever sees it).
std::optional<ApiError> ParseJsonBody(std::string_view body, nlohmann::ordered_json* out,
                                      int max_depth = kMaxJsonDepth);

// Fills `out` from a parsed body. Default max_tokens: 16 for completions (OpenAI / vLLM),
// unset (up to the context) for chat.
std::optional<ApiError> ParseCompletionRequest(const nlohmann::ordered_json& body,
                                               OpenAiRequest* out);
std::optional<ApiError> ParseChatRequest(const nlohmann::ordered_json& body, OpenAiRequest* out);

// The ApiError for a SamplingParams::Validate failure: param = the field the message starts
// with (e.g. "temperature must be in [0, 2], got 3" -> "temperature"); for chat requests
// "logprobs" maps to "top_logprobs".
ApiError ValidationError(const Status& status, ApiKind kind);

}  // namespace c8
