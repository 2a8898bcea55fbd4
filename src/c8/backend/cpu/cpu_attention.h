// CPU paged attention over a mixed batch (all four attention states), reading int8 C8
// blocks directly: with per-channel static scales,
//   q.k   = (q*s_k).k_int8 - (q*s_k).off_k            (second term constant per row)
//   sum_t p_t v_t = s_v * (sum_t p_t v_int8_t - off_v * sum_t p_t)
// so no dequantized copy of the cache is ever made.
#pragma once

#include "c8/backend/backend.h"
#include "c8/util/thread_pool.h"

namespace c8 {

// qkv (T, (Hq + 2 Hkv) D) fp32 after RoPE; out (T, Hq D) fp32.
void CpuPagedAttention(const float* qkv, const AttentionMeta& meta, const KvLayerView& cache,
                       const AttentionShape& shape, float* out, ThreadPool* pool);

// Writes k and v of qkv into their slots (quantizing for int8).
void CpuWriteKvCache(const float* qkv, const AttentionMeta& meta, const AttentionShape& shape,
                     KvLayerView& cache, ThreadPool* pool);

}  // namespace c8
