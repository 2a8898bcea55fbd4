// CpuBackend::SampleRows against the host Sampler driven directly with engine-like inputs.
#include <gtest/gtest.h>

#include "c8/backend/cpu/cpu_backend.h"
#include "sampling_cases.h"

namespace c8 {
namespace {

TEST(CpuSampling, SampleRowsMatchesHostSampler) {
  constexpr int64_t kVocab = 3001, kLogitRows = 11;
  std::mt19937 rng(42);
  const std::vector<float> logits = testing::RandomLogits(kLogitRows, kVocab, rng);
  const std::vector<testing::SamplingCase> cases = testing::RandomCases(64, kVocab, rng);
  CpuBackend backend(1);
  Tensor t(const_cast<float*>(logits.data()), DType::kF32, {kLogitRows, kVocab});
  std::vector<SampledToken> out;
  std::vector<uint32_t> allowed;
  ASSERT_TRUE(
      backend.SampleRows(t, testing::ToSamplingRows(cases, kLogitRows, &allowed), &out).ok());
  ASSERT_EQ(out.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("row " + std::to_string(i));
    Result<SampleResult> ref = testing::ReferenceSample(cases[i], i, logits, kVocab);
    ASSERT_TRUE(ref.ok()) << ref.message();
    ASSERT_TRUE(out[i].error.empty()) << out[i].error;
    EXPECT_EQ(out[i].token_id, ref->token_id);
    if (!cases[i].allowed.empty()) {  // structured output: only allowed tokens come out
      const int32_t t = out[i].token_id;
      EXPECT_TRUE((cases[i].allowed[t >> 5] >> (t & 31)) & 1u) << t;
    }
    EXPECT_EQ(out[i].has_logprob, ref->logprob.has_value());
    if (ref->logprob) {
      EXPECT_EQ(out[i].logprob, *ref->logprob);
      EXPECT_EQ(out[i].rank, ref->rank);
      ASSERT_EQ(out[i].top_logprobs.size(), ref->top_logprobs.size());
      for (size_t k = 0; k < ref->top_logprobs.size(); ++k) {
        EXPECT_EQ(out[i].top_logprobs[k].token_id, ref->top_logprobs[k].token_id);
        EXPECT_EQ(out[i].top_logprobs[k].logprob, ref->top_logprobs[k].logprob);
      }
    }
  }
}

TEST(CpuSampling, RowErrorsStayInTheirRow) {
  constexpr int64_t kVocab = 8;
  std::vector<float> logits(2 * kVocab, 0.0f);
  logits[3] = std::nanf("");
  CpuBackend backend(1);
  Tensor t(logits.data(), DType::kF32, {2, kVocab});
  SamplingRows rows;
  rows.rows.resize(3);
  rows.rows[0].logits_row = 0;  // NaN
  rows.rows[1].logits_row = 1;
  rows.rows[1].temperature = 0.0;
  rows.rows[2].logits_row = 1;
  rows.rows[2].penalty_count = 1;  // out-of-range penalty id
  rows.rows[2].repetition_penalty = 1.2;
  rows.penalty.push_back({99, 0});
  std::vector<SampledToken> out;
  ASSERT_TRUE(backend.SampleRows(t, rows, &out).ok());
  EXPECT_NE(out[0].error.find("NaN"), std::string::npos) << out[0].error;
  EXPECT_TRUE(out[1].error.empty());
  EXPECT_EQ(out[1].token_id, 0);  // all ties: lowest id
  EXPECT_NE(out[2].error.find("out of range"), std::string::npos) << out[2].error;

  rows.rows[1].logits_row = 2;
  Status st = backend.SampleRows(t, rows, &out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("rows[1]"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace c8
