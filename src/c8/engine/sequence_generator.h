// Generates one sequence at a time through the paged KV cache (the `c8 generate` path until
// the batching scheduler takes over): chunked prefill, then decode, sampling and stop
// handling per token, streaming text deltas. Keeps the previous sequence's cache so a new
// prompt that extends it (a chat turn) only prefills the new suffix.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "c8/engine/model_bundle.h"
#include "c8/engine/sampler.h"
#include "c8/engine/sampling_params.h"
#include "c8/engine/stop_checker.h"

namespace c8 {

struct GenerationResult {
  std::vector<int32_t> output_ids;
  std::string text;
  FinishReason finish_reason = FinishReason::kNone;
  StopReason stop_reason;
  int64_t prompt_tokens = 0;
  int64_t reused_prompt_tokens = 0;  // prompt tokens whose K/V came from the previous run
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

class SequenceGenerator {
 public:
  explicit SequenceGenerator(ModelBundle& bundle, int64_t prefill_chunk = 2048)
      : bundle_(bundle), prefill_chunk_(prefill_chunk) {}

  Result<GenerationResult> Generate(const std::vector<int32_t>& prompt,
                                    const SamplingParams& params,
                                    const std::function<void(std::string_view)>& on_text);

 private:
  Status Step(const std::vector<int32_t>& tokens, int32_t begin, int32_t end,
              std::vector<float>& logits);

  ModelBundle& bundle_;
  int64_t prefill_chunk_;
  std::vector<int32_t> cached_;  // tokens whose K/V occupy slots 0..cached_.size()-1
};

}  // namespace c8
