// Host-side launchers of the CUDA kernels (internal to the CUDA backend). All pointers are
// device memory; every launch is asynchronous on `stream`. bf16 tensors are passed as
// uint16_t* (raw bf16 bits). Shapes are row-major, named in each comment.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "c8/backend/backend.h"
#include "c8/backend/cuda/cuda_device_context.h"
#include "c8/util/dtype.h"

namespace c8::cuda {

// dst (n) bf16 = src (n) of src_dtype (F32, F16, BF16, F64).
void LaunchConvertToBf16(const void* src, DType src_dtype, int64_t n, uint16_t* dst,
                         cudaStream_t stream);
// dst (n) fp32 = src (n) bf16.
void LaunchBf16ToF32(const uint16_t* src, int64_t n, float* dst, cudaStream_t stream);

// Vocab-parallel lookup: table (Vr, H) holds the rows of vocab ids [vocab_begin, vocab_begin +
// Vr). out (T, H) row t = table row ids[t] - vocab_begin when 0 <= ids[t] - vocab_begin < Vr,
// else zeros. Rows are copied as bytes (row_bytes each).
void LaunchEmbedding(const void* table, int64_t Vr, const int32_t* ids, int64_t vocab_begin,
                     int64_t T, int64_t row_bytes, void* out, cudaStream_t stream);
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

// W8A8 (cuda_quant_linear.cu). x (T, K) bf16 -> q (T, K) int8: static (x * inv_scale +
// offset) or dynamic (per token: tok_scale[t] = absmax / 127, x * 127 / absmax); round half to
// even, clamp to [-128, 127].
void LaunchQuantizeActivations(const uint16_t* x, int64_t T, int64_t K, bool dynamic,
                               float inv_scale, float offset, int8_t* q, float* tok_scale,
                               cudaStream_t stream);
// acc (T, N) int32 = xq (T, K) . wq (N, K)^T (plain kernel: shapes cuBLASLt's IMMA rejects).
void LaunchInt8Gemm(const int8_t* xq, const int8_t* wq, int64_t T, int64_t N, int64_t K,
                    int32_t* acc, cudaStream_t stream);
// y (T, N) = acc * scale[n] (* tok_scale[t]) (+ shift[n]) (+ bias[n]); null parts skipped.
void LaunchDequantize(const int32_t* acc, int64_t T, int64_t N, const float* scale,
                      const float* tok_scale, const float* shift, const void* bias, bool bias_f32,
                      void* y, bool y_f32, cudaStream_t stream);

// The dequantization epilogue of a W8A8 GEMM: y (T, N) = acc * scale[n] (* tok_scale[t])
// (+ shift[n]) (+ bias[n]); null parts skipped; y bf16 or fp32 (y_f32), bias bf16 or fp32.
struct Int8Epilogue {
  const float* scale = nullptr;
  const float* tok_scale = nullptr;
  const float* shift = nullptr;
  const void* bias = nullptr;
  bool bias_f32 = false;
  void* y = nullptr;
  bool y_f32 = false;
};
// Decode-shaped W8A8 GEMM with the epilogue fused (cuda_int8_small_m.cu): tensor cores with
// tokens as the mma's N, split K with exact int32 atomics. Takes K % 64 == 0 (16-byte aligned
// xq and wq). `ws`: Int8SmallMWorkspaceBytes(T, N) bytes, all zero before the call and left
// all zero after it (allocate zeroed once; reusable across calls and inside CUDA graphs).
bool Int8SmallMTakes(int64_t T, int64_t N, int64_t K);
size_t Int8SmallMWorkspaceBytes(int64_t T, int64_t N);
void LaunchInt8GemmSmallM(const int8_t* xq, const int8_t* wq, int64_t T, int64_t N, int64_t K,
                          const Int8Epilogue& ep, void* ws, int num_sms, cudaStream_t stream);

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

// ---- paged attention (cuda_paged_attention.cu, cuda_prefill_attention.cu) ------------------
// Host-side launch decisions are made once per step by PlanPagedAttention (CudaBackend::
// PlanAttention) into an AttentionPlan; the launchers only read it. `ctx` holds the device facts
// the planner uses (SM count, occupancy) and the one-time kernel attribute settings.

// Fills plan's key (shape and metadata it is made from) and its split decisions: the
// tensor-core decode split for bf16 and int8 caches, the CUDA-core split for fp32 caches and
// the prefill kernel's split. `only`: plan for that cache dtype alone (a per-call plan; the
// other dtypes' entries keep their defaults). use_cudnn is left to the caller.
void PlanPagedAttention(DeviceContext& ctx, const AttentionMeta& meta, const AttentionShape& shape,
                        const KvDType* only, AttentionPlan& plan);
// True when `plan` was made (planned) for exactly this metadata and shape.
bool PlanMatches(const AttentionPlan& plan, const AttentionMeta& meta, const AttentionShape& shape);

// Paged attention over a mixed batch (rule in attention_meta.h).
// qkv (T, (Hq + 2 Hkv) D) bf16 after RoPE; out (T, Hq D) bf16. `plan` was made for meta and
// shape (PlanMatches) covering cache.dtype. `workspace` must hold
// PagedAttentionWorkspaceBytes(plan, meta, shape, cache dtype) bytes: the split partials of the
// prefill kernel, then (stream-ordered, the same bytes) those of the decode kernel.
size_t PagedAttentionWorkspaceBytes(const AttentionPlan& plan, const AttentionMeta& meta,
                                    const AttentionShape& shape, KvDType dtype);
void LaunchPagedAttention(DeviceContext& ctx, const AttentionPlan& plan, const uint16_t* qkv,
                          const AttentionMeta& meta, const KvLayerView& cache,
                          const AttentionShape& shape, uint16_t* out, void* workspace,
                          cudaStream_t stream);

// Tensor-core prefill (mma.sync m16n8k16 bf16) for sequences with more than one new token:
// each such sequence attends to its cached blocks (bf16 or int8, converted in shared memory)
// plus its own fresh keys, causal. Sequences with exactly one new token are skipped.
// Returns false when the shape is not supported (fp32 caches, head dims other than 64 / 128:
// the caller falls back).
// The split of the cached prefix (short chunks after long prefixes): PlanPrefillSplit; its
// partials, PrefillSplitWorkspaceBytes bytes, go to `workspace` (unused without a split).
KvSplitPlan PlanPrefillSplit(const DeviceContext& ctx, const AttentionMeta& meta,
                             const AttentionShape& shape);
size_t PrefillSplitWorkspaceBytes(const KvSplitPlan& split, const AttentionMeta& meta,
                                  const AttentionShape& shape);
bool LaunchPrefillAttention(DeviceContext& ctx, const KvSplitPlan& split, const uint16_t* qkv,
                            const AttentionMeta& meta, const KvLayerView& cache,
                            const AttentionShape& shape, uint16_t* out, void* workspace,
                            cudaStream_t stream);

// Batched sampling (cuda_sampling.cu): per-row parameters as the kernel reads them. Floats and
// the log of min_p are computed on the host exactly as the host Sampler computes them.
struct SampleRowArgs {
  int64_t logits_row = 0;
  int64_t penalty_begin = 0, masked_begin = 0;
  int32_t penalty_count = 0, masked_count = 0;
  int64_t allowed_begin = -1;  // first word of the row's allowed-token bitmask; -1: none
  float temperature = 1.0f;    // (float) temperature
  float rep = 1.0f, freq = 0.0f, pres = 0.0f;
  int32_t apply_rep = 0;  // repetition_penalty != 1
  int32_t apply_freq_pres = 0;
  int32_t greedy = 0;
  int32_t top_k = 0;  // 0: off
  int32_t use_min_p = 0;
  int32_t use_top_p = 0;
  double log_min_p = 0.0;  // std::log(min_p)
  double top_p = 1.0;
  uint64_t seed = 0, step = 0;
  uint32_t stream = 0;
  int32_t num_logprobs = -1;
  int32_t skip = 0;  // the host already found this row bad
};
struct SampleRowResult {
  int32_t token_id = -1;
  int32_t status = 0;  // 0 ok, 1 NaN/+inf logit, 2 every token masked
  float logprob = 0.0f;
  int32_t rank = 0;
  int32_t top_ids[kMaxSampleLogprobs];
  float top_logprobs[kMaxSampleLogprobs];
};
// One block per row. logits (L, V) fp32; rows (R); penalty, masked, allowed: flat arrays of
// SamplingRows; work (R, V) fp32 scratch; out (R).
void LaunchSampleRows(const float* logits, int64_t V, int32_t R, const SampleRowArgs* rows,
                      const PenaltyToken* penalty, const int32_t* masked, const uint32_t* allowed,
                      float* work, SampleRowResult* out, cudaStream_t stream);

}  // namespace c8::cuda
