// bf16 bit conversions and the grid size of grid-stride loops, shared by the elementwise,
// RoPE, KV-write and W8A8 kernels (device code only; include from .cu files).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace c8::cuda {

// bf16 bits -> fp32 (exact).
__device__ __forceinline__ float Bf(uint16_t h) {
  return __uint_as_float(uint32_t(h) << 16);
}
// fp32 -> bf16 bits, round to nearest even.
__device__ __forceinline__ uint16_t ToBf(float f) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}
// Blocks for a grid-stride loop over n elements (at least 1, at most 65535 * 32).
inline int GridFor(int64_t n, int block) {
  int64_t g = (n + block - 1) / block;
  return static_cast<int>(g < 65535 * 32 ? (g < 1 ? 1 : g) : 65535 * 32);
}

}  // namespace c8::cuda
