// The CUDA backend (sm_90a: H100/H200): bf16 activations and weights, fp32 accumulation,
// GEMM through cuBLASLt, paged attention over bf16 / fp32 / C8 int8 caches. Every op is
// asynchronous on one stream the backend owns; CopyToHost and ToHostF32 wait for it.
//
// Thread ownership: one backend is driven by one host thread (the engine/runner thread).
// Errors of asynchronous ops are sticky: the first failing CUDA call is recorded and
// returned by status() (the op interface itself has no error channel).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "c8/backend/backend.h"
#include "c8/util/status.h"

namespace c8 {

// Returns an error value (never crashes) when no usable CUDA device is present.
Result<std::unique_ptr<Backend>> CreateCudaBackend();

struct CudaBackendState;  // streams, cuBLASLt handle, workspaces (cuda_backend.cpp)

class CudaBackend final : public Backend {
 public:
  // Use CreateCudaBackend(); `state` is fully initialised.
  explicit CudaBackend(std::unique_ptr<CudaBackendState> state);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string Name() const override { return "cuda"; }
  DType ActivationDType() const override { return DType::kBF16; }

  void* Malloc(size_t bytes) override;
  void Free(void* ptr) override;
  void CopyToDevice(void* dst, const void* src, size_t bytes) override;
  void CopyToHost(void* dst, const void* src, size_t bytes) override;
  void Memset(void* dst, int value, size_t bytes) override;
  void Synchronize() override;

  Result<Tensor> UploadWeight(const void* src, DType src_dtype,
                              std::initializer_list<int64_t> shape) override;
  Tensor UploadF32(const float* src, std::initializer_list<int64_t> shape) override;

  void Embedding(const Tensor& table, const int32_t* ids, Tensor& out) override;
  void RmsNorm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override;
  void AddRmsNorm(Tensor& residual, const Tensor& x, const Tensor& w, float eps,
                  Tensor& out) override;
  void Linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y) override;
  void SiluMul(const Tensor& gate_up, Tensor& out) override;
  void QkNormRope(Tensor& qkv, const int32_t* positions, const Tensor* q_norm, const Tensor* k_norm,
                  float eps, const Tensor& rope_cos_sin, const AttentionShape& shape) override;
  void WriteKvCache(const Tensor& qkv, const AttentionMeta& meta, const AttentionShape& shape,
                    KvLayerView& cache) override;
  void Attention(const Tensor& qkv, const AttentionMeta& meta, const KvLayerView& cache,
                 const AttentionShape& shape, Tensor& out) override;
  void GatherRows(const Tensor& x, const int32_t* rows, Tensor& out) override;
  void ToHostF32(const Tensor& x, float* host) override;
  // Sampling kernel of cuda_sampling.cu (one block per row); only ids and logprobs come back.
  Status SampleRows(const Tensor& logits, const SamplingRows& rows,
                    std::vector<SampledToken>* out) override;

  // CUDA graphs (cuda_graphs.cpp): stream capture in thread-local mode, one instantiated
  // cudaGraphExec_t per id.
  bool SupportsGraphs() const override { return true; }
  Status BeginGraphCapture() override;
  Result<int64_t> EndGraphCapture() override;
  Status LaunchGraph(int64_t id) override;
  void DestroyGraph(int64_t id) override;
  uint64_t GraphEpoch() const override;

  // Free and total device memory (cudaMemGetInfo; cuda_memory_info.cpp).
  std::optional<DeviceMemory> MemoryInfo() override;

  // First error recorded by any op (sticky), or Ok.
  Status status() const;
  // The stream every op is queued on (a cudaStream_t).
  void* stream() const;

 private:
  // PrefillNoCache batches whose longest sequence has at least this many tokens go to cuDNN's
  // fused attention when it is available (shorter ones: the backend's kernel, no graph builds).
  static constexpr int32_t kCudnnMinQueryLen = 512;
  bool UseCudnn();

  std::unique_ptr<CudaBackendState> s_;
};

}  // namespace c8
