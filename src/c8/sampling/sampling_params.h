// Per-request sampling parameters with vLLM / OpenAI semantics.
//
// Field semantics (the "off" value of each filter is the default):
//   temperature        0 = greedy (argmax, ties to the lowest token id); else logits / temperature.
//   top_p              keep the smallest set of most likely tokens whose probability sum reaches
//                      top_p (1 = off).
//   top_k              keep the k most likely tokens (-1 or 0 = off).
//   min_p              keep tokens whose probability is >= min_p * max probability (0 = off).
//   repetition_penalty HF/vLLM: for every token present in the prompt OR the output,
//                      logit > 0 ? logit / p : logit * p (1 = off).
//   frequency_penalty  OpenAI, over OUTPUT tokens only: logit -= frequency_penalty * count.
//   presence_penalty   OpenAI, over OUTPUT tokens only: logit -= presence_penalty * (count > 0).
//   seed               fixes the request's random stream (same seed -> same tokens whatever the
//                      batch); unset = drawn from a non-deterministic source.
//   max_tokens         maximum number of generated tokens (unset = up to the context limit).
//   min_tokens         EOS (unless ignore_eos) and stop_token_ids are masked out of the logits,
//                      and no stop condition fires, until this many tokens were generated.
//   stop               stop strings (matched on the detokenized output text).
//   stop_token_ids     extra token ids that end generation (like EOS).
//   ignore_eos         keep generating after EOS (EOS is then an ordinary token).
//   include_stop_str_in_output  keep the matched stop string / stop token text in the output.
//   n                  number of completions for the request.
//   logprobs           unset = no logprobs; N >= 0 = the sampled token's logprob plus the N most
//                      likely tokens (N = 0: the sampled token only).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "c8/util/status.h"

namespace c8 {

// Largest accepted `logprobs` (OpenAI's top_logprobs limit; vLLM's default max_logprobs).
inline constexpr int kMaxLogprobs = 20;

struct SamplingParams {
  double temperature = 1.0;
  double top_p = 1.0;
  int32_t top_k = -1;
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  double frequency_penalty = 0.0;
  double presence_penalty = 0.0;
  std::optional<uint64_t> seed;
  std::optional<int32_t> max_tokens;
  int32_t min_tokens = 0;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  bool include_stop_str_in_output = false;
  int32_t n = 1;
  std::optional<int32_t> logprobs;

  // Checks every field against its allowed range. The message names the field, the allowed
  // range and the value, e.g. "temperature must be in [0, 2], got 3".
  Status Validate() const;

  // Derived predicates used by the sampler.
  bool IsGreedy() const { return temperature < kGreedyEpsilon; }
  bool TopKEnabled() const { return top_k > 0; }
  bool TopPEnabled() const { return top_p < 1.0; }
  bool MinPEnabled() const { return min_p > 0.0; }
  bool PenaltiesEnabled() const {
    return repetition_penalty != 1.0 || frequency_penalty != 0.0 || presence_penalty != 0.0;
  }

  // Temperatures below this are treated as greedy (vLLM's _SAMPLING_EPS).
  static constexpr double kGreedyEpsilon = 1e-5;
};

}  // namespace c8
