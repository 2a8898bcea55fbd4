#include "c8/model/rope.h"

#include <gtest/gtest.h>

#include <cmath>

namespace c8 {
namespace {

TEST(Rope, DefaultTableIsCosSinOfPositionTimesInvFreq) {
  ModelConfig c;
  c.head_dim = 8;
  c.rope_theta = 10000.0;
  auto t = BuildRopeTable(c, 4);
  ASSERT_EQ(t.size(), 32u);
  // position 3, pair 1: inv_freq = 10000^(-2/8) = 0.1
  EXPECT_NEAR(t[3 * 8 + 1], std::cos(0.3), 1e-6);
  EXPECT_NEAR(t[3 * 8 + 4 + 1], std::sin(0.3), 1e-6);
  EXPECT_FLOAT_EQ(t[0], 1.0f);
}

TEST(Rope, LinearScalingDividesFrequencies) {
  ModelConfig c;
  c.head_dim = 4;
  c.rope_theta = 100.0;
  c.rope_scaling.type = RopeScaling::Type::kLinear;
  c.rope_scaling.factor = 2.0;
  auto f = ComputeRopeFrequencies(c);
  EXPECT_NEAR(f.inv_freq[0], 0.5, 1e-7);
  EXPECT_NEAR(f.inv_freq[1], 0.1 / 2, 1e-7);
}

TEST(Rope, YarnDefaultAttentionFactor) {
  ModelConfig c;
  c.head_dim = 64;
  c.rope_theta = 1e6;
  c.max_position_embeddings = 4096;
  c.rope_scaling.type = RopeScaling::Type::kYarn;
  c.rope_scaling.factor = 4.0;
  c.rope_scaling.original_max_position_embeddings = 1024;
  auto f = ComputeRopeFrequencies(c);
  EXPECT_NEAR(f.attention_factor, 0.1 * std::log(4.0) + 1.0, 1e-6);
  // Highest frequency is extrapolated (unchanged), lowest interpolated (divided by 4).
  EXPECT_NEAR(f.inv_freq[0], 1.0, 1e-6);
  EXPECT_NEAR(f.inv_freq[31], std::pow(1e6, -62.0 / 64) / 4, 1e-9);
}

}  // namespace
}  // namespace c8
