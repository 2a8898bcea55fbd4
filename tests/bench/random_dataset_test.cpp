// The random dataset: lengths within vLLM's bounds, the id pattern, determinism with a seed.
#include "c8/bench/random_dataset.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "c8/bench/arrival_schedule.h"

namespace c8::bench {
namespace {

TEST(RandomDataset, LengthsWithinBounds) {
  RandomDatasetOptions o;
  o.num_prompts = 200;
  o.input_len = 100;
  o.output_len = 10;
  o.range_ratio = 0.25;
  o.vocab_size = 1000;
  auto r = SampleRandomDataset(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->size(), 200u);
  std::set<int64_t> in_seen, out_seen;
  for (const RequestInput& q : *r) {
    // input in [floor(75), ceil(125)], output in [floor(7.5), ceil(12.5)] = [7, 13]
    EXPECT_GE(q.prompt_len, 75);
    EXPECT_LE(q.prompt_len, 125);
    EXPECT_GE(q.output_len, 7);
    EXPECT_LE(q.output_len, 13);
    EXPECT_EQ(static_cast<int64_t>(q.prompt_ids.size()), q.prompt_len);
    EXPECT_TRUE(q.prompt_text.empty());
    in_seen.insert(q.prompt_len);
    out_seen.insert(q.output_len);
    for (int32_t id : q.prompt_ids) {
      ASSERT_GE(id, 0);
      ASSERT_LT(id, 1000);
    }
  }
  // Both ends of the output range are reached with 200 draws from 7 values.
  EXPECT_TRUE(out_seen.count(7) && out_seen.count(13));
  EXPECT_GT(in_seen.size(), 20u);
}

TEST(RandomDataset, FixedLengthsAndIdPattern) {
  RandomDatasetOptions o;
  o.num_prompts = 5;
  o.input_len = 16;
  o.output_len = 4;
  o.prefix_len = 3;
  o.vocab_size = 50;
  auto r = SampleRandomDataset(o, nullptr);
  ASSERT_TRUE(r.ok());
  const std::vector<int32_t> prefix((*r)[0].prompt_ids.begin(), (*r)[0].prompt_ids.begin() + 3);
  for (size_t i = 0; i < r->size(); ++i) {
    const auto& ids = (*r)[i].prompt_ids;
    ASSERT_EQ(ids.size(), 19u);  // prefix 3 + 16
    EXPECT_EQ((*r)[i].prompt_len, 19);
    EXPECT_EQ((*r)[i].output_len, 4);
    EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), ids.begin()));  // shared prefix
    // (offset + i + j) % vocab: consecutive ids after the prefix.
    for (size_t j = 4; j < ids.size(); ++j) EXPECT_EQ(ids[j], (ids[j - 1] + 1) % 50);
  }
  // Output lengths never drop below 1.
  o.output_len = 0;
  auto z = SampleRandomDataset(o, nullptr);
  ASSERT_TRUE(z.ok());
  EXPECT_EQ((*z)[0].output_len, 1);
}

TEST(RandomDataset, DeterministicWithSeed) {
  RandomDatasetOptions o;
  o.num_prompts = 20;
  o.input_len = 32;
  o.range_ratio = 0.5;
  o.prefix_len = 4;
  o.seed = 42;
  auto a = SampleRandomDataset(o, nullptr);
  auto b = SampleRandomDataset(o, nullptr);
  o.seed = 43;
  auto c = SampleRandomDataset(o, nullptr);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  bool differs = false;
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].prompt_ids, (*b)[i].prompt_ids);
    EXPECT_EQ((*a)[i].output_len, (*b)[i].output_len);
    differs = differs || (*a)[i].prompt_ids != (*c)[i].prompt_ids;
  }
  EXPECT_TRUE(differs);
}

TEST(RandomDataset, BadFlagsAreErrors) {
  RandomDatasetOptions o;
  o.range_ratio = 1.0;
  auto r = SampleRandomDataset(o, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("--random-range-ratio"), std::string::npos);
  o.range_ratio = 0;
  o.input_len = 0;
  EXPECT_FALSE(SampleRandomDataset(o, nullptr).ok());  // empty prompts
  o.input_len = 10;
  o.num_prompts = 0;
  EXPECT_FALSE(SampleRandomDataset(o, nullptr).ok());
}

std::string SmolTokenizerPath() {
  std::string dir;
  if (const char* e = std::getenv("C8_SMOLLM2_DIR")) {
    dir = e;
  } else {
    dir = std::string(C8_SOURCE_DIR) + "/models/smollm2-135m-instruct";
  }
  return dir + "/tokenizer.json";
}

TEST(RandomDataset, WithTokenizerSendsTextOfTargetLength) {
  const std::string path = SmolTokenizerPath();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no tokenizer at " << path;
  auto tok = Tokenizer::FromFile(path);
  ASSERT_TRUE(tok.ok()) << tok.message();
  RandomDatasetOptions o;
  o.num_prompts = 8;
  o.input_len = 64;
  o.prefix_len = 8;
  auto r = SampleRandomDataset(o, &*tok);
  ASSERT_TRUE(r.ok()) << r.message();
  int exact = 0;
  for (const RequestInput& q : *r) {
    EXPECT_FALSE(q.prompt_text.empty());
    EXPECT_TRUE(q.prompt_ids.empty());
    const int64_t n = static_cast<int64_t>(tok->Encode(q.prompt_text, false).size());
    EXPECT_NEAR(static_cast<double>(n), 72.0, 4.0);
    exact += n == 72 && q.prompt_len == 72;
  }
  EXPECT_GE(exact, 6);  // decode/re-encode converges for almost every prompt
}

TEST(ArrivalSchedule, InfiniteRateSendsAllAtOnce) {
  auto t = ArrivalTimes(5, INFINITY, 1.0, 0);
  EXPECT_EQ(t, std::vector<double>(5, 0.0));
}

TEST(ArrivalSchedule, PoissonRescaledToTargetDuration) {
  auto t = ArrivalTimes(100, 10.0, 1.0, 7);
  ASSERT_EQ(t.size(), 100u);
  for (size_t i = 1; i < t.size(); ++i) EXPECT_GE(t[i], t[i - 1]);
  EXPECT_NEAR(t.back(), 10.0, 1e-9);  // 100 requests / 10 per s
  EXPECT_EQ(t, ArrivalTimes(100, 10.0, 1.0, 7));
  auto u = ArrivalTimes(4, 2.0, INFINITY, 0);  // constant gaps 0.5 s
  EXPECT_NEAR(u[0], 0.5, 1e-12);
  EXPECT_NEAR(u[3], 2.0, 1e-12);
}

}  // namespace
}  // namespace c8::bench
