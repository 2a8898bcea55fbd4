// Formatting of OpenAI-style responses: whole responses, streamed (SSE) chunks, usage and
// logprobs, for /v1/completions ("text_completion") and /v1/chat/completions
// ("chat.completion" / "chat.completion.chunk"). Pure functions of native structs.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "c8/engine/llm_engine.h"
#include "c8/server/openai_request.h"

namespace c8 {

// Text of one token as it is shown in logprobs (the token decoded on its own; may be a
// partial UTF-8 sequence, which DumpJson turns into U+FFFD).
using TokenTextFn = std::function<std::string(int32_t token_id)>;

// Identity of one response: shared by every chunk of a stream.
struct ResponseMeta {
  ApiKind kind = ApiKind::kCompletion;
  std::string id;  // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;
  std::string model;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
};

// Final state of one choice.
struct ChoiceResult {
  int index = 0;
  std::string text;
  std::vector<TokenOutput> tokens;  // kept only when logprobs were requested
  FinishReason finish_reason = FinishReason::kNone;
  StopReason stop_reason;
  bool aborted = false;
};

// "stop" / "length" / "abort"; null while not finished.
nlohmann::json FinishReasonJson(FinishReason reason, bool aborted);
// vLLM stop_reason: null (EOS / not stopped), the stop string, or the stop token id.
nlohmann::json StopReasonJson(const StopReason& reason);
// {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details": {...}}
nlohmann::json UsageJson(const Usage& usage);

// Completions logprobs: {"tokens", "token_logprobs", "top_logprobs" (list of {token:
// logprob} dicts holding the top N and the sampled token), "text_offset"}. `text_offset` is
// the offset (in characters) of the first token; it is advanced past the tokens.
nlohmann::json CompletionLogprobsJson(std::span<const TokenOutput> tokens,
                                      const TokenTextFn& token_text, int64_t* text_offset);
// Chat logprobs: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
nlohmann::json ChatLogprobsJson(std::span<const TokenOutput> tokens, const TokenTextFn& token_text);

// Whole (non-streamed) response. `logprobs` is per choice (null when not requested), in the
// order of `choices`.
nlohmann::json ResponseJson(const ResponseMeta& meta, const std::vector<ChoiceResult>& choices,
                            const std::vector<nlohmann::json>& logprobs, const Usage& usage);

// One streamed chunk for one choice. Chat: `role` adds {"role": "assistant"} to the delta
// (the first chunk of each choice); `text` becomes delta.content (omitted from the final
// chunk when empty). finish_reason / stop_reason are null until the choice finishes.
nlohmann::json ChunkJson(const ResponseMeta& meta, int index, const std::string& text, bool role,
                         const nlohmann::json& logprobs, const nlohmann::json& finish_reason,
                         const nlohmann::json& stop_reason);
// The final usage chunk of stream_options.include_usage: empty choices.
nlohmann::json UsageChunkJson(const ResponseMeta& meta, const Usage& usage);

// "data: <json>\n\n"
std::string SseData(const nlohmann::json& j);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

// Number of Unicode characters in UTF-8 `s` (bytes that are not continuation bytes).
int64_t Utf8Length(const std::string& s);

}  // namespace c8
