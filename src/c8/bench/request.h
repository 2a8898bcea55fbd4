// One benchmark request and what came back: the unit the sender produces and the metrics consume.
// Times are seconds on the steady clock (like Python's time.perf_counter()).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace c8::bench {

// What to send. `prompt_ids` is used when `prompt_text` is empty (token-id prompts to
// /v1/completions); the chat backend needs text.
struct RequestInput {
  std::string prompt_text;
  std::vector<int32_t> prompt_ids;
  int64_t prompt_len = 0;  // tokens, as the dataset counted them
  int64_t output_len = 0;  // max_tokens / max_completion_tokens
};

// What one request produced, with vLLM's RequestFuncOutput meaning:
//   ttft: first streamed chunk carrying `choices` minus the send time;
//   itl: gaps between consecutive `choices` chunks (one per chunk after the first);
//   latency: last `choices` chunk minus the send time;
//   output_tokens: usage.completion_tokens of the final usage chunk (0 when absent);
//   prompt_len: the dataset's count, replaced by usage.prompt_tokens when the server sends it.
struct RequestOutput {
  bool success = false;
  std::string error;
  std::string generated_text;
  double start_time = 0;  // when the request was sent (steady clock, s)
  double ttft = 0;
  double latency = 0;
  std::vector<double> itl;
  int64_t output_tokens = 0;
  int64_t num_chunks = 0;  // chunks carrying `choices`
  int64_t prompt_len = 0;
  double client_queue_time = 0;  // time waiting for a --max-concurrency slot
};

}  // namespace c8::bench
