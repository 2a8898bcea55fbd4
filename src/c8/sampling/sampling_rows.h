// Batched token sampling on a backend: plain host-side descriptions of the rows to sample
// (Backend::SampleRows) and of what comes back. No engine dependency.
//
// Semantics are those of the host Sampler (c8/sampling/sampler.h, vLLM v1 order):
// penalties, min_tokens masking, greedy argmax (ties to the lowest id), temperature, min_p,
// top_k, top_p (ties at each boundary kept), exponential race with Philox4x32-10 uniforms
// keyed by (seed, stream, step, token id); logprobs are raw-logit log_softmax.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "c8/util/status.h"

namespace c8 {

// Largest number of top logprobs a row may ask for (OpenAI top_logprobs limit).
inline constexpr int kMaxSampleLogprobs = 20;

// Token whose logit is penalized: a distinct token of (prompt ∪ output) when the repetition
// penalty is on, else a distinct output token. output_count = occurrences in the output.
struct PenaltyToken {
  int32_t token_id = 0;
  int32_t output_count = 0;
};

// One row to sample. Ranges index the flat arrays of SamplingRows.
struct SamplingRow {
  int32_t logits_row = 0;  // row of the (R, V) logits tensor
  double temperature = 1.0;
  double top_p = 1.0;
  int32_t top_k = -1;  // <= 0: off
  double min_p = 0.0;
  double repetition_penalty = 1.0;  // applied to every penalty token
  double frequency_penalty = 0.0;   // applied to penalty tokens with output_count > 0
  double presence_penalty = 0.0;    // applied to penalty tokens with output_count > 0
  uint64_t seed = 0;
  uint32_t stream = 0;
  uint64_t step = 0;          // Philox counter step (number of tokens generated so far)
  int32_t num_logprobs = -1;  // -1: none; 0..kMaxSampleLogprobs: sampled token + top-N
  int64_t penalty_begin = 0;  // [penalty_begin, +penalty_count) of SamplingRows::penalty
  int32_t penalty_count = 0;
  int64_t masked_begin = 0;  // [masked_begin, +masked_count) of SamplingRows::masked
  int32_t masked_count = 0;  // ids forced to -inf (EOS / stop ids below min_tokens)
  // Structured output: first word of this row's allowed-token bitmask in *SamplingRows::allowed
  // (AllowedMaskWords(vocab) words, c8/sampling/token_constraint.h); -1: every token allowed.
  // Tokens outside the mask are -inf after penalties, like min_tokens masking; logprobs stay
  // those of the raw logits.
  int64_t allowed_begin = -1;

  bool IsGreedy() const { return temperature < 1e-5; }
  bool PenaltiesEnabled() const {
    return repetition_penalty != 1.0 || frequency_penalty != 0.0 || presence_penalty != 0.0;
  }
};

struct SamplingRows {
  std::vector<SamplingRow> rows;
  std::vector<PenaltyToken> penalty;  // flat, distinct token ids within one row
  std::vector<int32_t> masked;        // flat
  // Allowed-token bitmasks of the constrained rows (owned by the caller, filled before
  // SampleRows reads them; see StepInput::before_sampling). Null when no row is constrained.
  const std::vector<uint32_t>* allowed = nullptr;

  void Clear() {
    rows.clear();
    penalty.clear();
    masked.clear();
    allowed = nullptr;
  }
};

struct TokenLogprob {
  int32_t token_id = -1;
  float logprob = 0.0f;
};

// Result of one row. On a row error, `error` is non-empty and the rest is unspecified.
struct SampledToken {
  int32_t token_id = -1;
  // Filled when the row asked for logprobs (num_logprobs >= 0).
  bool has_logprob = false;
  float logprob = 0.0f;
  int32_t rank = 0;  // 1 + number of other tokens whose raw logit is >= the sampled token's
  std::vector<TokenLogprob> top_logprobs;  // descending raw logit, ties to the lower id
  std::string error;
};

// Structural check shared by the backends: logits (num_logit_rows, vocab); every range inside
// its flat array; logits_row in range; num_logprobs in [-1, kMaxSampleLogprobs]. Token ids are
// checked per row by the samplers (a bad id is that row's error).
inline Status CheckSamplingRows(const SamplingRows& s, int64_t num_logit_rows, int64_t vocab) {
  if (vocab <= 0 || vocab > 0x7fffffff) {
    return Error("SampleRows: logits vocab size " + std::to_string(vocab) + " is out of range");
  }
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const SamplingRow& r = s.rows[i];
    const std::string at = "SampleRows: rows[" + std::to_string(i) + "]: ";
    if (r.logits_row < 0 || r.logits_row >= num_logit_rows) {
      return Error(at + "logits_row " + std::to_string(r.logits_row) + " outside the " +
                   std::to_string(num_logit_rows) + " logits rows");
    }
    if (r.num_logprobs < -1 || r.num_logprobs > kMaxSampleLogprobs) {
      return Error(at + "num_logprobs " + std::to_string(r.num_logprobs) + " outside [-1, " +
                   std::to_string(kMaxSampleLogprobs) + "]");
    }
    if (r.penalty_count < 0 || r.penalty_begin < 0 ||
        r.penalty_begin + r.penalty_count > static_cast<int64_t>(s.penalty.size())) {
      return Error(at + "penalty range outside the flat penalty array");
    }
    if (r.masked_count < 0 || r.masked_begin < 0 ||
        r.masked_begin + r.masked_count > static_cast<int64_t>(s.masked.size())) {
      return Error(at + "masked range outside the flat masked array");
    }
    if (r.allowed_begin >= 0 &&
        (s.allowed == nullptr ||
         r.allowed_begin + (vocab + 31) / 32 > static_cast<int64_t>(s.allowed->size()))) {
      return Error(at + "allowed-token bitmask outside the allowed array");
    }
  }
  return Status::Ok();
}

}  // namespace c8
