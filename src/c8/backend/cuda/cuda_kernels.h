// Host-side launchers of the CUDA kernels (internal to the CUDA backend). All pointers are
// device memory; every launch is asynchronous on `stream`. bf16 tensors are passed as
// uint16_t* (raw bf16 bits). Shapes are row-major, named in each comment.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "c8/backend/backend.h"
#include "c8/util/dtype.h"

namespace c8::cuda {

// dst (n) bf16 = src (n) of src_dtype (F32, F16, BF16, F64).
void LaunchConvertToBf16(const void* src, DType src_dtype, int64_t n, uint16_t* dst,
                         cudaStream_t stream);
// dst (n) fp32 = src (n) bf16.
void LaunchBf16ToF32(const uint16_t* src, int64_t n, float* dst, cudaStream_t stream);

// out (T, H) = table (V, H) rows ids (T). Rows are copied as bytes (row_bytes each).
void LaunchEmbedding(const void* table, const int32_t* ids, int64_t T, int64_t row_bytes, void* out,
                     cudaStream_t stream);
// out (R, H) = x rows `rows` (R), row_bytes per row.
void LaunchGatherRows(const void* x, const int32_t* rows, int64_t R, int64_t row_bytes, void* out,
                      cudaStream_t stream);

// out (T, H) bf16 = x / rms(x) * w.  x bf16 (T, H); w (H) bf16 or fp32 (w_f32).
void LaunchRmsNorm(const uint16_t* x, const void* w, bool w_f32, float eps, int64_t T, int64_t H,
                   uint16_t* out, cudaStream_t stream);
// residual (T, H) bf16 += x (T, H) bf16; out = RmsNorm(residual) (the rounded residual).
void LaunchAddRmsNorm(uint16_t* residual, const uint16_t* x, const void* w, bool w_f32, float eps,
                      int64_t T, int64_t H, uint16_t* out, cudaStream_t stream);
// out (T, I) bf16 = silu(gate) * up; gate_up (T, 2I) bf16 = [gate | up].
void LaunchSiluMul(const uint16_t* gate_up, int64_t T, int64_t I, uint16_t* out,
                   cudaStream_t stream);
// y (T, N) (bf16 or fp32: y_f32) += bias (N) (bf16 or fp32: bias_f32).
void LaunchAddBias(void* y, bool y_f32, const void* bias, bool bias_f32, int64_t T, int64_t N,
                   cudaStream_t stream);

// In place on qkv (T, (Hq + 2 Hkv) D) bf16: optional per-head RMSNorm of q and k heads
// (q_norm, k_norm (D), bf16 or fp32 per norm_f32, may be null), then rotate-half RoPE with
// cos_sin (max_pos, D) fp32 = [cos (D/2) | sin (D/2)] at positions (T).
void LaunchQkNormRope(uint16_t* qkv, const int32_t* positions, const void* q_norm,
                      const void* k_norm, bool norm_f32, float eps, const float* cos_sin, int64_t T,
                      int32_t Hq, int32_t Hkv, int32_t D, cudaStream_t stream);

// Writes k and v of qkv (T, (Hq + 2 Hkv) D) bf16 into cache slots meta.slot_mapping (T),
// converting to the cache dtype (int8: C8 quantization, round half to even, clamp).
void LaunchWriteKvCache(const uint16_t* qkv, const AttentionMeta& meta, const AttentionShape& shape,
                        const KvLayerView& cache, cudaStream_t stream);

// Paged attention over a mixed batch (rule in attention_meta.h).
// qkv (T, (Hq + 2 Hkv) D) bf16 after RoPE; out (T, Hq D) bf16.
// `workspace` must hold PagedAttentionWorkspaceBytes(meta, shape) bytes.
size_t PagedAttentionWorkspaceBytes(const AttentionMeta& meta, const AttentionShape& shape);
void LaunchPagedAttention(const uint16_t* qkv, const AttentionMeta& meta, const KvLayerView& cache,
                          const AttentionShape& shape, uint16_t* out, void* workspace,
                          cudaStream_t stream);

// Tensor-core prefill (mma.sync m16n8k16 bf16) for sequences with more than one new token:
// each such sequence attends to its cached blocks (any cache dtype, converted in shared memory)
// plus its own fresh keys, causal. Sequences with exactly one new token are skipped.
// Returns false when the shape is not supported (the caller falls back).
bool LaunchPrefillAttention(const uint16_t* qkv, const AttentionMeta& meta,
                            const KvLayerView& cache, const AttentionShape& shape, uint16_t* out,
                            cudaStream_t stream);

}  // namespace c8::cuda
