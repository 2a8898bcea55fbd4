// CPU GEMM for y = x w^T with fp32 or bf16 weights. The weight rows are split into chunks
// that the thread pool shares; a bf16 chunk is widened to fp32 in a per-thread buffer that
// stays in cache, then multiplied by single-threaded OpenBLAS. Reading bf16 halves the
// memory traffic of decode steps, which are bound by weight bandwidth.
#pragma once

#include <cstdint>

#include "c8/util/thread_pool.h"

namespace c8 {

// x (T, K) fp32; w (N, K) fp32 or bf16 bits (w_bf16 = true); y (T, N) fp32.
void CpuLinear(const float* x, int64_t T, int64_t K, const void* w, bool w_bf16, int64_t N,
               float* y, ThreadPool& pool);

}  // namespace c8
