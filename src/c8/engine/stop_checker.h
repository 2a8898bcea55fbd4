// Per-sequence stop detection over streamed tokens and detokenized text (vLLM semantics).
//
// After each generated token, Append(token_id, new_text) checks, in this order:
//   0. fewer than min_tokens tokens generated so far (this one included): no stop check at all
//      (the sampler also masks EOS / stop_token_ids until then), only the length limit;
//   1. EOS (unless ignore_eos)        -> kStop, stop_reason = monostate (OpenAI stop_reason null);
//   2. a stop_token_ids entry          -> kStop, stop_reason = that token id;
//      for 1 and 2 the token's text is dropped unless include_stop_str_in_output;
//   3. a stop string completed by the new text -> kStop, stop_reason = the stop string; the output
//      text is cut before the match (after it with include_stop_str_in_output). When several stop
//      strings complete in the same chunk, the one that completes first (smallest end offset)
//      wins, then the longest of those (the one that starts first);
//   4. output tokens >= max_tokens (or the extra length_limit) -> kLength.
//
// Streaming: text is never streamed while it could be the beginning of a stop string. Each
// update returns `delta`, the newly streamable text: everything except the longest suffix of the
// output text that is a proper prefix of some stop string (`held_back` bytes). Once finished,
// nothing is held back (the final delta flushes the rest of the truncated text).
// Text is UTF-8 and matched byte-wise; sizes are in bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "c8/sampling/sampling_params.h"

namespace c8 {

enum class FinishReason { kNone, kStop, kLength };

// OpenAI finish_reason: "stop", "length"; "" for kNone.
const char* FinishReasonName(FinishReason reason);

// OpenAI/vLLM stop_reason: none (EOS or not stopped), the matched stop string, or the stop token
// id.
using StopReason = std::variant<std::monostate, std::string, int32_t>;

struct StopUpdate {
  FinishReason finish_reason = FinishReason::kNone;
  StopReason stop_reason;
  std::string delta;     // text newly safe to stream to the client
  size_t held_back = 0;  // trailing bytes of the output text withheld (possible stop-string start)
};

class StopChecker {
 public:
  // eos_token_ids: the model's EOS ids. length_limit: an extra cap on output tokens (e.g.
  // max_model_len - prompt_len); the effective limit is the smaller of it and params.max_tokens.
  // With neither set the checker never returns kLength.
  StopChecker(const SamplingParams& params, std::vector<int32_t> eos_token_ids,
              std::optional<int64_t> length_limit = std::nullopt);

  // Feeds one generated token and the text the detokenizer produced for it (may be empty).
  // After the sequence finished, further calls change nothing and return an empty delta.
  StopUpdate Append(int32_t token_id, std::string_view new_text);

  bool finished() const { return finish_reason_ != FinishReason::kNone; }
  FinishReason finish_reason() const { return finish_reason_; }
  const StopReason& stop_reason() const { return stop_reason_; }
  // Full output text so far; after a stop it is the final (truncated) text.
  const std::string& text() const { return text_; }
  int64_t num_tokens() const { return num_tokens_; }
  // Bytes of text() already returned through deltas.
  size_t streamed() const { return streamed_; }

  // Length of the longest suffix of `text` that is a proper prefix of one of `stops`.
  static size_t PartialStopLength(std::string_view text, std::span<const std::string> stops);

 private:
  std::vector<std::string> stop_;
  std::vector<int32_t> stop_token_ids_;
  std::vector<int32_t> eos_token_ids_;
  bool ignore_eos_;
  bool include_stop_;
  int64_t min_tokens_;
  std::optional<int64_t> limit_;

  std::string text_;
  int64_t num_tokens_ = 0;
  size_t streamed_ = 0;
  FinishReason finish_reason_ = FinishReason::kNone;
  StopReason stop_reason_;
};

}  // namespace c8
