#include "c8/backend/cpu/cpu_int8_linear.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

namespace c8 {

namespace {

#define C8_AVX2 __attribute__((target("avx2")))

C8_AVX2 inline int32_t HsumEpi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// acc[i] = sum_k a[k] * b_i[k] for 4 weight rows b_0..b_3 (row stride K) and one activation
// row a: int8 pairs widened to int16, multiplied and pair-summed into int32 (exact).
C8_AVX2 inline __m256i Load16(const int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

C8_AVX2 void Dot4Avx2(const int8_t* a, const int8_t* b, int64_t K, int32_t* acc) {
  const int64_t K16 = K / 16 * 16;
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t k = 0; k < K16; k += 16) {
    const __m256i av = Load16(a + k);
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(av, Load16(b + 0 * K + k)));
    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(av, Load16(b + 1 * K + k)));
    s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(av, Load16(b + 2 * K + k)));
    s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(av, Load16(b + 3 * K + k)));
  }
  acc[0] = HsumEpi32(s0);
  acc[1] = HsumEpi32(s1);
  acc[2] = HsumEpi32(s2);
  acc[3] = HsumEpi32(s3);
  for (int64_t k = K16; k < K; ++k) {
    for (int i = 0; i < 4; ++i) acc[i] += int32_t{a[k]} * int32_t{b[i * K + k]};
  }
}

void Dot4Portable(const int8_t* a, const int8_t* b, int64_t K, int32_t* acc) {
  for (int i = 0; i < 4; ++i) {
    int32_t s = 0;
    for (int64_t k = 0; k < K; ++k) s += int32_t{a[k]} * int32_t{b[i * K + k]};
    acc[i] = s;
  }
}

bool HaveAvx2() {
  static const bool ok = __builtin_cpu_supports("avx2");
  return ok;
}

}  // namespace

void QuantizeActivations(const float* x, int64_t T, int64_t K, const LinearWeight& w, int8_t* q,
                         float* s) {
  if (w.quant == LinearQuant::kW8A8Static) {
    const float inv = 1.0f / w.input_scale;
    for (int64_t i = 0; i < T * K; ++i) q[i] = QuantizeActivation(x[i], inv, w.input_offset);
    return;
  }
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * K;
    float amax = 0.0f;
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(xr[k]));
    // An all-zero row quantizes to zeros with any scale; 1 keeps the epilogue finite.
    const float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 1.0f;
    s[t] = scale;
    for (int64_t k = 0; k < K; ++k) q[t * K + k] = QuantizeActivation(xr[k], inv, 0.0f);
  }
}

void CpuInt8Linear(const float* x, int64_t T, int64_t K, const LinearWeight& w, const float* bias,
                   float* y, ThreadPool& pool) {
  const int64_t N = w.w.dim(0);
  if (T <= 0 || N <= 0) return;
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<float> ts;
  xq.resize(static_cast<size_t>(T * K));
  ts.assign(static_cast<size_t>(T), 1.0f);
  QuantizeActivations(x, T, K, w, xq.data(), ts.data());
  const int8_t* wq = w.w.as<const int8_t>();
  const float* scale = w.scale.as<const float>();
  const float* shift = w.shift.data ? w.shift.as<const float>() : nullptr;
  const bool dynamic = w.quant == LinearQuant::kW8A8Dynamic;
  const int8_t* a = xq.data();
  const float* tok = ts.data();
  const bool avx2 = HaveAvx2();
  // Chunks of 64 rows (multiple of 4): 64 x K int8 stays in L2 while every token streams by.
  const int64_t rows = 64;
  pool.ParallelFor((N + rows - 1) / rows, 1, [&](int64_t lo, int64_t hi) {
    int32_t acc[4];
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t n0 = c * rows, n1 = std::min(N, n0 + rows);
      for (int64_t n = n0; n < n1; n += 4) {
        const int64_t nr = std::min<int64_t>(4, n1 - n);
        for (int64_t t = 0; t < T; ++t) {
          if (nr == 4) {
            if (avx2) {
              Dot4Avx2(a + t * K, wq + n * K, K, acc);
            } else {
              Dot4Portable(a + t * K, wq + n * K, K, acc);
            }
          } else {
            for (int64_t i = 0; i < nr; ++i) {
              int32_t s = 0;
              for (int64_t k = 0; k < K; ++k) s += int32_t{a[t * K + k]} * wq[(n + i) * K + k];
              acc[i] = s;
            }
          }
          float* yr = y + t * N;
          for (int64_t i = 0; i < nr; ++i) {
            const int64_t o = n + i;
            float v = static_cast<float>(acc[i]) * scale[o];
            if (dynamic) v *= tok[t];
            if (shift) v += shift[o];
            if (bias) v += bias[o];
            yr[o] = v;
          }
        }
      }
    }
  });
}

}  // namespace c8
