// y = x w^T through cuBLASLt: bf16 inputs, fp32 accumulation, bf16 or fp32 output.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "c8/util/status.h"

namespace c8::cuda {

class CublasLtGemm {
 public:
  CublasLtGemm() = default;
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  Status Init();
  // y (T, N) row-major (bf16, or fp32 when y_f32) = x (T, K) bf16 . w (N, K)^T bf16.
  Status Run(const void* x, const void* w, void* y, bool y_f32, int64_t T, int64_t N, int64_t K,
             cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  Result<Plan*> GetPlan(int64_t T, int64_t N, int64_t K, bool y_f32);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 32u << 20;
  std::map<std::tuple<int64_t, int64_t, int64_t, bool>, Plan> plans_;
};

}  // namespace c8::cuda
