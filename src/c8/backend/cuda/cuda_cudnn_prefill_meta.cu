// Device-side metadata of the cuDNN prefill path (cuda_cudnn_prefill.h): per-sequence lengths
// and ragged (THD) element offsets derived from query_start, so Run() never syncs the host.
#include <cuda_runtime.h>

#include <cstdint>

#include "c8/backend/cuda/cuda_cudnn_prefill.h"

namespace c8::cuda {

namespace {

// One thread per batch entry i in [0, batch]; entries past num_seqs are empty sequences that
// start (and end) at num_tokens.
__global__ void CudnnPrefillMetaKernel(const int32_t* __restrict__ query_start, int32_t num_seqs,
                                       int32_t batch, int64_t qkv_row_stride, int64_t o_row_stride,
                                       int32_t* __restrict__ seq_len,
                                       int32_t* __restrict__ ragged_qkv,
                                       int32_t* __restrict__ ragged_o) {
  const int32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i > batch) return;
  const int32_t s = i < num_seqs ? i : num_seqs;
  const int64_t start = query_start[s];
  ragged_qkv[i] = static_cast<int32_t>(start * qkv_row_stride);
  ragged_o[i] = static_cast<int32_t>(start * o_row_stride);
  if (i < batch) seq_len[i] = i < num_seqs ? query_start[i + 1] - query_start[i] : 0;
}

}  // namespace

cudaError_t LaunchCudnnPrefillMeta(const int32_t* query_start, int32_t num_seqs, int32_t batch,
                                   int64_t qkv_row_stride, int64_t o_row_stride, int32_t* seq_len,
                                   int32_t* ragged_qkv, int32_t* ragged_o, cudaStream_t stream) {
  constexpr int kThreads = 128;
  const int blocks = (batch + 1 + kThreads - 1) / kThreads;
  CudnnPrefillMetaKernel<<<blocks, kThreads, 0, stream>>>(
      query_start, num_seqs, batch, qkv_row_stride, o_row_stride, seq_len, ragged_qkv, ragged_o);
  return cudaGetLastError();
}

}  // namespace c8::cuda
