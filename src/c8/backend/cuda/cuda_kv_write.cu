// Quantize-into-cache: writes the k and v heads of each new token into its paged slot,
// converting bf16 -> cache dtype (fp32, bf16 or C8 int8:
// q = clamp(round_half_even(x / scale + offset), -128, 127), exactly as c8_quant.h).
#include <cuda_bf16.h>

#include "c8/backend/cuda/cuda_bf16.cuh"
#include "c8/backend/cuda/cuda_kernels.h"

namespace c8::cuda {

namespace {

__device__ __forceinline__ int8_t QuantizeC8(float x, float scale, float offset) {
  float r = rintf(__fdiv_rn(x, scale) + offset);  // rintf: round half to even
  if (!(r == r)) r = 0.0f;
  r = fminf(fmaxf(r, -128.0f), 127.0f);
  return static_cast<int8_t>(static_cast<int>(r));
}

// grid (T, Hkv); block threads over the 2*D elements (k then v) of one kv head.
__global__ void WriteKvKernel(const uint16_t* qkv, const int32_t* slot_mapping, int Hq, int Hkv,
                              int D, int block_size, int dtype, void* kc, void* vc,
                              const float* k_scale, const float* k_offset, const float* v_scale,
                              const float* v_offset) {
  const int64_t t = blockIdx.x;
  const int g = blockIdx.y;
  const int slot = slot_mapping[t];
  if (slot < 0) return;
  const int64_t block = slot / block_size, off = slot % block_size;
  const int64_t row = ((block * Hkv + g) * block_size + off) * D;
  const uint16_t* src = qkv + t * int64_t(Hq + 2 * Hkv) * D;
  for (int i = threadIdx.x; i < 2 * D; i += blockDim.x) {
    const bool is_v = i >= D;
    const int d = is_v ? i - D : i;
    const uint16_t bits = src[int64_t(Hq + (is_v ? Hkv : 0) + g) * D + d];
    void* base = is_v ? vc : kc;
    switch (dtype) {
      case 0:
        static_cast<float*>(base)[row + d] = Bf(bits);
        break;
      case 1:
        static_cast<uint16_t*>(base)[row + d] = bits;
        break;
      default: {
        const int c = g * D + d;
        const float s = is_v ? v_scale[c] : k_scale[c];
        const float o = is_v ? v_offset[c] : k_offset[c];
        static_cast<int8_t*>(base)[row + d] = QuantizeC8(Bf(bits), s, o);
      }
    }
  }
}

}  // namespace

void LaunchWriteKvCache(const uint16_t* qkv, const AttentionMeta& meta, const AttentionShape& shape,
                        const KvLayerView& cache, cudaStream_t stream) {
  if (meta.num_tokens <= 0 || shape.num_kv_heads <= 0) return;
  const int dtype = cache.dtype == KvDType::kF32 ? 0 : cache.dtype == KvDType::kBF16 ? 1 : 2;
  dim3 grid(static_cast<unsigned>(meta.num_tokens), static_cast<unsigned>(shape.num_kv_heads));
  const int threads = shape.head_dim * 2 >= 256 ? 256 : 128;
  WriteKvKernel<<<grid, threads, 0, stream>>>(
      qkv, meta.slot_mapping, shape.num_heads, shape.num_kv_heads, shape.head_dim, meta.block_size,
      dtype, cache.k, cache.v, cache.k_scale, cache.k_offset, cache.v_scale, cache.v_offset);
}

}  // namespace c8::cuda
