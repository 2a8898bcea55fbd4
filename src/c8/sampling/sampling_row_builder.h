// Builds the backend sampling request of one sequence (backend/sampling_rows.h) from its
// SamplingParams and tokens: the one conversion the engine and the sampler tests share.
#pragma once

#include <cstdint>
#include <span>

#include "c8/sampling/sampling_params.h"
#include "c8/sampling/sampling_rows.h"

namespace c8 {

// Appends a row sampling logits row `logits_row` for a sequence with `prompt` and `output`
// tokens so far (RNG step = output.size()). Penalty entries: the distinct tokens of
// prompt and output with repetition_penalty, else of the output, each with its output count.
// While output.size() < min_tokens, `eos` (unless ignore_eos) and the stop token ids are
// masked.
void AppendSamplingRow(int32_t logits_row, const SamplingParams& params, uint64_t seed,
                       uint32_t stream, std::span<const int32_t> prompt,
                       std::span<const int32_t> output, std::span<const int32_t> eos,
                       SamplingRows& rows);

}  // namespace c8
