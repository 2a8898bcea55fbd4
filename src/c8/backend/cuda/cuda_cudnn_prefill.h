// Causal prefill attention of packed variable-length sequences with no cached keys
// ("PrefillNoCache") through cuDNN's fused flash SDPA (cudnn_frontend graph API), used where it
// beats the backend's own mma.sync prefill kernel (long prompts).
//
// Layout (THD, packed, no padding between sequences):
//   qkv (T, (Hq + 2 Hkv) D) bf16 row-major = [q heads | k heads | v heads] per token
//   out (T, Hq D) bf16 row-major
//   query_start (num_seqs + 1) int32 device prefix sums of tokens per sequence
// Sequence s owns tokens [query_start[s], query_start[s + 1]); its query at position p attends
// to its own keys 0..p (top-left causal; query and key lengths are equal).
//
// Built only when cmake/cudnn.cmake found cuDNN and the cudnn_frontend headers
// (C8_WITH_CUDNN=1); otherwise Available() is false and Run() always answers Ok(false).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "c8/util/status.h"

namespace c8::cuda {

// Not thread-safe: one instance per backend, driven by one host thread on one device. Runs reuse
// one set of device metadata buffers, so runs on different streams must be ordered by the caller.
class CudnnPrefill {
 public:
  CudnnPrefill();
  ~CudnnPrefill();
  CudnnPrefill(const CudnnPrefill&) = delete;
  CudnnPrefill& operator=(const CudnnPrefill&) = delete;

  // Compiled with cuDNN, the cuDNN library loaded at run time is 9.x or newer and the current
  // device is Hopper (sm_90) or newer. Checked once per process.
  static bool Available();
  // cudnnGetVersion() of the library loaded at run time (e.g. 91400), 0 without cuDNN.
  static int CudnnVersion();

  // Queues the attention on `stream`. Returns Ok(true) when queued, Ok(false) when cuDNN cannot
  // take this problem (nothing queued, `out` untouched; the caller uses its own kernel), or an
  // error (invalid arguments, CUDA or cuDNN failure).
  //   qkv (num_tokens, (num_heads + 2 num_kv_heads) head_dim) bf16, 16-byte aligned
  //   query_start (num_seqs + 1) int32 device, query_start[0] = 0, query_start[num_seqs] =
  //     num_tokens; max_query_len >= the longest sequence (host value, picks the graph)
  //   out (num_tokens, num_heads head_dim) bf16, 16-byte aligned
  // Ok(false) for: head_dim not a multiple of 8 or above 256, misaligned qkv / out,
  // num_tokens * (Hq + 2 Hkv) D >= 2^31, a graph cuDNN refuses (remembered per bucket), or a
  // call that must build a graph or grow a buffer while `stream` is being captured.
  // Graphs are built (and cached, 64 at most, LRU) per (batch bucket = next power of two of
  // num_seqs, length bucket = next power of two of max_query_len (>= 64), Hq, Hkv, D). A build
  // blocks the host for ~40-80 ms on H100 / cuDNN 9.14 (the first one ~1 s: handle creation and
  // library loading). CUDNN_FRONTEND_LOG_INFO=1 makes execute dump tensors with a stream
  // synchronize: slow, and it breaks stream capture.
  Result<bool> Run(const uint16_t* qkv, const int32_t* query_start, int32_t num_seqs,
                   int32_t num_tokens, int32_t max_query_len, int32_t num_heads,
                   int32_t num_kv_heads, int32_t head_dim, float scale, uint16_t* out,
                   cudaStream_t stream);

  // Number of cached built graphs (tests, diagnostics).
  int CachedGraphs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Metadata kernel of cuda_cudnn_prefill_meta.cu. From query_start (num_seqs + 1) on the device,
// fills for a batch padded to `batch` >= num_seqs sequences:
//   seq_len (batch) int32: query_start[i + 1] - query_start[i], 0 for i >= num_seqs
//   ragged_qkv (batch + 1) int32: query_start[min(i, num_seqs)] * qkv_row_stride (elements)
//   ragged_o (batch + 1) int32: query_start[min(i, num_seqs)] * o_row_stride (elements)
// The caller guarantees num_tokens * max(row strides) < 2^31. Returns the launch status.
cudaError_t LaunchCudnnPrefillMeta(const int32_t* query_start, int32_t num_seqs, int32_t batch,
                                   int64_t qkv_row_stride, int64_t o_row_stride, int32_t* seq_len,
                                   int32_t* ragged_qkv, int32_t* ragged_o, cudaStream_t stream);

}  // namespace c8::cuda
