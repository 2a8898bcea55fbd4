// Elementwise and row-wise kernels: dtype conversion, embedding/gather, RMSNorm,
// residual-add + RMSNorm, SiLU-mul, bias add. bf16 in and out, fp32 math.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "c8/backend/cuda/cuda_bf16.cuh"
#include "c8/backend/cuda/cuda_kernels.h"

namespace c8::cuda {

namespace {

__device__ __forceinline__ float LoadW(const void* w, bool f32, int64_t i) {
  return f32 ? static_cast<const float*>(w)[i] : Bf(static_cast<const uint16_t*>(w)[i]);
}

__global__ void ConvertKernel(const void* src, int kind, int64_t n, uint16_t* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float f;
    switch (kind) {
      case 0:
        f = static_cast<const float*>(src)[i];
        break;
      case 1:
        f = __half2float(__ushort_as_half(static_cast<const uint16_t*>(src)[i]));
        break;
      case 2:
        dst[i] = static_cast<const uint16_t*>(src)[i];
        continue;
      default:
        f = static_cast<float>(static_cast<const double*>(src)[i]);
        break;
    }
    dst[i] = ToBf(f);
  }
}

__global__ void Bf16ToF32Kernel(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    dst[i] = Bf(src[i]);
  }
}

// One CTA per output row: row r of dst = row rows[r] - begin of src (num_rows rows) when that
// is in range, else zeros; row_bytes moved with 16-byte (else 1-byte) accesses.
__global__ void GatherKernel(const char* src, const int32_t* rows, int64_t begin, int64_t num_rows,
                             int64_t row_bytes, char* dst) {
  const int64_t r = blockIdx.x;
  const int64_t i = static_cast<int64_t>(rows[r]) - begin;
  const bool here = i >= 0 && i < num_rows;
  const char* s = src + (here ? i : 0) * row_bytes;
  char* d = dst + r * row_bytes;
  if (row_bytes % 16 == 0 && (reinterpret_cast<uintptr_t>(src) % 16) == 0 &&
      (reinterpret_cast<uintptr_t>(dst) % 16) == 0) {
    for (int64_t k = threadIdx.x; k < row_bytes / 16; k += blockDim.x) {
      reinterpret_cast<uint4*>(d)[k] = here ? reinterpret_cast<const uint4*>(s)[k] : uint4{};
    }
  } else {
    for (int64_t k = threadIdx.x; k < row_bytes; k += blockDim.x) d[k] = here ? s[k] : char(0);
  }
}

__device__ __forceinline__ float BlockSum(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float t = lane < nw ? red[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
  __syncthreads();
  return t;
}

// One CTA (256 threads) per row. add: residual += x first (stored rounded to bf16).
template <bool kAdd>
__global__ void RmsNormKernel(uint16_t* residual, const uint16_t* x, const void* w, bool w_f32,
                              float eps, int64_t H, uint16_t* out) {
  __shared__ float red[32];
  const int64_t row = blockIdx.x;
  const uint16_t* xr = x + row * H;
  uint16_t* rr = kAdd ? residual + row * H : nullptr;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
    float v;
    if constexpr (kAdd) {
      uint16_t r = ToBf(Bf(rr[i]) + Bf(xr[i]));
      rr[i] = r;
      v = Bf(r);
    } else {
      v = Bf(xr[i]);
    }
    ss += v * v;
  }
  const float total = BlockSum(ss, red);
  const float inv = rsqrtf(total / static_cast<float>(H) + eps);
  const uint16_t* src = kAdd ? rr : xr;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
    out[row * H + i] = ToBf(Bf(src[i]) * inv * LoadW(w, w_f32, i));
  }
}

__global__ void SiluMulKernel(const uint16_t* gate_up, int64_t T, int64_t I, uint16_t* out) {
  const int64_t n = T * I;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / I, c = i % I;
    const float g = Bf(gate_up[t * 2 * I + c]);
    const float u = Bf(gate_up[t * 2 * I + I + c]);
    out[i] = ToBf(g / (1.0f + __expf(-g)) * u);
  }
}

__global__ void AddBiasKernel(void* y, bool y_f32, const void* bias, bool bias_f32, int64_t T,
                              int64_t N) {
  const int64_t n = T * N;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float b = LoadW(bias, bias_f32, i % N);
    if (y_f32) {
      static_cast<float*>(y)[i] += b;
    } else {
      uint16_t* p = static_cast<uint16_t*>(y) + i;
      *p = ToBf(Bf(*p) + b);
    }
  }
}

}  // namespace

void LaunchConvertToBf16(const void* src, DType src_dtype, int64_t n, uint16_t* dst,
                         cudaStream_t stream) {
  if (n <= 0) return;
  const int kind = src_dtype == DType::kF32    ? 0
                   : src_dtype == DType::kF16  ? 1
                   : src_dtype == DType::kBF16 ? 2
                                               : 3;
  ConvertKernel<<<GridFor(n, 256), 256, 0, stream>>>(src, kind, n, dst);
}

void LaunchBf16ToF32(const uint16_t* src, int64_t n, float* dst, cudaStream_t stream) {
  if (n <= 0) return;
  Bf16ToF32Kernel<<<GridFor(n, 256), 256, 0, stream>>>(src, n, dst);
}

void LaunchEmbedding(const void* table, int64_t Vr, const int32_t* ids, int64_t vocab_begin,
                     int64_t T, int64_t row_bytes, void* out, cudaStream_t stream) {
  if (T <= 0) return;
  GatherKernel<<<static_cast<unsigned>(T), 128, 0, stream>>>(
      static_cast<const char*>(table), ids, vocab_begin, Vr, row_bytes, static_cast<char*>(out));
}

void LaunchGatherRows(const void* x, const int32_t* rows, int64_t R, int64_t row_bytes, void* out,
                      cudaStream_t stream) {
  if (R <= 0) return;
  GatherKernel<<<static_cast<unsigned>(R), 128, 0, stream>>>(
      static_cast<const char*>(x), rows, 0, INT64_MAX, row_bytes, static_cast<char*>(out));
}

void LaunchRmsNorm(const uint16_t* x, const void* w, bool w_f32, float eps, int64_t T, int64_t H,
                   uint16_t* out, cudaStream_t stream) {
  if (T <= 0) return;
  RmsNormKernel<false>
      <<<static_cast<unsigned>(T), 256, 0, stream>>>(nullptr, x, w, w_f32, eps, H, out);
}

void LaunchAddRmsNorm(uint16_t* residual, const uint16_t* x, const void* w, bool w_f32, float eps,
                      int64_t T, int64_t H, uint16_t* out, cudaStream_t stream) {
  if (T <= 0) return;
  RmsNormKernel<true>
      <<<static_cast<unsigned>(T), 256, 0, stream>>>(residual, x, w, w_f32, eps, H, out);
}

void LaunchSiluMul(const uint16_t* gate_up, int64_t T, int64_t I, uint16_t* out,
                   cudaStream_t stream) {
  if (T * I <= 0) return;
  SiluMulKernel<<<GridFor(T * I, 256), 256, 0, stream>>>(gate_up, T, I, out);
}

void LaunchAddBias(void* y, bool y_f32, const void* bias, bool bias_f32, int64_t T, int64_t N,
                   cudaStream_t stream) {
  if (T * N <= 0) return;
  AddBiasKernel<<<GridFor(T * N, 256), 256, 0, stream>>>(y, y_f32, bias, bias_f32, T, N);
}

}  // namespace c8::cuda
