#include "c8/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>

namespace c8 {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Gumbel noise from a uniform: G = -log(E), E = -log(U) ~ Exp(1). Increasing in U.
double Gumbel(double u) {
  return -std::log(-std::log(u));
}

// Largest Gumbel value any token can get (U = the largest uniform), plus a margin: a token whose
// logit + kGumbelMax is below the running best can never win, so its noise is not drawn.
const double kGumbelMax = Gumbel(SamplerRng::BitsToUniform(0xffffffffu)) + 1e-6;

Status CheckIds(std::span<const int32_t> ids, int64_t vocab, const char* field) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return Error("sampler: " + std::string(field) + "[" + std::to_string(i) +
                   "] = " + std::to_string(ids[i]) + " is out of range for vocab size " +
                   std::to_string(vocab));
    }
  }
  return Status::Ok();
}

inline uint32_t MulHiLo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Philox4x32-10 and the per-sequence stream.

std::array<uint32_t, 4> Philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k[0] += kW0;
      k[1] += kW1;
    }
    uint32_t hi0, hi1;
    const uint32_t lo0 = MulHiLo(kM0, c[0], &hi0);
    const uint32_t lo1 = MulHiLo(kM1, c[2], &hi1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
  }
  return c;
}

SamplerRng SamplerRng::FromSeed(std::optional<uint64_t> seed, uint32_t stream) {
  if (seed.has_value()) return SamplerRng(*seed, stream);
  std::random_device rd;
  const uint64_t s = (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
  return SamplerRng(s, stream);
}

std::array<uint32_t, 4> SamplerRng::Block(uint32_t group) const {
  return Philox4x32_10(
      {group, static_cast<uint32_t>(step_), static_cast<uint32_t>(step_ >> 32), stream_},
      {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)});
}

double SamplerRng::Uniform(int32_t token_id) const {
  const uint32_t t = static_cast<uint32_t>(token_id);
  return BitsToUniform(Block(t / 4)[t % 4]);
}

// ---------------------------------------------------------------------------------------------
// Penalties and log-softmax.

Status ApplyPenalties(std::span<float> logits, std::span<const int32_t> prompt_token_ids,
                      std::span<const int32_t> output_token_ids, const SamplingParams& params) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  if (!params.PenaltiesEnabled()) return Status::Ok();
  C8_RETURN_IF_ERROR(CheckIds(output_token_ids, vocab, "output_token_ids"));

  if (params.repetition_penalty != 1.0) {
    C8_RETURN_IF_ERROR(CheckIds(prompt_token_ids, vocab, "prompt_token_ids"));
    std::vector<int32_t> seen(prompt_token_ids.begin(), prompt_token_ids.end());
    seen.insert(seen.end(), output_token_ids.begin(), output_token_ids.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    const float p = static_cast<float>(params.repetition_penalty);
    for (int32_t t : seen) {
      float& l = logits[t];
      l = l > 0.0f ? l / p : l * p;
    }
  }

  if (params.frequency_penalty != 0.0 || params.presence_penalty != 0.0) {
    std::vector<int32_t> out(output_token_ids.begin(), output_token_ids.end());
    std::sort(out.begin(), out.end());
    const float freq = static_cast<float>(params.frequency_penalty);
    const float pres = static_cast<float>(params.presence_penalty);
    for (size_t i = 0; i < out.size();) {
      size_t j = i;
      while (j < out.size() && out[j] == out[i]) ++j;
      float& l = logits[out[i]];
      l -= freq * static_cast<float>(j - i);
      l -= pres;
      i = j;
    }
  }
  return Status::Ok();
}

double LogSoftmaxAt(std::span<const float> logits, int32_t token_id) {
  float m = kNegInf;
  for (float v : logits) m = std::max(m, v);
  double z = 0.0;
  for (float v : logits) z += std::exp(static_cast<double>(v) - m);
  return static_cast<double>(logits[token_id]) - m - std::log(z);
}

// ---------------------------------------------------------------------------------------------
// Sampler.

Sampler::Sampler(std::vector<int32_t> eos_token_ids) : eos_token_ids_(std::move(eos_token_ids)) {}

void Sampler::KeepAtLeast(float threshold) {
  kept_.erase(std::remove_if(kept_.begin(), kept_.end(),
                             [&](int32_t t) { return !(work_[t] >= threshold); }),
              kept_.end());
}

Status Sampler::Prepare(std::span<const float> logits, const SampleRequest& request) {
  if (request.params == nullptr) return Error("sampler: request has no sampling params");
  const SamplingParams& p = *request.params;
  const int64_t vocab = static_cast<int64_t>(logits.size());
  if (vocab == 0) return Error("sampler: logits are empty (vocab size 0)");
  if (vocab > std::numeric_limits<int32_t>::max()) {
    return Error("sampler: vocab size " + std::to_string(vocab) + " does not fit int32 token ids");
  }

  // 1. Copy, rejecting NaN and +inf (-inf is a legitimate mask).
  work_.assign(logits.begin(), logits.end());
  for (int64_t i = 0; i < vocab; ++i) {
    const float v = work_[i];
    if (std::isnan(v) || v == std::numeric_limits<float>::infinity()) {
      return Error("sampler: logits[" + std::to_string(i) + "] is " +
                   (std::isnan(v) ? "NaN" : "+inf"));
    }
  }

  // 2. Penalties.
  C8_RETURN_IF_ERROR(ApplyPenalties(work_, request.prompt_token_ids, request.output_token_ids, p));

  // 3. min_tokens: EOS and stop tokens cannot be sampled yet.
  if (static_cast<int64_t>(request.output_token_ids.size()) < p.min_tokens) {
    auto mask = [&](int32_t t) {
      if (t >= 0 && t < vocab) work_[t] = kNegInf;
    };
    if (!p.ignore_eos) {
      for (int32_t t : eos_token_ids_) mask(t);
    }
    for (int32_t t : p.stop_token_ids) mask(t);
  }
  // 3b. Structured output: tokens outside the allowed bitmask.
  if (!request.allowed.empty()) {
    if (static_cast<int64_t>(request.allowed.size()) < (vocab + 31) / 32) {
      return Error("sampler: allowed-token bitmask has " + std::to_string(request.allowed.size()) +
                   " words for vocab size " + std::to_string(vocab));
    }
    for (int64_t i = 0; i < vocab; ++i) {
      if (((request.allowed[static_cast<size_t>(i >> 5)] >> (i & 31)) & 1u) == 0) {
        work_[i] = kNegInf;
      }
    }
  }

  // 4. Greedy.
  greedy_ = p.IsGreedy();
  if (greedy_) {
    const int32_t best =
        static_cast<int32_t>(std::max_element(work_.begin(), work_.end()) - work_.begin());
    if (work_[best] == kNegInf) {
      return Error(
          "sampler: no token can be sampled: every logit is -inf after penalties, "
          "min_tokens and structured-output masking");
    }
    kept_.assign(1, best);
    max_ = work_[best];
    return Status::Ok();
  }

  // 5. Temperature.
  const float temp = static_cast<float>(p.temperature);
  if (temp != 1.0f) {
    for (float& v : work_) v /= temp;
  }
  max_ = *std::max_element(work_.begin(), work_.end());
  if (max_ == kNegInf) {
    return Error(
        "sampler: no token can be sampled: every logit is -inf after penalties, "
        "min_tokens and structured-output masking");
  }

  // 6. min_p (p_i >= min_p * p_max  <=>  l_i >= max + log(min_p)); also drops -inf tokens.
  const double min_logit =
      p.MinPEnabled() ? static_cast<double>(max_) + std::log(p.min_p) : -HUGE_VAL;
  kept_.clear();
  for (int32_t t = 0; t < vocab; ++t) {
    const float v = work_[t];
    if (v != kNegInf && static_cast<double>(v) >= min_logit) kept_.push_back(t);
  }

  // 7. top_k: threshold at the k-th largest logit (nth_element, no full sort).
  if (p.TopKEnabled() && static_cast<size_t>(p.top_k) < kept_.size()) {
    values_.clear();
    for (int32_t t : kept_) values_.push_back(work_[t]);
    auto kth = values_.begin() + (p.top_k - 1);
    std::nth_element(values_.begin(), kth, values_.end(), std::greater<float>());
    KeepAtLeast(*kth);
  }

  // 8. top_p.
  if (p.TopPEnabled() && kept_.size() > 1) ApplyTopP(p.top_p);
  return Status::Ok();
}

void Sampler::ApplyTopP(double top_p) {
  float lo = max_;
  for (int32_t t : kept_) lo = std::min(lo, work_[t]);
  if (lo == max_) return;  // all equal: the tie-inclusive cutoff keeps everything

  // Bucket the logits by distance to the max (bucket 0 = most likely; a larger logit never lands
  // in a later bucket) with their unnormalized probability mass exp(l - max), and find the bucket
  // where the cumulative mass reaches top_p * z. Only that bucket is sorted: O(vocab) instead of
  // O(vocab log vocab).
  constexpr int kBuckets = 4096;
  const double scale = kBuckets / (static_cast<double>(max_) - lo);
  auto bucket_of = [&](float v) {
    return std::min(kBuckets - 1, static_cast<int>((static_cast<double>(max_) - v) * scale));
  };
  bucket_mass_.assign(kBuckets, 0.0);
  double z = 0.0;
  for (int32_t t : kept_) {
    const double e = std::exp(static_cast<double>(work_[t]) - max_);
    bucket_mass_[bucket_of(work_[t])] += e;
    z += e;
  }
  const double target = top_p * z;
  double cum = 0.0;
  int b = 0;
  while (b < kBuckets - 1 && cum + bucket_mass_[b] < target) cum += bucket_mass_[b++];

  values_.clear();
  for (int32_t t : kept_) {
    if (bucket_of(work_[t]) == b) values_.push_back(work_[t]);
  }
  std::sort(values_.begin(), values_.end(), std::greater<float>());
  for (float v : values_) {
    cum += std::exp(static_cast<double>(v) - max_);
    if (cum >= target) {
      KeepAtLeast(v);
      return;
    }
  }
  // Rounding left the target unreached: keep everything down to this bucket's smallest value.
  if (!values_.empty()) KeepAtLeast(values_.back());
}

int32_t Sampler::Draw(const SamplerRng& rng) const {
  // Start from the most likely token (lowest id among equals) so that pruning bites early.
  int32_t best = kept_[0];
  for (int32_t t : kept_) {
    if (work_[t] > work_[best]) best = t;
  }
  uint32_t cached_group = static_cast<uint32_t>(-1);
  std::array<uint32_t, 4> block{};
  auto noise = [&](int32_t t) {
    const uint32_t u = static_cast<uint32_t>(t);
    if (u / 4 != cached_group) {
      cached_group = u / 4;
      block = rng.Block(cached_group);
    }
    return Gumbel(SamplerRng::BitsToUniform(block[u % 4]));
  };
  double best_score = static_cast<double>(work_[best]) + noise(best);
  for (int32_t t : kept_) {
    if (t == best) continue;
    const double v = work_[t];
    if (v + kGumbelMax < best_score) continue;  // cannot win whatever its noise
    const double score = v + noise(t);
    if (score > best_score || (score == best_score && t < best)) {
      best_score = score;
      best = t;
    }
  }
  return best;
}

void Sampler::FillLogprobs(std::span<const float> logits, int n, SampleResult& out) const {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  float m = kNegInf;
  for (float v : logits) m = std::max(m, v);
  double z = 0.0;
  for (float v : logits) z += std::exp(static_cast<double>(v) - m);
  const double log_z = static_cast<double>(m) + std::log(z);

  const float chosen = logits[out.token_id];
  out.logprob = static_cast<float>(static_cast<double>(chosen) - log_z);
  int32_t rank = 0;
  for (float v : logits) rank += v >= chosen ? 1 : 0;
  out.rank = rank;

  // Top-n by a bounded heap whose top is the worst kept entry.
  auto better = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  const size_t want = static_cast<size_t>(std::min<int64_t>(n, vocab));
  std::vector<int32_t> heap;
  heap.reserve(want + 1);
  if (want > 0) {
    for (int32_t t = 0; t < vocab; ++t) {
      if (heap.size() < want) {
        heap.push_back(t);
        std::push_heap(heap.begin(), heap.end(), better);
      } else if (better(t, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), better);
        heap.back() = t;
        std::push_heap(heap.begin(), heap.end(), better);
      }
    }
  }
  std::sort(heap.begin(), heap.end(), better);
  out.top_logprobs.clear();
  for (int32_t t : heap) {
    out.top_logprobs.push_back({t, static_cast<float>(static_cast<double>(logits[t]) - log_z)});
  }
}

Result<SampleResult> Sampler::Sample(std::span<const float> logits, const SampleRequest& request) {
  C8_RETURN_IF_ERROR(Prepare(logits, request));
  SampleResult result;
  if (greedy_) {
    result.token_id = kept_[0];
  } else {
    if (request.rng == nullptr) {
      return Error("sampler: temperature " + std::to_string(request.params->temperature) +
                   " needs a random stream but the request has no rng");
    }
    result.token_id = Draw(*request.rng);
  }
  if (request.rng != nullptr) request.rng->Advance();
  if (request.params->logprobs.has_value()) {
    FillLogprobs(logits, *request.params->logprobs, result);
  }
  return result;
}

std::vector<Result<SampleResult>> Sampler::SampleBatch(std::span<const float> logits, int64_t vocab,
                                                       std::span<const SampleRequest> requests) {
  std::vector<Result<SampleResult>> results;
  results.reserve(requests.size());
  const int64_t rows = static_cast<int64_t>(requests.size());
  if (vocab <= 0 || static_cast<int64_t>(logits.size()) != rows * vocab) {
    const Status err = Error("sampler: logits have " + std::to_string(logits.size()) +
                             " values, expected [num_seqs=" + std::to_string(rows) +
                             ", vocab=" + std::to_string(vocab) + "]");
    for (int64_t r = 0; r < rows; ++r) results.emplace_back(err);
    return results;
  }
  for (int64_t r = 0; r < rows; ++r) {
    Result<SampleResult> res = Sample(logits.subspan(r * vocab, vocab), requests[r]);
    if (!res.ok()) res = res.status().WithContext("row " + std::to_string(r));
    results.push_back(std::move(res));
  }
  return results;
}

Result<std::vector<float>> Sampler::FinalProbs(std::span<const float> logits,
                                               const SampleRequest& request) {
  C8_RETURN_IF_ERROR(Prepare(logits, request));
  std::vector<float> probs(logits.size(), 0.0f);
  if (greedy_) {
    probs[kept_[0]] = 1.0f;
    return probs;
  }
  double z = 0.0;
  for (int32_t t : kept_) z += std::exp(static_cast<double>(work_[t]) - max_);
  for (int32_t t : kept_) {
    probs[t] = static_cast<float>(std::exp(static_cast<double>(work_[t]) - max_) / z);
  }
  return probs;
}

}  // namespace c8
