// Token sampling on the host (CPU backend; reference for the GPU sampler).
//
// Order of operations for one sequence (vLLM v1):
//   1. copy the raw logits [vocab] (float32)
//   2. penalties: repetition (prompt + output tokens), then frequency and presence (output only)
//   3. min_tokens: while len(output) < min_tokens, EOS (unless ignore_eos) and stop_token_ids ->
//   -inf
//   4. temperature < 1e-5: greedy = argmax, ties to the lowest token id (steps 5-9 skipped)
//   5. logits /= temperature
//   6. min_p:  keep tokens with p >= min_p * p_max  (computed as logit >= max + log(min_p))
//   7. top_k:  keep tokens whose logit >= the k-th largest logit (ties at the boundary are kept)
//   8. top_p:  sort the kept tokens by probability (renormalized after top_k), find the first token
//              at which the cumulative probability reaches top_p, keep every token whose logit is
//              >= that token's logit (ties at the boundary are kept; at least one token is kept).
//              Found with a 4096-bucket histogram of the logits + a sort of one bucket: O(vocab).
//   9. sample: exponential race / Gumbel-max over the kept tokens:
//              token = argmax_i  logit_i - log(E_i),  E_i = -log(U_i),  U_i in (0, 1)
//              (equivalently argmax p_i / E_i with E_i ~ Exp(1)); ties to the lowest token id.
//
// Randomness: U_i is a pure function of (seed, stream, step, token id) through the counter-based
// Philox4x32-10 generator (Random123), so a seeded request draws the same tokens whatever the
// batch composition or thread, and a GPU sampler can reproduce the exact same uniforms:
//   key     = {seed & 0xffffffff, seed >> 32}
//   counter = {token_id / 4, step & 0xffffffff, step >> 32, stream}
//   U       = (Philox4x32_10(counter, key)[token_id % 4] + 0.5) * 2^-32
// `step` counts the sampling steps of the sequence (SamplerRng advances it once per Sample call,
// greedy included); `stream` separates the n sequences of one request sharing a seed.
//
// Logprobs (vLLM v1 default, logprobs_mode = "raw_logprobs"): log_softmax of the RAW model logits,
// before penalties, min_tokens masking, temperature and filtering. They are reported for the
// sampled token (with its rank) and for the `logprobs` most likely tokens.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "c8/sampling/sampling_params.h"
#include "c8/sampling/sampling_rows.h"
#include "c8/util/status.h"

namespace c8 {

// Philox4x32-10 block function (Random123 "philox4x32 10"): 4 random 32-bit words per counter.
std::array<uint32_t, 4> Philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// Random stream of one sequence: seed + stream id + step counter (see the header comment).
class SamplerRng {
 public:
  explicit SamplerRng(uint64_t seed, uint32_t stream = 0) : seed_(seed), stream_(stream) {}
  // A seeded stream when `seed` is set, else one seeded from std::random_device.
  static SamplerRng FromSeed(std::optional<uint64_t> seed, uint32_t stream = 0);

  uint64_t seed() const { return seed_; }
  uint32_t stream() const { return stream_; }
  uint64_t step() const { return step_; }
  // The engine may rewind/set the step (e.g. recomputing a preempted sequence).
  void set_step(uint64_t step) { step_ = step; }
  void Advance() { ++step_; }

  // The 4 uniforms' raw bits for tokens [4 * group, 4 * group + 4) at the current step.
  std::array<uint32_t, 4> Block(uint32_t group) const;
  // U in (0, 1) for `token_id` at the current step.
  double Uniform(int32_t token_id) const;
  static double BitsToUniform(uint32_t bits) { return (static_cast<double>(bits) + 0.5) * 0x1p-32; }

 private:
  uint64_t seed_;
  uint32_t stream_;
  uint64_t step_ = 0;
};

// TokenLogprob: c8/sampling/sampling_rows.h.

struct SampleResult {
  int32_t token_id = -1;
  // The rest is filled only when params.logprobs is set (raw-logit log_softmax, see above).
  std::optional<float> logprob;
  int32_t rank = 0;  // 1 + number of other tokens whose raw logit is >= the sampled token's
  // The `logprobs` most likely tokens by raw logit, descending, ties to the lower id.
  std::vector<TokenLogprob> top_logprobs;
};

// One sequence to sample. Spans must stay valid during the call.
struct SampleRequest {
  const SamplingParams* params = nullptr;
  std::span<const int32_t> prompt_token_ids;  // for repetition_penalty
  std::span<const int32_t> output_token_ids;  // generated so far: penalties and min_tokens
  SamplerRng* rng = nullptr;  // required unless greedy; advanced by one step per Sample
  // Structured output: allowed-token bitmask (ceil(vocab / 32) words, bit t % 32 of word
  // t / 32); empty: every token allowed. Applied with min_tokens masking (step 3).
  std::span<const uint32_t> allowed;
};

// Applies repetition, frequency and presence penalties in place (step 2 above).
// logits: [vocab]. Token ids must be in [0, vocab).
Status ApplyPenalties(std::span<float> logits, std::span<const int32_t> prompt_token_ids,
                      std::span<const int32_t> output_token_ids, const SamplingParams& params);

// Log-softmax of `logits` [vocab] for one token, in double precision.
double LogSoftmaxAt(std::span<const float> logits, int32_t token_id);

// Holds scratch buffers reused between calls: one Sampler per thread. Parameters are assumed
// validated (SamplingParams::Validate); bad inputs (shape, token ids, NaN logits) give errors.
class Sampler {
 public:
  // eos_token_ids: the model's end-of-sequence ids (masked by min_tokens unless ignore_eos).
  explicit Sampler(std::vector<int32_t> eos_token_ids = {});

  // logits: [vocab] raw model logits of one sequence.
  Result<SampleResult> Sample(std::span<const float> logits, const SampleRequest& request);

  // logits: [num_seqs, vocab] row-major, num_seqs = requests.size(). One result per row, in order;
  // a bad row gets its own error and does not affect the others. A simple loop: callers that want
  // parallelism split the rows over threads, one Sampler each.
  std::vector<Result<SampleResult>> SampleBatch(std::span<const float> logits, int64_t vocab,
                                                std::span<const SampleRequest> requests);

  // The exact distribution Sample draws from (steps 1-8): probabilities [vocab], zero outside
  // the kept set, one-hot at the argmax when greedy. Does not advance the RNG.
  Result<std::vector<float>> FinalProbs(std::span<const float> logits,
                                        const SampleRequest& request);

 private:
  // Runs steps 1-8: fills work_ (processed logits, temperature applied) and kept_ (token ids in
  // increasing order). Sets greedy_ when temperature selects argmax (kept_ = {argmax}).
  Status Prepare(std::span<const float> logits, const SampleRequest& request);
  // Threshold-filters kept_ to tokens with work_[id] >= threshold (order preserved).
  void KeepAtLeast(float threshold);
  // Step 8 on kept_ (more than one token).
  void ApplyTopP(double top_p);
  int32_t Draw(const SamplerRng& rng) const;
  void FillLogprobs(std::span<const float> logits, int n, SampleResult& out) const;

  std::vector<int32_t> eos_token_ids_;
  std::vector<float> work_;          // [vocab] processed logits
  std::vector<int32_t> kept_;        // kept token ids, increasing
  std::vector<float> values_;        // scratch for top-k / top-p selection
  std::vector<double> bucket_mass_;  // scratch for top-p
  float max_ = 0.0f;                 // max of work_ over kept_
  bool greedy_ = false;
};

}  // namespace c8
