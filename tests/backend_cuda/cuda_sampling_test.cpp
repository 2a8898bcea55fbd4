// CudaBackend::SampleRows against the host Sampler (through the shared random cases): same
// tokens (same Philox uniforms, same kept sets), same ranks and top ids, logprobs to 1e-5.
#include <gtest/gtest.h>

#include <chrono>

#include "../backend_cpu/sampling_cases.h"
#include "cuda_test_util.h"

namespace c8 {
namespace {

void CheckAgainstHost(int64_t vocab, int64_t logit_rows, int num_cases, uint32_t seed) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  std::mt19937 rng(seed);
  const std::vector<float> logits = testing::RandomLogits(logit_rows, vocab, rng);
  const std::vector<testing::SamplingCase> cases = testing::RandomCases(num_cases, vocab, rng);
  std::vector<uint32_t> allowed;  // structured-output bitmasks of every 3rd case
  const SamplingRows rows = testing::ToSamplingRows(cases, logit_rows, &allowed);
  Tensor t = gpu->UploadF32(logits.data(), {logit_rows, vocab});
  std::vector<SampledToken> out;
  Status st = gpu->SampleRows(t, rows, &out);  // warm-up (buffers)
  ASSERT_TRUE(st.ok()) << st.message();
  const auto t0 = std::chrono::steady_clock::now();
  st = gpu->SampleRows(t, rows, &out);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(st.ok()) << st.message();
  std::printf("SampleRows: %d rows x vocab %ld: %.3f ms\n", num_cases, static_cast<long>(vocab),
              ms);
  ASSERT_EQ(out.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("row " + std::to_string(i));
    Result<SampleResult> ref = testing::ReferenceSample(cases[i], i, logits, vocab);
    ASSERT_TRUE(ref.ok()) << ref.message();
    ASSERT_TRUE(out[i].error.empty()) << out[i].error;
    EXPECT_EQ(out[i].token_id, ref->token_id);
    if (!cases[i].allowed.empty()) {
      const int32_t t = out[i].token_id;
      EXPECT_TRUE((cases[i].allowed[t >> 5] >> (t & 31)) & 1u) << t;
    }
    EXPECT_EQ(out[i].has_logprob, ref->logprob.has_value());
    if (ref->logprob) {
      EXPECT_NEAR(out[i].logprob, *ref->logprob, 1e-5);
      EXPECT_EQ(out[i].rank, ref->rank);
      ASSERT_EQ(out[i].top_logprobs.size(), ref->top_logprobs.size());
      for (size_t k = 0; k < ref->top_logprobs.size(); ++k) {
        EXPECT_EQ(out[i].top_logprobs[k].token_id, ref->top_logprobs[k].token_id);
        EXPECT_NEAR(out[i].top_logprobs[k].logprob, ref->top_logprobs[k].logprob, 1e-5);
      }
    }
  }
  gpu->Free(t.data);
}

TEST(CudaSampling, MatchesHostSamplerQwenVocab) {
  CheckAgainstHost(151936, 13, 64, 7);
}

TEST(CudaSampling, MatchesHostSamplerSmallVocab) {
  CheckAgainstHost(1001, 5, 96, 11);
}

TEST(CudaSampling, SeededDrawsMatchOverManySteps) {
  // One temperature-1 row sampled at 200 steps: every draw equals the host's.
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  constexpr int64_t kVocab = 4099;
  std::mt19937 rng(3);
  const std::vector<float> logits = testing::RandomLogits(1, kVocab, rng);
  Tensor t = gpu->UploadF32(logits.data(), {1, kVocab});
  SamplingRows rows;
  for (int s = 0; s < 200; ++s) {
    SamplingRow r;
    r.seed = 77;
    r.step = static_cast<uint64_t>(s);
    rows.rows.push_back(r);
  }
  std::vector<SampledToken> out;
  ASSERT_TRUE(gpu->SampleRows(t, rows, &out).ok());
  Sampler sampler;
  SamplingParams p;
  SamplerRng host_rng(77);
  for (int s = 0; s < 200; ++s) {
    SampleRequest req;
    req.params = &p;
    req.rng = &host_rng;
    Result<SampleResult> ref = sampler.Sample(logits, req);
    ASSERT_TRUE(ref.ok());
    EXPECT_EQ(out[s].token_id, ref->token_id) << "step " << s;
  }
  gpu->Free(t.data);
}

TEST(CudaSampling, RowErrors) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  constexpr int64_t kVocab = 8;
  std::vector<float> logits(2 * kVocab, 0.0f);
  logits[3] = std::nanf("");
  Tensor t = gpu->UploadF32(logits.data(), {2, kVocab});
  SamplingRows rows;
  rows.rows.resize(4);
  rows.rows[0].logits_row = 0;  // NaN
  rows.rows[1].logits_row = 1;
  rows.rows[1].temperature = 0.0;
  rows.rows[2].logits_row = 1;  // out-of-range penalty id
  rows.rows[2].penalty_count = 1;
  rows.rows[2].repetition_penalty = 1.2;
  rows.penalty.push_back({99, 0});
  rows.rows[3].logits_row = 1;  // every token masked
  rows.rows[3].masked_count = kVocab;
  rows.rows[3].masked_begin = 0;
  for (int i = 0; i < kVocab; ++i) rows.masked.push_back(i);
  std::vector<SampledToken> out;
  ASSERT_TRUE(gpu->SampleRows(t, rows, &out).ok());
  EXPECT_FALSE(out[0].error.empty());
  EXPECT_TRUE(out[1].error.empty()) << out[1].error;
  EXPECT_EQ(out[1].token_id, 0);
  EXPECT_FALSE(out[2].error.empty());
  EXPECT_FALSE(out[3].error.empty());
  gpu->Free(t.data);
}

}  // namespace
}  // namespace c8
