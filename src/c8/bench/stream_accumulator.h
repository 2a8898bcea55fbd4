// Turns the data payloads of an OpenAI-compatible streaming response (completions or chat
// completions) into a RequestOutput, with vLLM's rules:
//   - a chunk with a non-empty `choices` array is a token chunk (its text may be empty): the
//     first sets ttft, each later one appends an inter-token gap; the latest sets latency;
//     text comes from choices[0].text (completions) or choices[0].delta.content (chat);
//   - a chunk without choices but with `usage` gives output_tokens (completion_tokens) and
//     prompt_len (prompt_tokens);
//   - "[DONE]" ends the stream; a chunk with an `error` object fails the request with its
//     message; a payload that is not JSON fails it too.
#pragma once

#include <string_view>

#include "c8/bench/request.h"

namespace c8::bench {

class StreamAccumulator {
 public:
  // `out->start_time` must be set (the send time); `out->prompt_len` to the dataset's count.
  explicit StreamAccumulator(RequestOutput* out) : out_(out) {}

  // One SSE data payload received at steady-clock time `t` (s). Returns false once the
  // request has failed (the caller may stop reading).
  bool Consume(std::string_view payload, double t);
  // End of the response body: marks success when a token chunk was seen and nothing failed.
  void Finish();

  bool done() const { return done_; }

 private:
  RequestOutput* out_;
  bool first_ = true;
  bool done_ = false;
  bool failed_ = false;
  double last_ = 0;
};

}  // namespace c8::bench
