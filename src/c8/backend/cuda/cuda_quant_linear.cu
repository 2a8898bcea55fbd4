// W8A8 linears on the GPU (backend/linear_weight.h): activation quantization (static
// per-tensor with offset, or dynamic per-token absmax), an int8 x int8 -> int32 GEMM
// (cuBLASLt IMMA; a plain kernel for shapes it does not take), and the dequantization
// epilogue. Quantization and epilogue use the CPU reference's fp32 operations in the same
// order without contraction (__fmul_rn / __fadd_rn), so both backends produce the same int8
// activations and the same outputs up to the final bf16 rounding.
#include <cuda_bf16.h>

#include "c8/backend/cuda/cuda_bf16.cuh"
#include "c8/backend/cuda/cuda_kernels.h"

namespace c8::cuda {

namespace {

__device__ __forceinline__ int8_t Quant(float x, float inv, float offset) {
  float q = rintf(__fadd_rn(__fmul_rn(x, inv), offset));  // round half to even
  q = fminf(fmaxf(q, -128.0f), 127.0f);
  return static_cast<int8_t>(q);
}

__global__ void QuantizeStaticKernel(const uint16_t* x, int64_t n, float inv, float offset,
                                     int8_t* q) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    q[i] = Quant(Bf(x[i]), inv, offset);
  }
}

// One block per token: absmax, then x * (127 / absmax).
__global__ void QuantizeDynamicKernel(const uint16_t* x, int64_t K, int8_t* q, float* s) {
  const int64_t t = blockIdx.x;
  const uint16_t* xr = x + t * K;
  float m = 0.0f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) m = fmaxf(m, fabsf(Bf(xr[k])));
  __shared__ float red[32];
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
  __syncthreads();
  if (threadIdx.x < 32) {
    m = threadIdx.x < (blockDim.x + 31) / 32 ? red[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (threadIdx.x == 0) red[0] = m;
  }
  __syncthreads();
  const float amax = red[0];
  const float inv = amax > 0.0f ? __fdiv_rn(127.0f, amax) : 1.0f;
  if (threadIdx.x == 0) s[t] = amax > 0.0f ? __fdiv_rn(amax, 127.0f) : 1.0f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) q[t * K + k] = Quant(Bf(xr[k]), inv, 0.0f);
}

// acc (T, N) = xq (T, K) . wq (N, K)^T, one thread per output (shapes cuBLASLt does not take).
__global__ void Int8GemmKernel(const int8_t* xq, const int8_t* wq, int64_t T, int64_t N, int64_t K,
                               int32_t* acc) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= T * N) return;
  const int64_t t = i / N, n = i % N;
  int32_t s = 0;
  for (int64_t k = 0; k < K; ++k) s += int32_t(xq[t * K + k]) * int32_t(wq[n * K + k]);
  acc[i] = s;
}

__global__ void DequantKernel(const int32_t* acc, int64_t T, int64_t N, const float* scale,
                              const float* tok, const float* shift, const void* bias, bool bias_f32,
                              void* y, bool y_f32) {
  const int64_t n_all = T * N;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_all;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / N, n = i % N;
    float v = __fmul_rn(static_cast<float>(acc[i]), scale[n]);
    if (tok) v = __fmul_rn(v, tok[t]);
    if (shift) v = __fadd_rn(v, shift[n]);
    if (bias) {
      const float b =
          bias_f32 ? static_cast<const float*>(bias)[n] : Bf(static_cast<const uint16_t*>(bias)[n]);
      v = __fadd_rn(v, b);
    }
    if (y_f32) {
      static_cast<float*>(y)[i] = v;
    } else {
      static_cast<uint16_t*>(y)[i] = ToBf(v);
    }
  }
}

}  // namespace

void LaunchQuantizeActivations(const uint16_t* x, int64_t T, int64_t K, bool dynamic,
                               float inv_scale, float offset, int8_t* q, float* tok_scale,
                               cudaStream_t stream) {
  if (T <= 0 || K <= 0) return;
  if (dynamic) {
    QuantizeDynamicKernel<<<static_cast<unsigned>(T), 256, 0, stream>>>(x, K, q, tok_scale);
  } else {
    QuantizeStaticKernel<<<GridFor(T * K, 256), 256, 0, stream>>>(x, T * K, inv_scale, offset, q);
  }
}

void LaunchInt8Gemm(const int8_t* xq, const int8_t* wq, int64_t T, int64_t N, int64_t K,
                    int32_t* acc, cudaStream_t stream) {
  if (T <= 0 || N <= 0) return;
  Int8GemmKernel<<<static_cast<unsigned>((T * N + 127) / 128), 128, 0, stream>>>(xq, wq, T, N, K,
                                                                                 acc);
}

void LaunchDequantize(const int32_t* acc, int64_t T, int64_t N, const float* scale,
                      const float* tok_scale, const float* shift, const void* bias, bool bias_f32,
                      void* y, bool y_f32, cudaStream_t stream) {
  if (T <= 0 || N <= 0) return;
  DequantKernel<<<GridFor(T * N, 256), 256, 0, stream>>>(acc, T, N, scale, tok_scale, shift, bias,
                                                         bias_f32, y, y_f32);
}

}  // namespace c8::cuda
