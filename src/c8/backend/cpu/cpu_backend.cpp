#include "c8/backend/cpu/cpu_backend.h"

#include <cblas.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "c8/backend/cpu/cpu_attention.h"
#include "c8/backend/cpu/cpu_int8_linear.h"
#include "c8/backend/cpu/cpu_linear.h"
#include "c8/util/bf16.h"

extern "C" void openblas_set_num_threads(int num_threads);

namespace c8 {

CpuBackend::CpuBackend(int num_threads) : pool_(num_threads) {
  // GEMMs are split over rows of the weight by our own pool (cpu_linear.cpp); each OpenBLAS
  // call is single-threaded.
  openblas_set_num_threads(1);
}

void* CpuBackend::Malloc(size_t bytes) {
  size_t rounded = ((bytes + 63) / 64) * 64;
  return std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
}
void CpuBackend::Free(void* ptr) {
  std::free(ptr);
}
void CpuBackend::CopyToDevice(void* dst, const void* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
}
void CpuBackend::CopyToHost(void* dst, const void* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
}
void CpuBackend::Memset(void* dst, int value, size_t bytes) {
  std::memset(dst, value, bytes);
}

Result<Tensor> CpuBackend::UploadWeight(const void* src, DType src_dtype,
                                        std::initializer_list<int64_t> shape) {
  // bf16 matrices stay bf16 (exact, half the bytes; Linear and Embedding widen them);
  // vectors (norms, biases) and every other dtype become fp32.
  if (src_dtype == DType::kBF16 && shape.size() == 2) {
    Tensor t(nullptr, DType::kBF16, shape);
    t.data = Malloc(t.nbytes());
    std::memcpy(t.data, src, t.nbytes());
    return t;
  }
  Tensor t(nullptr, DType::kF32, shape);
  const int64_t n = t.numel();
  float* dst = static_cast<float*>(Malloc(static_cast<size_t>(n) * 4));
  const auto* b = static_cast<const uint8_t*>(src);
  switch (src_dtype) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      break;
    case DType::kBF16:
      pool_.ParallelFor(n, 1 << 16, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          uint16_t h;
          std::memcpy(&h, b + 2 * i, 2);
          dst[i] = Bf16ToF32(h);
        }
      });
      break;
    case DType::kF16:
      pool_.ParallelFor(n, 1 << 16, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          uint16_t h;
          std::memcpy(&h, b + 2 * i, 2);
          dst[i] = F16ToF32(h);
        }
      });
      break;
    default:
      Free(dst);
      return Error("weight dtype " + std::string(DTypeName(src_dtype)) +
                   " is not supported by the CPU backend (F32, F16, BF16)");
  }
  t.data = dst;
  return t;
}

Tensor CpuBackend::UploadF32(const float* src, std::initializer_list<int64_t> shape) {
  Tensor t(nullptr, DType::kF32, shape);
  t.data = Malloc(t.nbytes());
  std::memcpy(t.data, src, t.nbytes());
  return t;
}

void CpuBackend::Embedding(const Tensor& table, const int32_t* ids, int64_t vocab_begin,
                           Tensor& out) {
  const int64_t V = table.dim(0), H = table.dim(1);
  for (int64_t t = 0; t < out.dim(0); ++t) {
    const int64_t row = static_cast<int64_t>(ids[t]) - vocab_begin;
    float* o = out.as<float>() + t * H;
    if (row < 0 || row >= V) {  // another rank's row: it arrives through the all-reduce
      std::memset(o, 0, H * 4);
    } else if (table.dtype == DType::kBF16) {
      const uint16_t* r = table.as<uint16_t>() + row * H;
      for (int64_t i = 0; i < H; ++i) o[i] = Bf16ToF32(r[i]);
    } else {
      std::memcpy(o, table.as<float>() + row * H, H * 4);
    }
  }
}

namespace {
void RmsNormRow(const float* x, const float* w, float eps, int64_t H, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < H; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / H) + eps);
  for (int64_t i = 0; i < H; ++i) out[i] = x[i] * inv * w[i];
}
}  // namespace

void CpuBackend::RmsNorm(const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  const int64_t H = x.dim(1);
  pool_.ParallelFor(x.dim(0), 8, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      RmsNormRow(x.as<float>() + t * H, w.as<float>(), eps, H, out.as<float>() + t * H);
    }
  });
}

void CpuBackend::AddRmsNorm(Tensor& residual, const Tensor& x, const Tensor& w, float eps,
                            Tensor& out) {
  const int64_t H = x.dim(1);
  pool_.ParallelFor(x.dim(0), 8, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      float* r = residual.as<float>() + t * H;
      const float* xi = x.as<float>() + t * H;
      for (int64_t i = 0; i < H; ++i) r[i] += xi[i];
      RmsNormRow(r, w.as<float>(), eps, H, out.as<float>() + t * H);
    }
  });
}

void CpuBackend::Linear(const Tensor& x, const LinearWeight& lw, const Tensor* bias, Tensor& y) {
  const Tensor& w = lw.w;
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  if (T == 0) return;
  if (lw.quantized()) {
    CpuInt8Linear(x.as<float>(), T, K, lw, bias ? bias->as<float>() : nullptr, y.as<float>(),
                  pool_);
    return;
  }
  CpuLinear(x.as<float>(), T, K, w.data, w.dtype == DType::kBF16, N, y.as<float>(), pool_);
  if (bias) {
    for (int64_t t = 0; t < T; ++t) {
      float* yr = y.as<float>() + t * N;
      for (int64_t n = 0; n < N; ++n) yr[n] += bias->as<float>()[n];
    }
  }
}

void CpuBackend::AddBias(Tensor& y, const Tensor& bias) {
  const int64_t T = y.dim(0), N = y.dim(1);
  for (int64_t t = 0; t < T; ++t) {
    float* yr = y.as<float>() + t * N;
    for (int64_t n = 0; n < N; ++n) yr[n] += bias.as<float>()[n];
  }
}

void CpuBackend::SiluMul(const Tensor& gate_up, Tensor& out) {
  const int64_t I = out.dim(1);
  pool_.ParallelFor(out.dim(0), 4, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const float* g = gate_up.as<float>() + t * 2 * I;
      const float* u = g + I;
      float* o = out.as<float>() + t * I;
      for (int64_t i = 0; i < I; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    }
  });
}

void CpuBackend::QkNormRope(Tensor& qkv, const int32_t* positions, const Tensor* q_norm,
                            const Tensor* k_norm, float eps, const Tensor& rope_cos_sin,
                            const AttentionShape& shape) {
  const int32_t D = shape.head_dim, Hq = shape.num_heads, Hkv = shape.num_kv_heads;
  const int64_t stride = static_cast<int64_t>(Hq + 2 * Hkv) * D;
  const int32_t half = D / 2;
  pool_.ParallelFor(qkv.dim(0), 4, [&](int64_t lo, int64_t hi) {
    std::vector<float> tmp(D);
    for (int64_t t = lo; t < hi; ++t) {
      const float* cs = rope_cos_sin.as<float>() + static_cast<int64_t>(positions[t]) * D;
      for (int32_t h = 0; h < Hq + Hkv; ++h) {
        float* x = qkv.as<float>() + t * stride + static_cast<int64_t>(h) * D;
        const Tensor* norm = h < Hq ? q_norm : k_norm;
        if (norm) {
          RmsNormRow(x, norm->as<float>(), eps, D, tmp.data());
          std::copy(tmp.begin(), tmp.end(), x);
        }
        for (int32_t i = 0; i < half; ++i) {
          const float c = cs[i], s = cs[half + i];
          const float x1 = x[i], x2 = x[i + half];
          x[i] = x1 * c - x2 * s;
          x[i + half] = x2 * c + x1 * s;
        }
      }
    }
  });
}

void CpuBackend::WriteKvCache(const Tensor& qkv, const AttentionMeta& meta,
                              const AttentionShape& shape, KvLayerView& cache) {
  CpuWriteKvCache(qkv.as<float>(), meta, shape, cache, &pool_);
}

void CpuBackend::Attention(const Tensor& qkv, const AttentionMeta& meta, const KvLayerView& cache,
                           const AttentionShape& shape, Tensor& out) {
  CpuPagedAttention(qkv.as<float>(), meta, cache, shape, out.as<float>(), &pool_);
}

void CpuBackend::GatherRows(const Tensor& x, const int32_t* rows, Tensor& out) {
  const int64_t H = x.dim(1);
  for (int64_t i = 0; i < out.dim(0); ++i) {
    std::memcpy(out.as<float>() + i * H, x.as<float>() + static_cast<int64_t>(rows[i]) * H, H * 4);
  }
}

void CpuBackend::ToHostF32(const Tensor& x, float* host) {
  std::memcpy(host, x.data, static_cast<size_t>(x.numel()) * 4);
}

}  // namespace c8
