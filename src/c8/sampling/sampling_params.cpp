#include "c8/sampling/sampling_params.h"

#include <sstream>

namespace c8 {
namespace {

template <class T>
std::string Str(T v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Written as !(lo <= v && v <= hi) so that NaN is rejected too.
Status CheckClosed(const char* field, double v, double lo, double hi) {
  if (!(lo <= v && v <= hi)) {
    return Error(std::string(field) + " must be in [" + Str(lo) + ", " + Str(hi) + "], got " +
                 Str(v));
  }
  return Status::Ok();
}

Status CheckLeftOpen(const char* field, double v, double lo, double hi) {
  if (!(lo < v && v <= hi)) {
    return Error(std::string(field) + " must be in (" + Str(lo) + ", " + Str(hi) + "], got " +
                 Str(v));
  }
  return Status::Ok();
}

}  // namespace

Status SamplingParams::Validate() const {
  C8_RETURN_IF_ERROR(CheckClosed("temperature", temperature, 0.0, 2.0));
  C8_RETURN_IF_ERROR(CheckLeftOpen("top_p", top_p, 0.0, 1.0));
  if (top_k < -1) {
    return Error("top_k must be -1 or 0 (disabled) or >= 1, got " + Str(top_k));
  }
  C8_RETURN_IF_ERROR(CheckClosed("min_p", min_p, 0.0, 1.0));
  C8_RETURN_IF_ERROR(CheckLeftOpen("repetition_penalty", repetition_penalty, 0.0, 2.0));
  C8_RETURN_IF_ERROR(CheckClosed("frequency_penalty", frequency_penalty, -2.0, 2.0));
  C8_RETURN_IF_ERROR(CheckClosed("presence_penalty", presence_penalty, -2.0, 2.0));
  if (max_tokens.has_value() && *max_tokens < 1) {
    return Error("max_tokens must be >= 1, got " + Str(*max_tokens));
  }
  if (min_tokens < 0) {
    return Error("min_tokens must be >= 0, got " + Str(min_tokens));
  }
  if (max_tokens.has_value() && min_tokens > *max_tokens) {
    return Error("min_tokens must be <= max_tokens (" + Str(*max_tokens) + "), got " +
                 Str(min_tokens));
  }
  for (size_t i = 0; i < stop.size(); ++i) {
    if (stop[i].empty()) {
      return Error("stop[" + Str(i) + "] must not be an empty string");
    }
  }
  for (size_t i = 0; i < stop_token_ids.size(); ++i) {
    if (stop_token_ids[i] < 0) {
      return Error("stop_token_ids[" + Str(i) + "] must be >= 0, got " + Str(stop_token_ids[i]));
    }
  }
  if (n < 1) {
    return Error("n must be >= 1, got " + Str(n));
  }
  if (logprobs.has_value() && (*logprobs < 0 || *logprobs > kMaxLogprobs)) {
    return Error("logprobs must be in [0, " + Str(kMaxLogprobs) + "], got " + Str(*logprobs));
  }
  return Status::Ok();
}

}  // namespace c8
