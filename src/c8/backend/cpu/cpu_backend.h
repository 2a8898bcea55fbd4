// The CPU backend: fp32 activations and weights, GEMM through OpenBLAS, other ops
// multithreaded on a ThreadPool. Also the reference the CUDA kernels are tested against.
#pragma once

#include <memory>

#include "c8/backend/backend.h"
#include "c8/util/thread_pool.h"

namespace c8 {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int num_threads = 0);
  std::string Name() const override { return "cpu"; }
  DType ActivationDType() const override { return DType::kF32; }
  int num_threads() const { return pool_.size(); }

  void* Malloc(size_t bytes) override;
  void Free(void* ptr) override;
  void CopyToDevice(void* dst, const void* src, size_t bytes) override;
  void CopyToHost(void* dst, const void* src, size_t bytes) override;
  void Memset(void* dst, int value, size_t bytes) override;
  void Synchronize() override {}

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
  // cpu_sampling.cpp: the host Sampler, row by row (bit-exact with c8/sampling/sampler.h).
  Status SampleRows(const Tensor& logits, const SamplingRows& rows,
                    std::vector<SampledToken>* out) override;

  ThreadPool& pool() { return pool_; }

 private:
  ThreadPool pool_;
};

}  // namespace c8
