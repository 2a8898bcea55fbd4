// Random sampling cases shared by the CPU and CUDA SampleRows tests: engine-like inputs
// (params, prompt, output, EOS ids) with the host Sampler's result as the reference, and the
// conversion into SamplingRows the engine performs.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "c8/sampling/sampler.h"
#include "c8/sampling/sampling_row_builder.h"
#include "c8/sampling/sampling_rows.h"

namespace c8::testing {

struct SamplingCase {
  SamplingParams params;
  std::vector<int32_t> prompt, output, eos;
  uint64_t seed = 0;
  uint32_t stream = 0;
  std::vector<uint32_t> allowed;  // structured-output bitmask; empty: every token
};

// Row r of `cases` i uses logits row (i * 7) % num_logit_rows.
inline int32_t LogitsRowOf(size_t i, int64_t num_logit_rows) {
  return static_cast<int32_t>((i * 7) % num_logit_rows);
}

// (rows, vocab) logits: normal * 3, every 3rd row quantized to 0.5 steps (ties), some -inf.
inline std::vector<float> RandomLogits(int64_t rows, int64_t vocab, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> v(static_cast<size_t>(rows * vocab));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < vocab; ++t) {
      float x = nd(rng);
      if (r % 3 == 1) x = std::round(x * 2.0f) / 2.0f;
      if (t % 97 == 5) x = -std::numeric_limits<float>::infinity();
      v[r * vocab + t] = x;
    }
  }
  return v;
}

inline std::vector<SamplingCase> RandomCases(int n, int64_t vocab, std::mt19937& rng) {
  std::vector<SamplingCase> cases;
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(vocab) - 1);
  for (int i = 0; i < n; ++i) {
    SamplingCase c;
    SamplingParams& p = c.params;
    const int kind = i % 8;
    p.temperature = kind == 0 ? 0.0 : (kind == 1 ? 1.0 : 0.3 + 0.2 * (i % 5));
    if (kind == 2 || kind == 5) p.top_k = 1 + (i * 13) % 60;
    if (kind == 3 || kind == 5 || kind == 7) p.top_p = 0.5 + 0.07 * (i % 6);
    if (kind == 4 || kind == 7) p.min_p = 0.02 * (1 + i % 4);
    if (i % 3 == 0) p.repetition_penalty = 1.3;
    if (i % 4 == 1) p.frequency_penalty = 0.5;
    if (i % 5 == 2) p.presence_penalty = -0.7;
    if (i % 6 == 3) p.min_tokens = 50;
    if (i % 2 == 0) p.logprobs = (i * 3) % (kMaxLogprobs + 1);
    p.stop_token_ids = {tok(rng), tok(rng)};
    for (int k = 0; k < 40; ++k) c.prompt.push_back(tok(rng));
    for (int k = 0; k < (i * 5) % 30; ++k) {
      c.output.push_back(k % 3 == 0 && !c.output.empty() ? c.output[k / 2] : tok(rng));
    }
    c.eos = {tok(rng)};
    c.seed = 1000 + static_cast<uint64_t>(i) * 7919;
    c.stream = static_cast<uint32_t>(i % 3);
    if (i % 3 == 2) {
      // Structured output: ~30% of the vocabulary allowed, or (every 4th of these) 1-3 tokens.
      c.allowed.assign(static_cast<size_t>((vocab + 31) / 32), 0u);
      std::bernoulli_distribution keep(0.3);
      const bool few = (i / 3) % 4 == 0;
      for (int64_t t = 0; t < vocab; ++t) {
        if (!few && keep(rng)) c.allowed[t >> 5] |= 1u << (t & 31);
      }
      for (int k = 0; k < (few ? 1 + i % 3 : 0); ++k) {
        const int32_t t = tok(rng);
        c.allowed[t >> 5] |= 1u << (t & 31);
      }
      // Keep one finite, non-stop token allowed so that a row never masks everything.
      for (int32_t t = static_cast<int32_t>(i % 97 == 5 ? 6 : i % 97);; t = (t + 1) % vocab) {
        if (t % 97 != 5) {
          c.allowed[t >> 5] |= 1u << (t & 31);
          break;
        }
      }
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

// The engine's conversion (LlmEngine::AddSamplingRow; the bitmasks of constrained rows go into
// *allowed, which must outlive the rows).
inline SamplingRows ToSamplingRows(const std::vector<SamplingCase>& cases, int64_t num_logit_rows,
                                   std::vector<uint32_t>* allowed = nullptr) {
  SamplingRows rows;
  for (size_t i = 0; i < cases.size(); ++i) {
    const SamplingCase& c = cases[i];
    AppendSamplingRow(LogitsRowOf(i, num_logit_rows), c.params, c.seed, c.stream, c.prompt,
                      c.output, c.eos, rows);
    if (!c.allowed.empty() && allowed != nullptr) {
      rows.rows.back().allowed_begin = static_cast<int64_t>(allowed->size());
      allowed->insert(allowed->end(), c.allowed.begin(), c.allowed.end());
    }
  }
  if (allowed != nullptr && !allowed->empty()) rows.allowed = allowed;
  return rows;
}

// The host Sampler's result for case i on host logits (num_logit_rows, vocab).
inline Result<SampleResult> ReferenceSample(const SamplingCase& c, size_t i,
                                            const std::vector<float>& logits, int64_t vocab) {
  const int64_t num_logit_rows = static_cast<int64_t>(logits.size()) / vocab;
  Sampler sampler(c.eos);
  SamplerRng rng(c.seed, c.stream);
  rng.set_step(c.output.size());
  SampleRequest req;
  req.params = &c.params;
  req.prompt_token_ids = c.prompt;
  req.output_token_ids = c.output;
  req.rng = &rng;
  req.allowed = c.allowed;
  const int32_t row = LogitsRowOf(i, num_logit_rows);
  return sampler.Sample(std::span<const float>(logits.data() + row * vocab, vocab), req);
}

}  // namespace c8::testing
