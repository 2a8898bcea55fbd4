// The CUDA backend (sm_90a: H100/H200): bf16 activations and weights, fp32 accumulation,
// GEMM through cuBLASLt, paged attention over bf16 / fp32 / C8 int8 caches. Every op is
// asynchronous on one stream the backend owns; CopyToHost and ToHostF32 wait for it.
//
// Thread ownership: one backend is driven by one host thread at a time, on which the backend's
// GPU must be the current device for the ops (kernel launches): CreateCudaBackend selects it on
// the creating thread, and any other thread calls BindThread() before its first op. Memory,
// copies, weight uploads, MemoryInfo and destruction switch to the backend's device themselves
// (and back), so they work from any thread. Backends share no state, so several backends (one
// per GPU, tensor parallelism) run from several threads at once.
// Errors of asynchronous ops are sticky: the first failing CUDA call is recorded and
// returned by status() (the op interface itself has no error channel).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "c8/backend/backend.h"
#include "c8/util/status.h"

namespace c8 {

// A backend on GPU `device` (made the calling thread's current device). Returns an error value
// (never crashes) when that device does not exist or is not usable (not Hopper, driver too old).
Result<std::unique_ptr<Backend>> CreateCudaBackend(int device = 0);

struct CudaBackendState;  // streams, cuBLASLt handle, workspaces (cuda_backend.cpp)

class CudaBackend final : public Backend {
 public:
  // Use CreateCudaBackend(); `state` is fully initialised.
  explicit CudaBackend(std::unique_ptr<CudaBackendState> state);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string Name() const override { return "cuda"; }
  // cudaSetDevice(device()) on the calling thread.
  void BindThread() override;
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

  void Embedding(const Tensor& table, const int32_t* ids, int64_t vocab_begin,
                 Tensor& out) override;
  void RmsNorm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override;
  void AddRmsNorm(Tensor& residual, const Tensor& x, const Tensor& w, float eps,
                  Tensor& out) override;
  void Linear(const Tensor& x, const LinearWeight& w, const Tensor* bias, Tensor& y) override;
  void AddBias(Tensor& y, const Tensor& bias) override;
  void SiluMul(const Tensor& gate_up, Tensor& out) override;
  void QkNormRope(Tensor& qkv, const int32_t* positions, const Tensor* q_norm, const Tensor* k_norm,
                  float eps, const Tensor& rope_cos_sin, const AttentionShape& shape) override;
  void WriteKvCache(const Tensor& qkv, const AttentionMeta& meta, const AttentionShape& shape,
                    KvLayerView& cache) override;
  void Attention(const Tensor& qkv, const AttentionMeta& meta, const KvLayerView& cache,
                 const AttentionShape& shape, Tensor& out) override;
  // Fills meta.plan (AttentionPlan's CUDA fields): the decode split for bf16, int8 and fp32
  // caches, the prefill split and the cuDNN choice, from meta's host fields and shape.
  void PlanAttention(const AttentionShape& shape, AttentionMeta& meta) override;
  // MLA and MoE (DeepSeek) are not on the GPU yet: each records an error naming the op.
  void Rope(Tensor& x, int64_t heads, int64_t head_stride, int64_t offset, const int32_t* positions,
            const Tensor& rope_cos_sin, bool interleaved) override;
  void HeadMatmul(const Tensor& x, int64_t x_stride, int64_t x_offset, const Tensor& w, Tensor& y,
                  int64_t y_stride, int64_t y_offset) override;
  void WriteMlaCache(const Tensor& latent, const Tensor& k_pe, const AttentionMeta& meta,
                     KvLayerView& cache) override;
  void MlaAttention(const Tensor& q_lat, const Tensor& q, int64_t rope_stride, int64_t rope_offset,
                    const AttentionMeta& meta, const KvLayerView& cache,
                    const AttentionShape& shape, Tensor& out) override;
  void MoeRoute(const Tensor& x, const MoeRouter& router, Tensor& topk_ids,
                Tensor& topk_w) override;
  void MoeExperts(const Tensor& x, const Tensor& topk_ids, const Tensor& topk_w,
                  const MoeExpertWeights& experts, Tensor& out) override;
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
  Status status() const override;
  // The stream every op is queued on (a cudaStream_t).
  void* stream() const;
  // The CUDA device index this backend runs on.
  int device() const;
  // C8 decode with groups <= 8 uses the swapped tile step (default on); false forces the 16-row
  // head tile of the other dtypes (tests and benchmarks compare the two). Per backend.
  void SetDecodeSwap(bool on);
  // W8A8 linears with at most `tokens` rows use the decode-shaped kernel (cuda_int8_small_m.cu),
  // larger ones cuBLASLt's IMMA GEMM; 0 sends every shape to cuBLASLt (benchmarks compare).
  void SetInt8SmallMMaxTokens(int64_t tokens);

  // For components that queue their own work on this backend's stream (NcclCommunicator):
  // whether a graph capture is in progress; records `msg` as the backend's sticky error (inside
  // a capture it makes EndGraphCapture fail, and the status before the capture comes back);
  // bumps GraphEpoch() after reallocating a buffer that captured graphs may use.
  bool capturing() const;
  void RecordError(const std::string& msg);
  void BumpGraphEpoch();

 private:
  // W8A8 path of Linear (cuda_quant_linear.cu kernels + cuBLASLt IMMA).
  void QuantLinear(const Tensor& x, const LinearWeight& w, const Tensor* bias, Tensor& y);
  // PrefillNoCache batches whose longest sequence has at least this many tokens go to cuDNN's
  // fused attention when it is available (shorter ones: the backend's kernel, no graph builds).
  static constexpr int32_t kCudnnMinQueryLen = 512;
  bool UseCudnn();
  // PlanAttention into `plan`; `only`: for that cache dtype alone (a per-call plan).
  void Plan(const AttentionShape& shape, const AttentionMeta& meta, const KvDType* only,
            AttentionPlan& plan);

  std::unique_ptr<CudaBackendState> s_;
};

}  // namespace c8
