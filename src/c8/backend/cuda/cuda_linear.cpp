#include "c8/backend/cuda/cuda_linear.h"

#include <string>

namespace c8::cuda {

namespace {

Status LtCheck(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return Error(std::string("cuBLASLt ") + what + ": status " +
               std::to_string(static_cast<int>(st)));
}

}  // namespace

CublasLtGemm::~CublasLtGemm() {
  for (auto& [key, p] : plans_) {
    if (p.a) cublasLtMatrixLayoutDestroy(p.a);
    if (p.b) cublasLtMatrixLayoutDestroy(p.b);
    if (p.c) cublasLtMatrixLayoutDestroy(p.c);
    if (p.op) cublasLtMatmulDescDestroy(p.op);
  }
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

Status CublasLtGemm::Init() {
  C8_RETURN_IF_ERROR(LtCheck(cublasLtCreate(&handle_), "create"));
  if (cudaMalloc(&workspace_, workspace_bytes_) != cudaSuccess) {
    workspace_ = nullptr;
    return Error("cuBLASLt: cannot allocate a " + std::to_string(workspace_bytes_) +
                 "-byte workspace");
  }
  return Status::Ok();
}

// Row-major y (T, N) = x (T, K) w (N, K)^T is column-major y^T (N, T) = w^T... i.e.
// C (m=N, n=T) = op(A) B with A = w as column-major (K, N) transposed, B = x as
// column-major (K, T).
Result<CublasLtGemm::Plan*> CublasLtGemm::GetPlan(int64_t T, int64_t N, int64_t K, int kind) {
  auto key = std::make_tuple(T, N, K, kind);
  auto it = plans_.find(key);
  if (it != plans_.end()) return &it->second;
  const bool int8 = kind == 2, y_f32 = kind == 1;
  const cudaDataType_t in_t = int8 ? CUDA_R_8I : CUDA_R_16BF;
  const cudaDataType_t out_t = int8 ? CUDA_R_32I : (y_f32 ? CUDA_R_32F : CUDA_R_16BF);
  Plan p;
  C8_RETURN_IF_ERROR(
      LtCheck(cublasLtMatmulDescCreate(&p.op, int8 ? CUBLAS_COMPUTE_32I : CUBLAS_COMPUTE_32F,
                                       int8 ? CUDA_R_32I : CUDA_R_32F),
              "desc"));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  C8_RETURN_IF_ERROR(
      LtCheck(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
              "transa"));
  C8_RETURN_IF_ERROR(
      LtCheck(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
              "transb"));
  C8_RETURN_IF_ERROR(LtCheck(cublasLtMatrixLayoutCreate(&p.a, in_t, K, N, K), "layout A"));
  C8_RETURN_IF_ERROR(LtCheck(cublasLtMatrixLayoutCreate(&p.b, in_t, K, T, K), "layout B"));
  C8_RETURN_IF_ERROR(LtCheck(cublasLtMatrixLayoutCreate(&p.c, out_t, N, T, N), "layout C"));
  cublasLtMatmulPreference_t pref = nullptr;
  C8_RETURN_IF_ERROR(LtCheck(cublasLtMatmulPreferenceCreate(&pref), "preference"));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                       &workspace_bytes_, sizeof(workspace_bytes_));
  cublasLtMatmulHeuristicResult_t results[8] = {};
  const int want = int8 && T <= kTuneMaxTokens ? 8 : 1;
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.c, p.c, pref, want,
                                                     results, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.op);
    return Error("cuBLASLt: no algorithm for y(" + std::to_string(T) + ", " + std::to_string(N) +
                 ") = x(" + std::to_string(T) + ", " + std::to_string(K) + ") w^T");
  }
  p.algo = results[0].algo;
  for (int i = 0; i < found; ++i) {
    if (results[i].state == CUBLAS_STATUS_SUCCESS) p.candidates.push_back(results[i].algo);
  }
  p.tuned = p.candidates.size() <= 1;
  return &plans_.emplace(key, p).first->second;
}

Status CublasLtGemm::Run(const void* x, const void* w, void* y, bool y_f32, int64_t T, int64_t N,
                         int64_t K, cudaStream_t stream) {
  if (T == 0 || N == 0) return Status::Ok();
  C8_ASSIGN_OR_RETURN(Plan * p, GetPlan(T, N, K, y_f32 ? 1 : 0));
  const float alpha = 1.0f, beta = 0.0f;
  return LtCheck(cublasLtMatmul(handle_, p->op, &alpha, w, p->a, x, p->b, &beta, y, p->c, y, p->c,
                                &p->algo, workspace_, workspace_bytes_, stream),
                 "matmul");
}

Status CublasLtGemm::RunInt8(const void* xq, const void* wq, void* acc, int64_t T, int64_t N,
                             int64_t K, cudaStream_t stream) {
  if (T == 0 || N == 0) return Status::Ok();
  if (!CanRunInt8(N, K)) {
    return Error("cuBLASLt int8: N " + std::to_string(N) + " and K " + std::to_string(K) +
                 " must be multiples of 4");
  }
  C8_ASSIGN_OR_RETURN(Plan * p, GetPlan(T, N, K, 2));
  if (!p->tuned) {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream, &capture) == cudaSuccess &&
        capture == cudaStreamCaptureStatusNone) {
      C8_RETURN_IF_ERROR(TuneInt8(p, xq, wq, acc, stream));
    }
  }
  const int32_t alpha = 1, beta = 0;
  return LtCheck(cublasLtMatmul(handle_, p->op, &alpha, wq, p->a, xq, p->b, &beta, acc, p->c, acc,
                                p->c, &p->algo, workspace_, workspace_bytes_, stream),
                 "int8 matmul");
}

Status CublasLtGemm::TuneInt8(Plan* p, const void* xq, const void* wq, void* acc,
                              cudaStream_t stream) {
  p->tuned = true;
  cudaEvent_t ev[2] = {nullptr, nullptr};
  if (cudaEventCreate(&ev[0]) != cudaSuccess || cudaEventCreate(&ev[1]) != cudaSuccess) {
    for (cudaEvent_t e : ev) {
      if (e) cudaEventDestroy(e);
    }
    cudaGetLastError();
    return Status::Ok();  // keep the heuristic's choice
  }
  const int32_t alpha = 1, beta = 0;
  float best_ms = -1.0f;
  for (const cublasLtMatmulAlgo_t& algo : p->candidates) {
    auto run = [&] {
      return cublasLtMatmul(handle_, p->op, &alpha, wq, p->a, xq, p->b, &beta, acc, p->c, acc,
                            p->c, &algo, workspace_, workspace_bytes_, stream);
    };
    if (run() != CUBLAS_STATUS_SUCCESS) continue;
    cudaEventRecord(ev[0], stream);
    bool ok = true;
    for (int i = 0; i < 3 && ok; ++i) ok = run() == CUBLAS_STATUS_SUCCESS;
    cudaEventRecord(ev[1], stream);
    float ms = 0.0f;
    if (!ok || cudaEventSynchronize(ev[1]) != cudaSuccess ||
        cudaEventElapsedTime(&ms, ev[0], ev[1]) != cudaSuccess) {
      continue;
    }
    if (best_ms < 0.0f || ms < best_ms) {
      best_ms = ms;
      p->algo = algo;
    }
  }
  cudaEventDestroy(ev[0]);
  cudaEventDestroy(ev[1]);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    return Error(std::string("cuBLASLt int8 tuning: ") + cudaGetErrorString(e));
  }
  return Status::Ok();
}

}  // namespace c8::cuda
