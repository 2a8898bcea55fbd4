// Per-head RMSNorm of q and k (optional) followed by rotate-half RoPE, in place on qkv.
#include <cuda_bf16.h>

#include "c8/backend/cuda/cuda_bf16.cuh"
#include "c8/backend/cuda/cuda_kernels.h"

namespace c8::cuda {

namespace {

__device__ __forceinline__ float LoadW(const void* w, bool f32, int i) {
  return f32 ? static_cast<const float*>(w)[i] : Bf(static_cast<const uint16_t*>(w)[i]);
}

constexpr int kMaxPairsPerLane = 4;  // head_dim <= 256

// One warp per (token, head) over the Hq + Hkv q and k heads; lane owns pairs
// (i, i + D/2) for i = lane + 32 j.
__global__ void QkNormRopeKernel(uint16_t* qkv, const int32_t* positions, const void* q_norm,
                                 const void* k_norm, bool norm_f32, float eps, const float* cos_sin,
                                 int64_t T, int Hq, int Hkv, int D) {
  const int64_t item = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
  const int heads = Hq + Hkv;
  if (item >= T * heads) return;
  const int lane = threadIdx.x % 32;
  const int64_t t = item / heads;
  const int h = static_cast<int>(item % heads);
  const int half = D / 2;
  uint16_t* x = qkv + t * int64_t(Hq + 2 * Hkv) * D + int64_t(h) * D;
  float a[kMaxPairsPerLane], b[kMaxPairsPerLane];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxPairsPerLane; ++j) {
    const int i = lane + 32 * j;
    a[j] = b[j] = 0.0f;
    if (i < half) {
      a[j] = Bf(x[i]);
      b[j] = Bf(x[i + half]);
      ss += a[j] * a[j] + b[j] * b[j];
    }
  }
  const void* norm = h < Hq ? q_norm : k_norm;
  if (norm) {
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float inv = rsqrtf(ss / static_cast<float>(D) + eps);
#pragma unroll
    for (int j = 0; j < kMaxPairsPerLane; ++j) {
      const int i = lane + 32 * j;
      if (i < half) {
        a[j] = a[j] * inv * LoadW(norm, norm_f32, i);
        b[j] = b[j] * inv * LoadW(norm, norm_f32, i + half);
      }
    }
  }
  const float* cs = cos_sin + int64_t(positions[t]) * D;
#pragma unroll
  for (int j = 0; j < kMaxPairsPerLane; ++j) {
    const int i = lane + 32 * j;
    if (i < half) {
      const float c = cs[i], s = cs[half + i];
      x[i] = ToBf(a[j] * c - b[j] * s);
      x[i + half] = ToBf(b[j] * c + a[j] * s);
    }
  }
}

}  // namespace

void LaunchQkNormRope(uint16_t* qkv, const int32_t* positions, const void* q_norm,
                      const void* k_norm, bool norm_f32, float eps, const float* cos_sin, int64_t T,
                      int32_t Hq, int32_t Hkv, int32_t D, cudaStream_t stream) {
  const int64_t items = T * (Hq + Hkv);
  if (items <= 0) return;
  const int warps = 4;
  QkNormRopeKernel<<<static_cast<unsigned>((items + warps - 1) / warps), warps * 32, 0, stream>>>(
      qkv, positions, q_norm, k_norm, norm_f32, eps, cos_sin, T, Hq, Hkv, D);
}

}  // namespace c8::cuda
