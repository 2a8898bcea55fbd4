// y = x w^T through cuBLASLt: bf16 inputs, fp32 accumulation, bf16 or fp32 output.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

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
  // acc (T, N) int32 row-major = xq (T, K) int8 . wq (N, K)^T int8 (IMMA). Needs K and N
  // multiples of 4 and 16-byte aligned pointers (CanRunInt8); exact integer sums.
  Status RunInt8(const void* xq, const void* wq, void* acc, int64_t T, int64_t N, int64_t K,
                 cudaStream_t stream);
  static bool CanRunInt8(int64_t N, int64_t K) { return N % 4 == 0 && K % 4 == 0; }

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    // Candidates from the heuristic, best first; an int8 plan with few tokens is timed on its
    // first run outside graph capture (the heuristic's first pick is often slow there).
    std::vector<cublasLtMatmulAlgo_t> candidates;
    bool tuned = true;
  };
  static constexpr int64_t kTuneMaxTokens = 256;
  // Times every candidate of `p` on these operands (3 runs each after a warm-up) and keeps
  // the fastest in p->algo.
  Status TuneInt8(Plan* p, const void* xq, const void* wq, void* acc, cudaStream_t stream);
  // kind: 0 bf16 -> bf16, 1 bf16 -> fp32, 2 int8 -> int32.
  Result<Plan*> GetPlan(int64_t T, int64_t N, int64_t K, int kind);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 32u << 20;
  std::map<std::tuple<int64_t, int64_t, int64_t, int>, Plan> plans_;
};

}  // namespace c8::cuda
