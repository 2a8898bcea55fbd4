// Tests for SamplingParams::Validate and the host Sampler, with hand-computed values.
#include "c8/sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "c8/sampling/sampling_params.h"

namespace c8 {
namespace {

std::vector<double> Softmax(const std::vector<float>& logits, double temperature = 1.0) {
  double m = -HUGE_VAL;
  for (float v : logits) m = std::max(m, v / temperature);
  std::vector<double> p(logits.size());
  double z = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) z += p[i] = std::exp(logits[i] / temperature - m);
  for (double& v : p) v /= z;
  return p;
}

// Logits whose softmax is exactly `probs` (up to a constant).
std::vector<float> LogitsFromProbs(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

SampleRequest Req(const SamplingParams* p, SamplerRng* rng = nullptr,
                  std::span<const int32_t> prompt = {}, std::span<const int32_t> output = {}) {
  SampleRequest r;
  r.params = p;
  r.rng = rng;
  r.prompt_token_ids = prompt;
  r.output_token_ids = output;
  return r;
}

// Draws `n` tokens (advancing the rng each time) and returns the empirical frequencies.
std::vector<double> Frequencies(Sampler& s, const std::vector<float>& logits,
                                const SamplingParams& p, uint64_t seed, int n) {
  SamplerRng rng(seed);
  std::vector<double> freq(logits.size(), 0.0);
  for (int i = 0; i < n; ++i) {
    auto r = s.Sample(logits, Req(&p, &rng));
    EXPECT_TRUE(r.ok()) << r.message();
    freq[r->token_id] += 1.0 / n;
  }
  return freq;
}

// ---------------------------------------------------------------------------------------------
// SamplingParams::Validate

TEST(SamplingParamsTest, DefaultsAreValid) {
  EXPECT_TRUE(SamplingParams{}.Validate().ok());
}

TEST(SamplingParamsTest, ErrorMessagesNameFieldAndRange) {
  struct Case {
    void (*set)(SamplingParams&);
    const char* message;
  };
  const Case cases[] = {
      {[](SamplingParams& p) { p.temperature = 3; }, "temperature must be in [0, 2], got 3"},
      {[](SamplingParams& p) { p.temperature = -0.5; }, "temperature must be in [0, 2], got -0.5"},
      {[](SamplingParams& p) { p.temperature = NAN; }, "temperature must be in [0, 2], got nan"},
      {[](SamplingParams& p) { p.top_p = 0; }, "top_p must be in (0, 1], got 0"},
      {[](SamplingParams& p) { p.top_p = 1.5; }, "top_p must be in (0, 1], got 1.5"},
      {[](SamplingParams& p) { p.top_k = -2; }, "top_k must be -1 or 0 (disabled) or >= 1, got -2"},
      {[](SamplingParams& p) { p.min_p = 1.25; }, "min_p must be in [0, 1], got 1.25"},
      {[](SamplingParams& p) { p.repetition_penalty = 0; },
       "repetition_penalty must be in (0, 2], got 0"},
      {[](SamplingParams& p) { p.repetition_penalty = 2.5; },
       "repetition_penalty must be in (0, 2], got 2.5"},
      {[](SamplingParams& p) { p.frequency_penalty = -3; },
       "frequency_penalty must be in [-2, 2], got -3"},
      {[](SamplingParams& p) { p.presence_penalty = 2.1; },
       "presence_penalty must be in [-2, 2], got 2.1"},
      {[](SamplingParams& p) { p.max_tokens = 0; }, "max_tokens must be >= 1, got 0"},
      {[](SamplingParams& p) { p.min_tokens = -1; }, "min_tokens must be >= 0, got -1"},
      {[](SamplingParams& p) {
         p.max_tokens = 4;
         p.min_tokens = 5;
       },
       "min_tokens must be <= max_tokens (4), got 5"},
      {[](SamplingParams& p) {
         p.stop = {"a", ""};
       },
       "stop[1] must not be an empty string"},
      {[](SamplingParams& p) {
         p.stop_token_ids = {3, -7};
       },
       "stop_token_ids[1] must be >= 0, got -7"},
      {[](SamplingParams& p) { p.n = 0; }, "n must be >= 1, got 0"},
      {[](SamplingParams& p) { p.logprobs = 21; }, "logprobs must be in [0, 20], got 21"},
      {[](SamplingParams& p) { p.logprobs = -1; }, "logprobs must be in [0, 20], got -1"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.set(p);
    Status st = p.Validate();
    EXPECT_FALSE(st.ok()) << c.message;
    EXPECT_EQ(st.message(), c.message);
  }
}

TEST(SamplingParamsTest, BoundaryValuesAreValid) {
  SamplingParams p;
  p.temperature = 0;
  p.top_p = 1;
  p.top_k = 0;
  p.min_p = 1;
  p.repetition_penalty = 2;
  p.frequency_penalty = -2;
  p.presence_penalty = 2;
  p.max_tokens = 1;
  p.min_tokens = 1;
  p.logprobs = 0;
  EXPECT_TRUE(p.Validate().ok()) << p.Validate().message();
  p.temperature = 2;
  p.top_k = 1;
  p.logprobs = 20;
  EXPECT_TRUE(p.Validate().ok()) << p.Validate().message();
}

// ---------------------------------------------------------------------------------------------
// Philox / RNG

TEST(SamplerRngTest, PhiloxKnownAnswers) {
  // Random123 tests/kat_vectors, "philox4x32 10" lines.
  EXPECT_EQ(Philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (std::array<uint32_t, 4>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(
      Philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
      (std::array<uint32_t, 4>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(
      Philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
      (std::array<uint32_t, 4>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(SamplerRngTest, UniformLayoutAndRange) {
  SamplerRng rng(0x0000000500000007ull, 3);
  rng.set_step(0x0000000200000009ull);
  // token 10 -> group 2, word 2.
  auto block = Philox4x32_10({2, 9, 2, 3}, {7, 5});
  EXPECT_EQ(rng.Uniform(10), (block[2] + 0.5) / 4294967296.0);
  EXPECT_GT(SamplerRng::BitsToUniform(0), 0.0);
  EXPECT_LT(SamplerRng::BitsToUniform(0xffffffffu), 1.0);
}

// ---------------------------------------------------------------------------------------------
// Greedy

TEST(SamplerTest, GreedyPicksArgmaxTiesToLowestId) {
  Sampler s;
  SamplingParams p;
  p.temperature = 0;
  std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
  auto r = s.Sample(logits, Req(&p));  // no rng needed for greedy
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->token_id, 1);
  EXPECT_FALSE(r->logprob.has_value());

  logits = {-5.0f, -2.0f, -2.5f};
  EXPECT_EQ(s.Sample(logits, Req(&p))->token_id, 1);

  // Greedy ignores top_k / top_p / min_p and advances the rng by one step.
  p.top_k = 1;
  p.top_p = 0.1;
  p.min_p = 0.9;
  SamplerRng rng(1);
  EXPECT_EQ(s.Sample(logits, Req(&p, &rng))->token_id, 1);
  EXPECT_EQ(rng.step(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Temperature: exact distribution and empirical frequencies

TEST(SamplerTest, TemperatureScalesDistributionExactly) {
  Sampler s;
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
  for (double temp : {1.0, 0.5, 1.7}) {
    SamplingParams p;
    p.temperature = temp;
    const std::vector<double> expected = Softmax(logits, temp);

    auto probs = s.FinalProbs(logits, Req(&p));
    ASSERT_TRUE(probs.ok()) << probs.message();
    for (size_t i = 0; i < logits.size(); ++i) EXPECT_NEAR((*probs)[i], expected[i], 1e-6);

    const int n = 20000;
    const std::vector<double> freq = Frequencies(s, logits, p, 1234 + temp * 10, n);
    for (size_t i = 0; i < logits.size(); ++i) {
      const double sigma = std::sqrt(expected[i] * (1 - expected[i]) / n);
      EXPECT_NEAR(freq[i], expected[i], 5 * sigma + 1e-3)
          << "temperature " << temp << " token " << i;
    }
  }
  // Temperature 1 vs 0.5: token 1 (the max) gets 0.444973 vs 0.642888 of the mass.
  SamplingParams p;
  p.temperature = 1.0;
  EXPECT_NEAR((*s.FinalProbs(logits, Req(&p)))[1], 0.444973, 1e-6);
  p.temperature = 0.5;
  EXPECT_NEAR((*s.FinalProbs(logits, Req(&p)))[1], 0.642888, 1e-6);
}

// ---------------------------------------------------------------------------------------------
// top-k, top-p, min-p

TEST(SamplerTest, TopKNeverSamplesOutsideTopK) {
  Sampler s;
  SamplingParams p;
  p.top_k = 2;
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};  // top 2: ids 1 and 4
  auto probs = s.FinalProbs(logits, Req(&p));
  ASSERT_TRUE(probs.ok());
  const double z = std::exp(2.0) + std::exp(1.5);
  EXPECT_NEAR((*probs)[1], std::exp(2.0) / z, 1e-6);
  EXPECT_NEAR((*probs)[4], std::exp(1.5) / z, 1e-6);
  EXPECT_EQ((*probs)[0] + (*probs)[2] + (*probs)[3], 0.0f);

  const std::vector<double> freq = Frequencies(s, logits, p, 99, 5000);
  EXPECT_EQ(freq[0] + freq[2] + freq[3], 0.0);
  EXPECT_NEAR(freq[1], std::exp(2.0) / z, 0.03);

  // top_k larger than the vocab is a no-op; top_k = 1 is greedy-like.
  p.top_k = 100;
  EXPECT_NEAR((*s.FinalProbs(logits, Req(&p)))[3], Softmax(logits)[3], 1e-6);
  p.top_k = 1;
  EXPECT_EQ((*s.FinalProbs(logits, Req(&p)))[1], 1.0f);
}

TEST(SamplerTest, TopPHandComputedNucleus) {
  Sampler s;
  // Probabilities 0.1, 0.4, 0.2, 0.3 (sorted: id1 0.4, id3 0.3, id2 0.2, id0 0.1).
  const std::vector<float> logits = LogitsFromProbs({0.1, 0.4, 0.2, 0.3});
  SamplingParams p;

  p.top_p = 0.6;  // 0.4 < 0.6, 0.4 + 0.3 >= 0.6 -> {1, 3}
  auto probs = *s.FinalProbs(logits, Req(&p));
  EXPECT_NEAR(probs[1], 0.4 / 0.7, 1e-6);
  EXPECT_NEAR(probs[3], 0.3 / 0.7, 1e-6);
  EXPECT_EQ(probs[0] + probs[2], 0.0f);

  p.top_p = 0.75;  // 0.7 < 0.75, 0.9 >= 0.75 -> {1, 3, 2}
  probs = *s.FinalProbs(logits, Req(&p));
  EXPECT_NEAR(probs[1], 0.4 / 0.9, 1e-6);
  EXPECT_NEAR(probs[3], 0.3 / 0.9, 1e-6);
  EXPECT_NEAR(probs[2], 0.2 / 0.9, 1e-6);
  EXPECT_EQ(probs[0], 0.0f);

  p.top_p = 0.3;  // the top token alone already reaches 0.3
  probs = *s.FinalProbs(logits, Req(&p));
  EXPECT_EQ(probs[1], 1.0f);

  p.top_p = 0.95;  // needs all four
  probs = *s.FinalProbs(logits, Req(&p));
  EXPECT_NEAR(probs[0], 0.1, 1e-6);

  // Sampling stays inside the nucleus.
  p.top_p = 0.6;
  const std::vector<double> freq = Frequencies(s, logits, p, 7, 4000);
  EXPECT_EQ(freq[0] + freq[2], 0.0);
  EXPECT_NEAR(freq[1], 0.4 / 0.7, 0.04);

  // top_p applies to the distribution renormalized after top_k: with top_k = 3 the kept
  // probabilities are 4/9, 3/9, 2/9; top_p = 0.7 -> 4/9 < 0.7 <= 7/9 -> {1, 3}.
  p.top_k = 3;
  p.top_p = 0.7;
  probs = *s.FinalProbs(logits, Req(&p));
  EXPECT_NEAR(probs[1], 4.0 / 7.0, 1e-6);
  EXPECT_NEAR(probs[3], 3.0 / 7.0, 1e-6);
  EXPECT_EQ(probs[2], 0.0f);
}

TEST(SamplerTest, TopPAndTopKOnLargeVocabMatchFullSort) {
  // 150k vocab, logits with a long tail: the nucleus needs several sorting chunks.
  const int vocab = 150000;
  std::mt19937 gen(5);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> logits(vocab);
  for (float& v : logits) v = nd(gen);

  SamplingParams p;
  p.temperature = 0.8;
  p.top_p = 0.9;
  Sampler s;
  auto probs = s.FinalProbs(logits, Req(&p));
  ASSERT_TRUE(probs.ok()) << probs.message();

  // Reference: full sort.
  std::vector<double> ref = Softmax(logits, 0.8);
  std::vector<int> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return ref[a] > ref[b]; });
  double cum = 0.0;
  size_t keep = 0;
  while (cum < 0.9) cum += ref[order[keep++]];
  int kept = 0;
  for (int i = 0; i < vocab; ++i) kept += (*probs)[i] > 0.0f;
  EXPECT_EQ(static_cast<size_t>(kept), keep);
  EXPECT_GT(keep, 1000u);
  for (size_t j = 0; j < keep; ++j) {
    EXPECT_NEAR((*probs)[order[j]], ref[order[j]] / cum, 1e-7);
  }
  EXPECT_EQ((*probs)[order[keep]], 0.0f);

  // top_k = 50: samples are always among the 50 largest logits.
  p.top_p = 1.0;
  p.top_k = 50;
  SamplerRng rng(11);
  for (int i = 0; i < 20; ++i) {
    auto r = s.Sample(logits, Req(&p, &rng));
    ASSERT_TRUE(r.ok());
    const auto pos = std::find(order.begin(), order.end(), r->token_id) - order.begin();
    EXPECT_LT(pos, 50);
  }
}

TEST(SamplerTest, MinPThreshold) {
  Sampler s;
  // p = 0.5, 0.25, 0.15, 0.1; min_p 0.25 -> threshold 0.125 -> keep {0, 1, 2}.
  const std::vector<float> logits = LogitsFromProbs({0.5, 0.25, 0.15, 0.1});
  SamplingParams p;
  p.min_p = 0.25;
  auto probs = *s.FinalProbs(logits, Req(&p));
  EXPECT_NEAR(probs[0], 0.5 / 0.9, 1e-6);
  EXPECT_NEAR(probs[1], 0.25 / 0.9, 1e-6);
  EXPECT_NEAR(probs[2], 0.15 / 0.9, 1e-6);
  EXPECT_EQ(probs[3], 0.0f);

  // min_p applies after temperature: at T = 0.5 the probabilities are proportional to p^2 =
  // 0.25, 0.0625, 0.0225, 0.01 (ratios to the max 1, 0.25, 0.09, 0.04).
  p.temperature = 0.5;
  p.min_p = 0.3;
  probs = *s.FinalProbs(logits, Req(&p));
  EXPECT_EQ(probs[0], 1.0f);
  p.min_p = 0.2;
  probs = *s.FinalProbs(logits, Req(&p));
  EXPECT_NEAR(probs[0], 25.0 / 31.25, 1e-6);
  EXPECT_NEAR(probs[1], 6.25 / 31.25, 1e-6);
  EXPECT_EQ(probs[2] + probs[3], 0.0f);
}

// ---------------------------------------------------------------------------------------------
// Penalties

TEST(SamplerTest, PenaltiesHandComputed) {
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 0.0f};
  const std::vector<int32_t> prompt = {0, 1, 0};
  const std::vector<int32_t> output = {3, 4, 3};
  SamplingParams p;
  p.repetition_penalty = 1.5;
  p.frequency_penalty = 0.5;
  p.presence_penalty = 0.25;
  ASSERT_TRUE(ApplyPenalties(logits, prompt, output, p).ok());
  EXPECT_FLOAT_EQ(logits[0], 2.0f / 1.5f);                     // prompt, positive: divided
  EXPECT_FLOAT_EQ(logits[1], -1.5f);                           // prompt, negative: multiplied
  EXPECT_FLOAT_EQ(logits[2], 0.5f);                            // unseen
  EXPECT_FLOAT_EQ(logits[3], 3.0f / 1.5f - 0.5f * 2 - 0.25f);  // output x2: 0.75
  EXPECT_FLOAT_EQ(logits[4], -2.0f * 1.5f - 0.5f - 0.25f);     // output x1: -3.75
  EXPECT_FLOAT_EQ(logits[5], 0.0f);

  // Frequency / presence only look at the output, never the prompt.
  logits = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 0.0f};
  p.repetition_penalty = 1.0;
  p.frequency_penalty = -1.0;  // negative values encourage repetition
  p.presence_penalty = 0.0;
  ASSERT_TRUE(ApplyPenalties(logits, prompt, output, p).ok());
  EXPECT_FLOAT_EQ(logits[0], 2.0f);
  EXPECT_FLOAT_EQ(logits[3], 5.0f);
  EXPECT_FLOAT_EQ(logits[4], -1.0f);
}

TEST(SamplerTest, PenaltiesChangeGreedyChoice) {
  Sampler s;
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 0.0f};
  const std::vector<int32_t> prompt = {0, 1};
  const std::vector<int32_t> output = {3, 4, 3};
  SamplingParams p;
  p.temperature = 0;
  EXPECT_EQ(s.Sample(logits, Req(&p, nullptr, prompt, output))->token_id, 3);
  p.repetition_penalty = 1.5;  // 3 -> 2.0, 0 -> 1.333
  EXPECT_EQ(s.Sample(logits, Req(&p, nullptr, prompt, output))->token_id, 3);
  p.frequency_penalty = 0.5;  // 3 -> 1.0 < 1.333
  EXPECT_EQ(s.Sample(logits, Req(&p, nullptr, prompt, output))->token_id, 0);
  p.repetition_penalty = 2.0;  // 0 -> 1.0, 3 -> 0.5, 2 -> 0.5 unseen
  EXPECT_EQ(s.Sample(logits, Req(&p, nullptr, prompt, output))->token_id, 0);
  p.presence_penalty = 1.0;
  p.frequency_penalty = 0.0;  // 3 -> 1.5 - 1 = 0.5; 0 stays 1.0
  EXPECT_EQ(s.Sample(logits, Req(&p, nullptr, prompt, output))->token_id, 0);
}

// ---------------------------------------------------------------------------------------------
// Seeds and batches

TEST(SamplerTest, SameSeedSameTokensDifferentSeedsDiffer) {
  Sampler s;
  SamplingParams p;
  p.temperature = 1.0;
  std::vector<float> logits(64);
  for (int i = 0; i < 64; ++i) logits[i] = 0.05f * static_cast<float>(i % 7);

  auto run = [&](uint64_t seed, uint32_t stream) {
    SamplerRng rng(seed, stream);
    std::vector<int32_t> out;
    for (int i = 0; i < 32; ++i) out.push_back(s.Sample(logits, Req(&p, &rng))->token_id);
    return out;
  };
  EXPECT_EQ(run(42, 0), run(42, 0));
  EXPECT_NE(run(42, 0), run(43, 0));
  EXPECT_NE(run(42, 0), run(42, 1));  // the n sequences of one request differ

  // A fixed seed gives fixed tokens (guards the Philox layout; the GPU sampler must match).
  SamplerRng rng(2024);
  std::vector<int32_t> first;
  for (int i = 0; i < 8; ++i) first.push_back(s.Sample(logits, Req(&p, &rng))->token_id);
  SamplerRng again(2024);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(s.Sample(logits, Req(&p, &again))->token_id, first[i]);

  // Rewinding the step replays the same token.
  SamplerRng r1(77);
  const int32_t a = s.Sample(logits, Req(&p, &r1))->token_id;
  r1.set_step(0);
  EXPECT_EQ(s.Sample(logits, Req(&p, &r1))->token_id, a);
}

TEST(SamplerTest, SampleMatchesDocumentedGumbelFormula) {
  // token = argmax_i logit_i / T - log(-log(U_i)) with U_i from SamplerRng::Uniform; a GPU
  // sampler implementing the header's formula reproduces these tokens.
  const int vocab = 1000;
  std::mt19937 gen(17);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> logits(vocab);
  for (float& v : logits) v = nd(gen);
  SamplingParams p;
  p.temperature = 0.7;
  Sampler s;
  SamplerRng rng(31337, 2);
  for (int step = 0; step < 50; ++step) {
    int32_t expected = -1;
    double best = -HUGE_VAL;
    for (int32_t t = 0; t < vocab; ++t) {
      const double score = static_cast<double>(logits[t] / static_cast<float>(p.temperature)) -
                           std::log(-std::log(rng.Uniform(t)));
      if (score > best) {
        best = score;
        expected = t;
      }
    }
    auto r = s.Sample(logits, Req(&p, &rng));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->token_id, expected) << "step " << step;
  }
  EXPECT_EQ(rng.step(), 50u);
}

TEST(SamplerTest, UnseededStreamsAreRandom) {
  SamplerRng a = SamplerRng::FromSeed(std::nullopt), b = SamplerRng::FromSeed(std::nullopt);
  EXPECT_NE(a.seed(), b.seed());
  EXPECT_EQ(SamplerRng::FromSeed(5).seed(), 5u);
}

TEST(SamplerTest, BatchCompositionDoesNotChangeSeededTokens) {
  const int vocab = 300;
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> ud(-2.0f, 2.0f);
  std::vector<float> batch(3 * vocab);
  for (float& v : batch) v = ud(gen);
  std::span<const float> row1(batch.data() + vocab, vocab);

  SamplingParams seeded;
  seeded.seed = 1234;
  seeded.top_p = 0.95;
  SamplingParams greedy;
  greedy.temperature = 0;
  SamplingParams other;
  other.temperature = 1.3;
  other.top_k = 20;

  Sampler s;
  // Alone.
  SamplerRng alone = SamplerRng::FromSeed(seeded.seed);
  std::vector<int32_t> expected;
  for (int step = 0; step < 10; ++step)
    expected.push_back(s.Sample(row1, Req(&seeded, &alone))->token_id);

  // In a batch (row 1) next to other requests.
  SamplerRng r0(999), r1 = SamplerRng::FromSeed(seeded.seed), r2(5);
  for (int step = 0; step < 10; ++step) {
    std::vector<SampleRequest> reqs = {Req(&other, &r0), Req(&seeded, &r1), Req(&greedy, &r2)};
    auto results = s.SampleBatch(batch, vocab, reqs);
    ASSERT_EQ(results.size(), 3u);
    for (auto& r : results) ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ(results[1]->token_id, expected[step]);
    const int32_t argmax =
        std::max_element(batch.begin() + 2 * vocab, batch.end()) - (batch.begin() + 2 * vocab);
    EXPECT_EQ(results[2]->token_id, argmax);
  }
  EXPECT_EQ(r1.step(), 10u);
}

TEST(SamplerTest, SampleBatchShapeError) {
  Sampler s;
  SamplingParams p;
  std::vector<float> logits(10);
  SamplerRng rng(1);
  std::vector<SampleRequest> reqs = {Req(&p, &rng), Req(&p, &rng)};
  auto results = s.SampleBatch(logits, 4, reqs);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].message(), "sampler: logits have 10 values, expected [num_seqs=2, vocab=4]");
}

// ---------------------------------------------------------------------------------------------
// Logprobs

TEST(SamplerTest, LogprobsAreRawLogSoftmax) {
  Sampler s;
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 0.0f};
  const double log_z = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(0.0));
  SamplingParams p;
  p.temperature = 0;
  p.logprobs = 2;
  auto r = s.Sample(logits, Req(&p));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->token_id, 2);
  ASSERT_TRUE(r->logprob.has_value());
  EXPECT_NEAR(*r->logprob, 3.0 - log_z, 1e-6);  // -0.440190
  EXPECT_NEAR(*r->logprob, -0.4401897, 1e-6);
  EXPECT_EQ(r->rank, 1);
  ASSERT_EQ(r->top_logprobs.size(), 2u);
  EXPECT_EQ(r->top_logprobs[0].token_id, 2);
  EXPECT_EQ(r->top_logprobs[1].token_id, 1);
  EXPECT_NEAR(r->top_logprobs[1].logprob, 2.0 - log_z, 1e-6);

  // Penalties, temperature and filtering do not change the reported logprobs: a repetition and a
  // frequency penalty on token 2 make token 1 the only top_k=1 survivor (2 -> 3/2 - 1 = 0.5), and
  // it is reported with its raw logprob and raw rank 2.
  const std::vector<int32_t> prompt = {2};
  const std::vector<int32_t> output = {2};
  p.temperature = 0.3;
  p.repetition_penalty = 2.0;
  p.frequency_penalty = 1.0;
  p.top_k = 1;
  p.logprobs = 0;
  SamplerRng rng(8);
  r = s.Sample(logits, Req(&p, &rng, prompt, output));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->token_id, 1);
  EXPECT_NEAR(*r->logprob, 2.0 - log_z, 1e-6);
  EXPECT_EQ(r->rank, 2);
  EXPECT_TRUE(r->top_logprobs.empty());

  // Ties in the top list go to the lower id; the list is capped by the vocab size.
  const std::vector<float> tied = {0.0f, 1.0f, 1.0f};
  p = SamplingParams{};
  p.temperature = 0;
  p.logprobs = 5;
  r = s.Sample(tied, Req(&p));
  ASSERT_EQ(r->top_logprobs.size(), 3u);
  EXPECT_EQ(r->top_logprobs[0].token_id, 1);
  EXPECT_EQ(r->top_logprobs[1].token_id, 2);
  EXPECT_EQ(r->top_logprobs[2].token_id, 0);
  EXPECT_EQ(r->rank, 2);  // vLLM rank: number of tokens with logprob >= the sampled one
  EXPECT_NEAR(LogSoftmaxAt(tied, 0), -std::log(1 + 2 * std::exp(1.0)), 1e-9);
}

// ---------------------------------------------------------------------------------------------
// min_tokens

TEST(SamplerTest, MinTokensMasksEosAndStopTokens) {
  Sampler s({0});  // EOS = 0
  const std::vector<float> logits = {5.0f, 1.0f, 4.0f, 3.0f};
  SamplingParams p;
  p.temperature = 0;
  p.min_tokens = 3;
  p.stop_token_ids = {2};
  std::vector<int32_t> output = {1, 1};
  // EOS (0) and stop token 2 masked -> 3.
  EXPECT_EQ(s.Sample(logits, Req(&p, nullptr, {}, output))->token_id, 3);
  auto probs = *s.FinalProbs(logits, Req(&p, nullptr, {}, output));
  EXPECT_EQ(probs[3], 1.0f);
  // Reached: EOS allowed again.
  output.push_back(1);
  EXPECT_EQ(s.Sample(logits, Req(&p, nullptr, {}, output))->token_id, 0);
  // ignore_eos: EOS is an ordinary token and is not masked; stop tokens still are.
  output.pop_back();
  p.ignore_eos = true;
  EXPECT_EQ(s.Sample(logits, Req(&p, nullptr, {}, output))->token_id, 0);

  // Random sampling never returns a masked token.
  p.ignore_eos = false;
  p.temperature = 1.0;
  SamplerRng rng(3);
  for (int i = 0; i < 200; ++i) {
    const int32_t t = s.Sample(logits, Req(&p, &rng, {}, output))->token_id;
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST(SamplerTest, AllowedBitmaskRestrictsTokensButNotLogprobs) {
  // Logits favour token 3; the mask allows only 1 and 6 (of 8): greedy takes 6 (larger logit),
  // sampling never leaves {1, 6}, and logprobs stay those of the raw logits.
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f, 9.0f, 0.5f, 0.0f, 1.5f, 0.0f};
  const std::vector<uint32_t> allowed = {(1u << 1) | (1u << 6)};
  SamplingParams p;
  p.temperature = 0.0;
  p.logprobs = 1;
  SampleRequest req;
  req.params = &p;
  req.allowed = allowed;
  Sampler sampler;
  auto greedy = sampler.Sample(logits, req);
  ASSERT_TRUE(greedy.ok()) << greedy.message();
  EXPECT_EQ(greedy->token_id, 6);
  EXPECT_NEAR(*greedy->logprob, LogSoftmaxAt(logits, 6), 1e-6);
  ASSERT_EQ(greedy->top_logprobs.size(), 1u);
  EXPECT_EQ(greedy->top_logprobs[0].token_id, 3);  // raw logits: the masked favourite
  p.temperature = 1.0;
  SamplerRng rng(7, 0);
  req.rng = &rng;
  for (int i = 0; i < 200; ++i) {
    auto r = sampler.Sample(logits, req);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->token_id == 1 || r->token_id == 6) << r->token_id;
  }
  const std::vector<uint32_t> none = {0u};
  req.allowed = none;
  auto err = sampler.Sample(logits, req);
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.message().find("structured-output masking"), std::string::npos);
  const std::vector<uint32_t> short_mask;  // empty: no mask
  req.allowed = short_mask;
  EXPECT_TRUE(sampler.Sample(logits, req).ok());
}

TEST(SamplerTest, BadInputsAreErrors) {
  Sampler s({0});
  SamplingParams p;
  SamplerRng rng(1);

  std::vector<float> nan_logits = {0.0f, NAN, 1.0f};
  auto r = s.Sample(nan_logits, Req(&p, &rng));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "sampler: logits[1] is NaN");

  std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  p.repetition_penalty = 1.2;
  const std::vector<int32_t> bad = {1, 3};
  r = s.Sample(logits, Req(&p, &rng, bad, {}));
  EXPECT_EQ(r.message(), "sampler: prompt_token_ids[1] = 3 is out of range for vocab size 3");
  r = s.Sample(logits, Req(&p, &rng, {}, bad));
  EXPECT_EQ(r.message(), "sampler: output_token_ids[1] = 3 is out of range for vocab size 3");

  p = SamplingParams{};
  r = s.Sample(logits, Req(&p, nullptr));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.message().find("no rng"), std::string::npos) << r.message();

  r = s.Sample({}, Req(&p, &rng));
  EXPECT_EQ(r.message(), "sampler: logits are empty (vocab size 0)");

  // Only EOS is allowed by the model but min_tokens masks it.
  const float inf = INFINITY;
  std::vector<float> only_eos = {0.0f, -inf, -inf};
  p.min_tokens = 1;
  r = s.Sample(only_eos, Req(&p, &rng));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.message().find("every logit is -inf"), std::string::npos) << r.message();
  p.temperature = 0;
  EXPECT_FALSE(s.Sample(only_eos, Req(&p, &rng)).ok());

  r = s.Sample(logits, Req(nullptr, &rng));
  EXPECT_EQ(r.message(), "sampler: request has no sampling params");
}

}  // namespace
}  // namespace c8
