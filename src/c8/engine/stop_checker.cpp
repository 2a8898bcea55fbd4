#include "c8/engine/stop_checker.h"

#include <algorithm>

namespace c8 {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kNone:
      break;
  }
  return "";
}

StopChecker::StopChecker(const SamplingParams& params, std::vector<int32_t> eos_token_ids,
                         std::optional<int64_t> length_limit)
    : stop_(params.stop),
      stop_token_ids_(params.stop_token_ids),
      eos_token_ids_(std::move(eos_token_ids)),
      ignore_eos_(params.ignore_eos),
      include_stop_(params.include_stop_str_in_output),
      min_tokens_(params.min_tokens) {
  if (params.max_tokens.has_value()) limit_ = *params.max_tokens;
  if (length_limit.has_value()) limit_ = limit_ ? std::min(*limit_, *length_limit) : *length_limit;
  // Empty stop strings would match everywhere; Validate rejects them, ignore them here.
  std::erase_if(stop_, [](const std::string& s) { return s.empty(); });
}

size_t StopChecker::PartialStopLength(std::string_view text, std::span<const std::string> stops) {
  size_t best = 0;
  for (const std::string& s : stops) {
    const size_t max_k = std::min(s.size() > 0 ? s.size() - 1 : 0, text.size());
    for (size_t k = max_k; k > best; --k) {
      if (text.substr(text.size() - k) == std::string_view(s).substr(0, k)) {
        best = k;
        break;
      }
    }
  }
  return best;
}

StopUpdate StopChecker::Append(int32_t token_id, std::string_view new_text) {
  StopUpdate up;
  if (finished()) {
    up.finish_reason = finish_reason_;
    up.stop_reason = stop_reason_;
    return up;
  }
  ++num_tokens_;
  const size_t old_len = text_.size();
  text_.append(new_text);

  auto contains = [](const std::vector<int32_t>& ids, int32_t t) {
    return std::find(ids.begin(), ids.end(), t) != ids.end();
  };
  if (num_tokens_ >= min_tokens_) {
    if (!ignore_eos_ && contains(eos_token_ids_, token_id)) {
      finish_reason_ = FinishReason::kStop;
      stop_reason_ = std::monostate{};
      if (!include_stop_) text_.resize(old_len);
    } else if (contains(stop_token_ids_, token_id)) {
      finish_reason_ = FinishReason::kStop;
      stop_reason_ = token_id;
      if (!include_stop_) text_.resize(old_len);
    } else if (!stop_.empty() && text_.size() > old_len) {
      // A match must end inside the new text; it may start up to len-1 bytes before it.
      size_t best_start = std::string::npos, best_end = std::string::npos;
      const std::string* best_stop = nullptr;
      for (const std::string& s : stop_) {
        const size_t from = old_len + 1 > s.size() ? old_len + 1 - s.size() : 0;
        const size_t pos = text_.find(s, from);
        if (pos == std::string::npos) continue;
        const size_t end = pos + s.size();
        if (end < best_end || (end == best_end && pos < best_start)) {
          best_start = pos;
          best_end = end;
          best_stop = &s;
        }
      }
      if (best_stop != nullptr) {
        finish_reason_ = FinishReason::kStop;
        stop_reason_ = *best_stop;
        text_.resize(include_stop_ ? best_end : best_start);
      }
    }
  }
  if (!finished() && limit_.has_value() && num_tokens_ >= *limit_) {
    finish_reason_ = FinishReason::kLength;
  }

  streamed_ = std::min(streamed_, text_.size());
  up.held_back = finished() ? 0 : PartialStopLength(text_, stop_);
  const size_t streamable = text_.size() - up.held_back;
  if (streamable > streamed_) {
    up.delta = text_.substr(streamed_, streamable - streamed_);
    streamed_ = streamable;
  }
  up.finish_reason = finish_reason_;
  up.stop_reason = stop_reason_;
  return up;
}

}  // namespace c8
