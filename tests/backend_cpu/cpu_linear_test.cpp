// CpuLinear (fp32 and bf16 weights, decode GEMV and chunked GEMM) against a double reference.
#include "c8/backend/cpu/cpu_linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "c8/util/bf16.h"

namespace c8 {
namespace {

TEST(CpuLinear, Bf16AndF32WeightsMatchDoubleReference) {
  ThreadPool pool(2);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t K : {64, 100, 576}) {
    for (int64_t N : {7, 96, 1000}) {
      for (int64_t T : {1, 3, 17}) {
        std::vector<float> x(T * K), w(N * K);
        std::vector<uint16_t> wb(N * K);
        for (auto& v : x) v = nd(rng);
        for (int64_t i = 0; i < N * K; ++i) {
          wb[i] = F32ToBf16(nd(rng));
          w[i] = Bf16ToF32(wb[i]);  // the same values in both layouts
        }
        for (bool bf16 : {false, true}) {
          std::vector<float> y(T * N, NAN);
          CpuLinear(x.data(), T, K, bf16 ? static_cast<const void*>(wb.data()) : w.data(), bf16, N,
                    y.data(), pool);
          double err = 0, ref_norm = 0;
          for (int64_t t = 0; t < T; ++t) {
            for (int64_t n = 0; n < N; ++n) {
              double ref = 0;
              for (int64_t k = 0; k < K; ++k)
                ref += static_cast<double>(x[t * K + k]) * w[n * K + k];
              ASSERT_FALSE(std::isnan(y[t * N + n])) << "unwritten output";
              err += (y[t * N + n] - ref) * (y[t * N + n] - ref);
              ref_norm += ref * ref;
            }
          }
          EXPECT_LT(std::sqrt(err / ref_norm), 1e-6)
              << "K " << K << " N " << N << " T " << T << " bf16 " << bf16;
        }
      }
    }
  }
}

}  // namespace
}  // namespace c8
