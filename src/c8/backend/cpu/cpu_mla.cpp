// MLA ops of the CPU backend (DeepSeek V2 / V3): partial RoPE, per-head products, the latent
// cache write and absorbed attention over the paged latent cache. The int8 (C8) latent is read
// directly, never dequantized into a copy: with per-channel scale s and offset o,
//   q . c   = (q * s) . c_int8 - (q * s) . o
//   sum p c = s * (sum p c_int8 - o * sum p).
#include <algorithm>
#include <cmath>
#include <vector>

#include "c8/backend/cpu/cpu_backend.h"
#include "c8/kv/c8_quant.h"
#include "c8/util/bf16.h"

namespace c8 {

namespace {

inline float WeightAt(const Tensor& w, int64_t i) {
  return w.dtype == DType::kBF16 ? Bf16ToF32(static_cast<const uint16_t*>(w.data)[i])
                                 : static_cast<const float*>(w.data)[i];
}

// Cache row of (sequence s, position pos) in a one-head layer.
inline int64_t MlaRow(const AttentionMeta& meta, int32_t s, int32_t pos) {
  const int32_t block =
      meta.block_tables[static_cast<int64_t>(s) * meta.max_blocks_per_seq + pos / meta.block_size];
  return static_cast<int64_t>(block) * meta.block_size + pos % meta.block_size;
}

}  // namespace

void CpuBackend::Rope(Tensor& x, int64_t heads, int64_t head_stride, int64_t offset,
                      const int32_t* positions, const Tensor& rope_cos_sin, bool interleaved) {
  const int64_t R = rope_cos_sin.dim(1), half = R / 2, width = x.dim(1);
  pool_.ParallelFor(x.dim(0), 8, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const float* cs = rope_cos_sin.as<float>() + static_cast<int64_t>(positions[t]) * R;
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x.as<float>() + t * width + h * head_stride + offset;
        for (int64_t i = 0; i < half; ++i) {
          const float c = cs[i], s = cs[half + i];
          float* a = interleaved ? v + 2 * i : v + i;
          float* b = interleaved ? v + 2 * i + 1 : v + i + half;
          const float x1 = *a, x2 = *b;
          *a = x1 * c - x2 * s;
          *b = x2 * c + x1 * s;
        }
      }
    }
  });
}

void CpuBackend::HeadMatmul(const Tensor& x, int64_t x_stride, int64_t x_offset, const Tensor& w,
                            Tensor& y, int64_t y_stride, int64_t y_offset) {
  const int64_t T = x.dim(0), H = w.dim(0), N = w.dim(1), K = w.dim(2);
  const int64_t xw = x.dim(1), yw = y.dim(1);
  pool_.ParallelFor(T * H, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t t = item / H, h = item % H;
      const float* xv = x.as<float>() + t * xw + h * x_stride + x_offset;
      float* yv = y.as<float>() + t * yw + h * y_stride + y_offset;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t base = (h * N + n) * K;
        float acc = 0.0f;
        for (int64_t k = 0; k < K; ++k) acc += WeightAt(w, base + k) * xv[k];
        yv[n] = acc;
      }
    }
  });
}

void CpuBackend::WriteMlaCache(const Tensor& latent, const Tensor& k_pe, const AttentionMeta& meta,
                               KvLayerView& cache) {
  const int64_t r = latent.dim(1), R = k_pe.dim(1);
  for (int64_t t = 0; t < meta.num_tokens; ++t) {
    const int32_t slot = meta.slot_mapping[t];
    if (slot < 0) continue;
    const float* c = latent.as<float>() + t * r;
    const float* p = k_pe.as<float>() + t * R;
    switch (cache.dtype) {
      case KvDType::kF32:
        std::copy(c, c + r, static_cast<float*>(cache.k) + slot * r);
        break;
      case KvDType::kBF16:
        for (int64_t d = 0; d < r; ++d)
          static_cast<uint16_t*>(cache.k)[slot * r + d] = F32ToBf16(c[d]);
        break;
      case KvDType::kInt8:
        for (int64_t d = 0; d < r; ++d) {
          static_cast<int8_t*>(cache.k)[slot * r + d] =
              QuantizeC8(c[d], cache.k_scale[d], cache.k_offset[d]);
        }
        break;
    }
    if (cache.v_dtype == KvDType::kF32) {
      std::copy(p, p + R, static_cast<float*>(cache.v) + slot * R);
    } else {
      for (int64_t d = 0; d < R; ++d)
        static_cast<uint16_t*>(cache.v)[slot * R + d] = F32ToBf16(p[d]);
    }
  }
}

void CpuBackend::MlaAttention(const Tensor& q_lat, const Tensor& q, int64_t rope_stride,
                              int64_t rope_offset, const AttentionMeta& meta,
                              const KvLayerView& cache, const AttentionShape& shape, Tensor& out) {
  const int64_t H = shape.num_heads, r = shape.head_dim, R = shape.rope_dim;
  std::vector<int32_t> tok_seq(meta.num_tokens, 0);
  for (int32_t s = 0; s < meta.num_seqs; ++s) {
    for (int32_t t = meta.query_start[s]; t < meta.query_start[s + 1]; ++t) tok_seq[t] = s;
  }
  const bool c8 = cache.dtype == KvDType::kInt8;
  pool_.ParallelFor(static_cast<int64_t>(meta.num_tokens) * H, 2, [&](int64_t lo, int64_t hi) {
    std::vector<float> scores, qs(r), acc(r);
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t t = item / H, h = item % H;
      const int32_t s = tok_seq[t];
      const int32_t pos = meta.num_cached[s] + static_cast<int32_t>(t - meta.query_start[s]);
      const int32_t ctx = pos + 1;
      const float* ql = q_lat.as<float>() + t * q_lat.dim(1) + h * r;
      const float* qr = q.as<float>() + t * q.dim(1) + h * rope_stride + rope_offset;
      float qoff = 0.0f;
      if (c8) {
        for (int64_t d = 0; d < r; ++d) {
          qs[d] = ql[d] * cache.k_scale[d];
          qoff += qs[d] * cache.k_offset[d];
        }
      }
      scores.resize(ctx);
      float mx = -INFINITY;
      for (int32_t j = 0; j < ctx; ++j) {
        const int64_t row = MlaRow(meta, s, j);
        float dot = 0.0f;
        switch (cache.dtype) {
          case KvDType::kF32: {
            const float* c = static_cast<const float*>(cache.k) + row * r;
            for (int64_t d = 0; d < r; ++d) dot += ql[d] * c[d];
            break;
          }
          case KvDType::kBF16: {
            const uint16_t* c = static_cast<const uint16_t*>(cache.k) + row * r;
            for (int64_t d = 0; d < r; ++d) dot += ql[d] * Bf16ToF32(c[d]);
            break;
          }
          case KvDType::kInt8: {
            const int8_t* c = static_cast<const int8_t*>(cache.k) + row * r;
            for (int64_t d = 0; d < r; ++d) dot += qs[d] * static_cast<float>(c[d]);
            dot -= qoff;
            break;
          }
        }
        if (cache.v_dtype == KvDType::kF32) {
          const float* p = static_cast<const float*>(cache.v) + row * R;
          for (int64_t d = 0; d < R; ++d) dot += qr[d] * p[d];
        } else {
          const uint16_t* p = static_cast<const uint16_t*>(cache.v) + row * R;
          for (int64_t d = 0; d < R; ++d) dot += qr[d] * Bf16ToF32(p[d]);
        }
        scores[j] = dot * shape.scale;
        mx = std::max(mx, scores[j]);
      }
      float sum = 0.0f;
      for (int32_t j = 0; j < ctx; ++j) {
        scores[j] = std::exp(scores[j] - mx);
        sum += scores[j];
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int32_t j = 0; j < ctx; ++j) {
        const float p = scores[j];
        const int64_t row = MlaRow(meta, s, j);
        switch (cache.dtype) {
          case KvDType::kF32: {
            const float* c = static_cast<const float*>(cache.k) + row * r;
            for (int64_t d = 0; d < r; ++d) acc[d] += p * c[d];
            break;
          }
          case KvDType::kBF16: {
            const uint16_t* c = static_cast<const uint16_t*>(cache.k) + row * r;
            for (int64_t d = 0; d < r; ++d) acc[d] += p * Bf16ToF32(c[d]);
            break;
          }
          case KvDType::kInt8: {
            const int8_t* c = static_cast<const int8_t*>(cache.k) + row * r;
            for (int64_t d = 0; d < r; ++d) acc[d] += p * static_cast<float>(c[d]);
            break;
          }
        }
      }
      float* o = out.as<float>() + t * out.dim(1) + h * r;
      const float inv = 1.0f / sum;
      for (int64_t d = 0; d < r; ++d) {
        const float v = c8 ? cache.k_scale[d] * (acc[d] - cache.k_offset[d] * sum) : acc[d];
        o[d] = v * inv;
      }
    }
  });
}

}  // namespace c8
