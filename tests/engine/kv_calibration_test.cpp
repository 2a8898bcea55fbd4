#include "c8/engine/kv_calibration.h"

#include <gtest/gtest.h>

#include "c8/kv/c8_quant.h"

namespace c8 {
namespace {

TEST(KvCalibration, AsymmetricMapsMinAndMaxToInt8Ends) {
  KvRangeStats st;
  st.Init(1, 2);
  const float k[] = {-1.0f, 0.5f, 3.0f, 2.5f};  // (T=2, channels=2)
  const float v[] = {0.0f, -4.0f, 0.1f, 4.0f};
  st.Observe(0, k, v, 2, 2);
  EXPECT_EQ(st.tokens, 2);
  EXPECT_FLOAT_EQ(st.k_min[0][0], -1.0f);
  EXPECT_FLOAT_EQ(st.k_max[0][0], 3.0f);
  EXPECT_FLOAT_EQ(st.v_min[0][1], -4.0f);
  C8LayerScales s = ScalesFromRange(st.k_min[0], st.k_max[0], st.v_min[0], st.v_max[0], false);
  EXPECT_FLOAT_EQ(s.k_scale[0], 4.0f / 255.0f);
  EXPECT_EQ(QuantizeC8(-1.0f, s.k_scale[0], s.k_offset[0]), -128);
  EXPECT_EQ(QuantizeC8(3.0f, s.k_scale[0], s.k_offset[0]), 127);
  EXPECT_EQ(QuantizeC8(-4.0f, s.v_scale[1], s.v_offset[1]), -128);
  EXPECT_EQ(QuantizeC8(4.0f, s.v_scale[1], s.v_offset[1]), 127);
  // Round trip error at most half a step inside the range.
  for (float x : {-0.3f, 0.0f, 1.7f, 2.99f}) {
    float y = DequantizeC8(QuantizeC8(x, s.k_scale[0], s.k_offset[0]), s.k_scale[0], s.k_offset[0]);
    EXPECT_LE(std::fabs(x - y), 0.5f * s.k_scale[0] + 1e-6f);
  }
}

TEST(KvCalibration, SymmetricHasZeroOffsetAndCoversAbsMax) {
  std::vector<float> mn{-2.0f, 0.0f}, mx{1.0f, 0.0f};
  C8LayerScales s = ScalesFromRange(mn, mx, mn, mx, true);
  EXPECT_FLOAT_EQ(s.k_scale[0], 2.0f / 127.0f);
  EXPECT_FLOAT_EQ(s.k_offset[0], 0.0f);
  EXPECT_EQ(QuantizeC8(-2.0f, s.k_scale[0], 0.0f), -127);
  EXPECT_GT(s.k_scale[1], 0.0f);  // a constant channel still gets a positive scale
}

}  // namespace
}  // namespace c8
