// The state behind CudaBackend (private to src/c8/backend/cuda): device context, stream,
// cuBLASLt, workspaces, pinned staging, captured graphs and the sticky first error. Nothing here
// is shared between backends: two backends on two GPUs are driven from two threads at once.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "c8/backend/cuda/cuda_cudnn_prefill.h"
#include "c8/backend/cuda/cuda_device_context.h"
#include "c8/backend/cuda/cuda_linear.h"
#include "c8/util/status.h"

namespace c8 {

// Makes `device` the calling thread's current device for its scope (restoring the previous
// one): for the backend's allocations, copies and queries, which then work from any thread.
// Kernel launches are not guarded: they need the driving thread bound (BindThread).
class ScopedDevice {
 public:
  explicit ScopedDevice(int device) {
    int cur = -1;
    if (cudaGetDevice(&cur) == cudaSuccess && cur != device &&
        cudaSetDevice(device) == cudaSuccess) {
      prev_ = cur;
    }
  }
  ~ScopedDevice() {
    if (prev_ >= 0) cudaSetDevice(prev_);
  }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

 private:
  int prev_ = -1;
};

struct CudaBackendState {
  int device = 0;
  cuda::DeviceContext ctx;  // SM count, occupancy, attributes set, decode-swap switch
  cudaStream_t stream = nullptr;
  // Pinned staging for CopyToDevice (so small per-step uploads do not wait for the stream):
  // two slots used in turn, each reusable once the event of its last copy has completed.
  struct Staging {
    void* host = nullptr;
    size_t bytes = 0;
    cudaEvent_t done = nullptr;
    bool pending = false;
  };
  Staging staging[2];
  int next_staging = 0;
  // Graph capture (cuda_graphs.cpp).
  bool capturing = false;
  Status error_before_capture;
  uint64_t graph_epoch = 1;
  int64_t next_graph_id = 1;
  std::map<int64_t, cudaGraphExec_t> graphs;
  cuda::CublasLtGemm gemm;
  // cuDNN fused attention for PrefillNoCache batches (created on first use; absent or
  // unavailable without cuDNN). Off with C8_CUDNN_PREFILL=0.
  std::unique_ptr<cuda::CudnnPrefill> cudnn;
  int cudnn_state = -1;  // -1 unknown, 0 off, 1 on
  // Attention split-KV partials (prefill split, then decode split, stream-ordered), grown on
  // demand to PagedAttentionWorkspaceBytes.
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  // W8A8 linears: int8 activations | per-token scales | int32 accumulators, grown on demand
  // (outside graph capture; growth bumps graph_epoch).
  void* qlinear_buf = nullptr;
  size_t qlinear_bytes = 0;
  // The decode-shaped W8A8 GEMM (cuda_int8_small_m.cu) takes up to this many tokens (0: off):
  // on the H200 it beats cuBLASLt's IMMA at 1 token on every Qwen3-32B shape (1.1-1.5x) and
  // loses from 64 tokens on (docs/benchmarks.md). Its split-K workspace is zero between calls.
  int64_t int8_small_m_max_tokens = 8;
  void* small_m_ws = nullptr;
  size_t small_m_ws_bytes = 0;
  void* sample_buf = nullptr;  // SampleRows: args | penalty | masked | results | work
  size_t sample_buf_bytes = 0;
  Status error;  // first error, sticky

  // Records the first failure; returns true when `err` is a success.
  bool Check(cudaError_t err, const char* what) {
    if (err == cudaSuccess) return true;
    if (error.ok()) {
      error = Error(std::string("cuda backend: ") + what + ": " + cudaGetErrorString(err));
    }
    return false;
  }
  void Fail(const std::string& msg) {
    if (error.ok()) error = Error("cuda backend: " + msg);
  }
  // Stream-ordered scratch that grows on demand to at least `need` bytes (allocating `want`):
  // never during graph capture (an error: the capture fails and the step runs eagerly); a
  // growth bumps graph_epoch since captured graphs point at the old buffer. False on failure.
  bool Grow(void** buf, size_t* bytes, size_t need, size_t want, const char* what) {
    if (need <= *bytes) return true;
    if (capturing) {
      Fail(std::string(what) + " would grow during graph capture");
      return false;
    }
    ++graph_epoch;
    if (*buf) {
      Check(cudaStreamSynchronize(stream), "synchronize before a scratch buffer grows");
      cudaFree(*buf);
    }
    *buf = nullptr;
    *bytes = 0;
    if (!Check(cudaMalloc(buf, want), what)) return false;
    *bytes = want;
    return true;
  }
  // Catches launch-configuration errors of the kernel just queued.
  void CheckLaunch(const char* what) { Check(cudaGetLastError(), what); }
};

}  // namespace c8
