// CPU W8A8 linear (static and dynamic activation quantization, linear_weight.h): activations
// quantized to int8 per the LinearWeight's scheme, int8 x int8 dot products accumulated in
// int32 (AVX2 madd on sign-extended pairs where the CPU has it, picked at run time; a portable
// loop otherwise), then the per-channel dequantization epilogue. The weight rows are split
// into chunks that the thread pool shares. Reads 1 byte per weight: half of bf16.
#pragma once

#include <cstdint>
#include <vector>

#include "c8/backend/linear_weight.h"
#include "c8/util/thread_pool.h"

namespace c8 {

// x (T, K) fp32; w int8 (N, K) with its scales (host memory); bias (N) fp32 or null;
// y (T, N) fp32.
void CpuInt8Linear(const float* x, int64_t T, int64_t K, const LinearWeight& w, const float* bias,
                   float* y, ThreadPool& pool);

// The activation quantization alone: x (T, K) -> q (T, K) int8 and, for kW8A8Dynamic, the
// per-token scale s (T) (for kW8A8Static s is left alone). The reference of the GPU kernels.
void QuantizeActivations(const float* x, int64_t T, int64_t K, const LinearWeight& w, int8_t* q,
                         float* s);

}  // namespace c8
