#include "c8/backend/cpu/cpu_linear.h"

#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace c8 {

namespace {

// bf16 bits -> fp32 (exact): the bits shifted into the high half. Vectorized; an AVX2 clone
// is picked at run time where the CPU has it (no -march flags: binaries travel).
__attribute__((target_clones("avx2", "default"))) void WidenBf16(const uint16_t* __restrict src,
                                                                 int64_t n,
                                                                 uint32_t* __restrict dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<uint32_t>(src[i]) << 16;
}

// y[n0 + r] = w[n0 + r, :] . x for r in [0, n): bf16 weights widened in registers, 8 rows
// at a time (8 independent FMA chains). AVX2 + FMA only; chosen at run time.
#define C8_AVX2 __attribute__((target("avx2,fma")))

C8_AVX2 inline __m256 widen(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

C8_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

C8_AVX2 void GemvBf16Avx2(const float* x, int64_t K, const uint16_t* w, int64_t n0, int64_t n,
                          float* y) {
  const int64_t K8 = K / 8 * 8;
  int64_t r = 0;
  for (; r + 8 <= n; r += 8) {
    const uint16_t* wr = w + (n0 + r) * K;
    __m256 acc[8];
    for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K8; k += 8) {
      const __m256 xv = _mm256_loadu_ps(x + k);
      for (int i = 0; i < 8; ++i) acc[i] = _mm256_fmadd_ps(widen(wr + i * K + k), xv, acc[i]);
    }
    for (int i = 0; i < 8; ++i) {
      float sum = hsum(acc[i]);
      for (int64_t k = K8; k < K; ++k) {
        const uint32_t u = static_cast<uint32_t>(wr[i * K + k]) << 16;
        float wf;
        std::memcpy(&wf, &u, 4);
        sum += wf * x[k];
      }
      y[n0 + r + i] = sum;
    }
  }
  for (; r < n; ++r) {
    const uint16_t* wr = w + (n0 + r) * K;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t k = 0; k < K8; k += 8)
      acc = _mm256_fmadd_ps(widen(wr + k), _mm256_loadu_ps(x + k), acc);
    float sum = hsum(acc);
    for (int64_t k = K8; k < K; ++k) {
      const uint32_t u = static_cast<uint32_t>(wr[k]) << 16;
      float wf;
      std::memcpy(&wf, &u, 4);
      sum += wf * x[k];
    }
    y[n0 + r] = sum;
  }
}

bool HaveAvx2Fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

}  // namespace

void CpuLinear(const float* x, int64_t T, int64_t K, const void* w, bool w_bf16, int64_t N,
               float* y, ThreadPool& pool) {
  if (T <= 0 || N <= 0) return;
  // Rows per chunk: a widened chunk of ~192 KB stays in L2; at least 16 rows.
  const int64_t rows = std::max<int64_t>(16, (192 * 1024) / (4 * K)) / 8 * 8;
  const int64_t chunks = (N + rows - 1) / rows;
  pool.ParallelFor(chunks, 1, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> buf;
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t n0 = c * rows, n = std::min(rows, N - n0);
      if (w_bf16 && T == 1 && HaveAvx2Fma()) {  // decode: one pass over the bf16 bytes
        GemvBf16Avx2(x, K, static_cast<const uint16_t*>(w), n0, n, y);
        continue;
      }
      const float* wc;
      if (w_bf16) {
        buf.resize(static_cast<size_t>(n * K));
        WidenBf16(static_cast<const uint16_t*>(w) + n0 * K, n * K,
                  reinterpret_cast<uint32_t*>(buf.data()));
        wc = buf.data();
      } else {
        wc = static_cast<const float*>(w) + n0 * K;
      }
      if (T == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(K), 1.0f, wc,
                    static_cast<int>(K), x, 1, 0.0f, y + n0, 1);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T),
                    static_cast<int>(n), static_cast<int>(K), 1.0f, x, static_cast<int>(K), wc,
                    static_cast<int>(K), 0.0f, y + n0, static_cast<int>(N));
      }
    }
  });
}

}  // namespace c8
