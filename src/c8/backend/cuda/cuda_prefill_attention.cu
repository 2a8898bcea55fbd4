// Tensor-core prefill attention (placeholder: not yet implemented; the split-KV kernel in
// cuda_paged_attention.cu serves every token until it is).
#include "c8/backend/cuda/cuda_kernels.h"

namespace c8::cuda {

bool LaunchPrefillAttention(const uint16_t* qkv, const AttentionMeta& meta,
                            const KvLayerView& cache, const AttentionShape& shape, uint16_t* out,
                            cudaStream_t stream) {
  return false;
}

}  // namespace c8::cuda
