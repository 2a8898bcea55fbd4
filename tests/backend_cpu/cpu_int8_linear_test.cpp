// CPU W8A8 linears (static with offset and shift, dynamic per-token) against an fp64
// reference on random data, odd shapes included, and the dequantized float product they
// approximate.
#include "c8/backend/cpu/cpu_int8_linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "c8/backend/cpu/cpu_backend.h"

namespace c8 {
namespace {

struct Case {
  int64_t T, K, N;
  LinearQuant quant;
};

struct Host {
  std::vector<float> x, scale, shift, bias, y;
  std::vector<int8_t> w;
  LinearWeight lw;
};

Host Make(const Case& c, std::mt19937& rng) {
  Host h;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> wd(-127, 127);
  h.x.resize(c.T * c.K);
  for (float& v : h.x) v = nd(rng) * 2.0f;
  if (c.T > 2) {
    for (int64_t k = 0; k < c.K; ++k) h.x[1 * c.K + k] = 0.0f;  // an all-zero token
  }
  h.w.resize(c.N * c.K);
  for (int8_t& v : h.w) v = static_cast<int8_t>(wd(rng));
  h.scale.resize(c.N);
  for (float& v : h.scale) v = 1e-4f * (1.0f + std::fabs(nd(rng)));
  h.bias.resize(c.N);
  for (float& v : h.bias) v = nd(rng);
  h.lw.w = Tensor(h.w.data(), DType::kI8, {c.N, c.K});
  h.lw.quant = c.quant;
  h.lw.scale = Tensor(h.scale.data(), DType::kF32, {c.N});
  if (c.quant == LinearQuant::kW8A8Static) {
    h.shift.resize(c.N);
    for (float& v : h.shift) v = nd(rng) * 0.1f;
    h.lw.shift = Tensor(h.shift.data(), DType::kF32, {c.N});
    h.lw.input_scale = 0.05f;
    h.lw.input_offset = 3.0f;  // asymmetric activations
  }
  h.y.assign(c.T * c.N, 0.0f);
  return h;
}

TEST(CpuInt8Linear, MatchesFp64Reference) {
  std::mt19937 rng(5);
  const Case cases[] = {
      {1, 64, 32, LinearQuant::kW8A8Static},   {7, 37, 13, LinearQuant::kW8A8Static},
      {3, 160, 9, LinearQuant::kW8A8Dynamic},  {1, 17, 4, LinearQuant::kW8A8Dynamic},
      {33, 96, 70, LinearQuant::kW8A8Dynamic}, {16, 256, 128, LinearQuant::kW8A8Static},
  };
  ThreadPool pool(2);
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(LinearQuantName(c.quant)) + " T " + std::to_string(c.T) + " K " +
                 std::to_string(c.K) + " N " + std::to_string(c.N));
    Host h = Make(c, rng);
    for (bool with_bias : {false, true}) {
      CpuInt8Linear(h.x.data(), c.T, c.K, h.lw, with_bias ? h.bias.data() : nullptr, h.y.data(),
                    pool);
      // Reference: the documented quantization, then exact integer dot products in fp64.
      std::vector<int8_t> q(c.T * c.K);
      std::vector<float> s(c.T, 1.0f);
      QuantizeActivations(h.x.data(), c.T, c.K, h.lw, q.data(), s.data());
      for (int64_t t = 0; t < c.T; ++t) {
        if (c.quant == LinearQuant::kW8A8Dynamic) {
          double amax = 0;
          for (int64_t k = 0; k < c.K; ++k)
            amax = std::max(amax, std::fabs(double{h.x[t * c.K + k]}));
          EXPECT_FLOAT_EQ(s[t], amax > 0 ? static_cast<float>(amax) / 127.0f : 1.0f);
          for (int64_t k = 0; k < c.K; ++k) {
            const double want = amax > 0 ? std::nearbyint(h.x[t * c.K + k] * (127.0 / amax)) : 0;
            EXPECT_NEAR(q[t * c.K + k], want, 1.0);  // fp32 vs fp64 scaling at .5 ties only
          }
        } else {
          for (int64_t k = 0; k < c.K; ++k) {
            const double v = std::nearbyint(h.x[t * c.K + k] / 0.05 + 3.0);
            EXPECT_NEAR(q[t * c.K + k], std::clamp(v, -128.0, 127.0), 1.0);
          }
        }
        for (int64_t n = 0; n < c.N; ++n) {
          double acc = 0;
          for (int64_t k = 0; k < c.K; ++k)
            acc += static_cast<double>(q[t * c.K + k]) * h.w[n * c.K + k];
          double want = acc * h.scale[n];
          if (c.quant == LinearQuant::kW8A8Dynamic) want *= s[t];
          if (c.quant == LinearQuant::kW8A8Static) want += h.shift[n];
          if (with_bias) want += h.bias[n];
          ASSERT_NEAR(h.y[t * c.N + n], want, 1e-5 * (1 + std::fabs(want))) << t << "," << n;
        }
      }
    }
  }
}

TEST(CpuInt8Linear, ApproximatesTheDequantizedProduct) {
  // Dynamic W8A8 of x against w_q * scale: relative error of a few 1/127 steps.
  std::mt19937 rng(9);
  const Case c{8, 512, 64, LinearQuant::kW8A8Dynamic};
  Host h = Make(c, rng);
  ThreadPool pool(2);
  CpuInt8Linear(h.x.data(), c.T, c.K, h.lw, nullptr, h.y.data(), pool);
  double err = 0, norm = 0;
  for (int64_t t = 0; t < c.T; ++t) {
    for (int64_t n = 0; n < c.N; ++n) {
      double exact = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        exact += double{h.x[t * c.K + k]} * h.w[n * c.K + k] * h.scale[n];
      }
      err += (h.y[t * c.N + n] - exact) * (h.y[t * c.N + n] - exact);
      norm += exact * exact;
    }
  }
  EXPECT_LT(std::sqrt(err / norm), 0.02);
}

TEST(CpuInt8Linear, ThroughTheBackendOpInterface) {
  std::mt19937 rng(11);
  const Case c{5, 48, 24, LinearQuant::kW8A8Static};
  Host h = Make(c, rng);
  CpuBackend backend(2);
  Tensor x(h.x.data(), DType::kF32, {c.T, c.K});
  Tensor y(h.y.data(), DType::kF32, {c.T, c.N});
  std::vector<float> direct(c.T * c.N);
  ThreadPool pool(1);
  CpuInt8Linear(h.x.data(), c.T, c.K, h.lw, nullptr, direct.data(), pool);
  backend.Linear(x, h.lw, nullptr, y);
  EXPECT_EQ(h.y, direct);
}

}  // namespace
}  // namespace c8
