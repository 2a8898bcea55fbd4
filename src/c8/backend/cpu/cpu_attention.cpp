#include "c8/backend/cpu/cpu_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "c8/kv/c8_quant.h"
#include "c8/util/bf16.h"

namespace c8 {

namespace {

// Token index -> sequence index, from query_start (S + 1).
std::vector<int32_t> TokenToSeq(const AttentionMeta& meta) {
  std::vector<int32_t> seq(meta.num_tokens, 0);
  for (int32_t s = 0; s < meta.num_seqs; ++s) {
    for (int32_t t = meta.query_start[s]; t < meta.query_start[s + 1]; ++t) seq[t] = s;
  }
  return seq;
}

// Row of cached K or V for (seq, position, kv head), as a pointer into the paged storage.
inline int64_t CacheRowIndex(const AttentionMeta& meta, int32_t s, int32_t pos, int32_t kv_head,
                             int32_t num_kv_heads) {
  int32_t block =
      meta.block_tables[static_cast<int64_t>(s) * meta.max_blocks_per_seq + pos / meta.block_size];
  int32_t off = pos % meta.block_size;
  return (static_cast<int64_t>(block) * num_kv_heads + kv_head) * meta.block_size + off;
}

}  // namespace

void CpuWriteKvCache(const float* qkv, const AttentionMeta& meta, const AttentionShape& shape,
                     KvLayerView& cache, ThreadPool* pool) {
  const int32_t D = shape.head_dim, Hq = shape.num_heads, Hkv = shape.num_kv_heads;
  const int64_t stride = static_cast<int64_t>(Hq + 2 * Hkv) * D;
  const int32_t bs = meta.block_size;
  auto body = [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      int32_t slot = meta.slot_mapping[t];
      if (slot < 0) continue;
      int64_t block = slot / bs, off = slot % bs;
      for (int32_t g = 0; g < Hkv; ++g) {
        const float* k = qkv + t * stride + static_cast<int64_t>(Hq + g) * D;
        const float* v = qkv + t * stride + static_cast<int64_t>(Hq + Hkv + g) * D;
        int64_t row = ((block * Hkv + g) * bs + off) * D;
        switch (cache.dtype) {
          case KvDType::kF32:
            std::copy(k, k + D, static_cast<float*>(cache.k) + row);
            std::copy(v, v + D, static_cast<float*>(cache.v) + row);
            break;
          case KvDType::kBF16: {
            auto* kc = static_cast<uint16_t*>(cache.k) + row;
            auto* vc = static_cast<uint16_t*>(cache.v) + row;
            for (int32_t d = 0; d < D; ++d) {
              kc[d] = F32ToBf16(k[d]);
              vc[d] = F32ToBf16(v[d]);
            }
            break;
          }
          case KvDType::kInt8: {
            auto* kc = static_cast<int8_t*>(cache.k) + row;
            auto* vc = static_cast<int8_t*>(cache.v) + row;
            const int64_t c0 = static_cast<int64_t>(g) * D;
            for (int32_t d = 0; d < D; ++d) {
              kc[d] = QuantizeC8(k[d], cache.k_scale[c0 + d], cache.k_offset[c0 + d]);
              vc[d] = QuantizeC8(v[d], cache.v_scale[c0 + d], cache.v_offset[c0 + d]);
            }
            break;
          }
        }
      }
    }
  };
  if (pool) {
    pool->ParallelFor(meta.num_tokens, 16, body);
  } else {
    body(0, meta.num_tokens);
  }
}

void CpuPagedAttention(const float* qkv, const AttentionMeta& meta, const KvLayerView& cache,
                       const AttentionShape& shape, float* out, ThreadPool* pool) {
  const int32_t D = shape.head_dim, Hq = shape.num_heads, Hkv = shape.num_kv_heads;
  const int32_t group = Hq / Hkv;
  const int64_t stride = static_cast<int64_t>(Hq + 2 * Hkv) * D;
  const std::vector<int32_t> tok_seq = TokenToSeq(meta);
  const int64_t items = static_cast<int64_t>(meta.num_tokens) * Hq;

  auto body = [&](int64_t begin, int64_t end) {
    std::vector<float> scores, qs(D), acc_cache(D), acc_fresh(D);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / Hq;
      const int32_t h = static_cast<int32_t>(item % Hq);
      const int32_t g = h / group;
      const int32_t s = tok_seq[t];
      const int32_t cached = meta.num_cached[s];
      const int32_t qstart = meta.query_start[s];
      const int32_t pos = cached + static_cast<int32_t>(t - qstart);
      const int32_t ctx = pos + 1;
      const float* q = qkv + t * stride + static_cast<int64_t>(h) * D;
      const int64_t c0 = static_cast<int64_t>(g) * D;
      scores.resize(ctx);
      // Scores against cached keys (positions [0, cached)).
      float qoff = 0.0f;
      if (cache.dtype == KvDType::kInt8) {
        for (int32_t d = 0; d < D; ++d) {
          qs[d] = q[d] * cache.k_scale[c0 + d];
          qoff += qs[d] * cache.k_offset[c0 + d];
        }
      }
      for (int32_t j = 0; j < cached && j < ctx; ++j) {
        const int64_t row = CacheRowIndex(meta, s, j, g, Hkv) * D;
        float dot = 0.0f;
        switch (cache.dtype) {
          case KvDType::kF32: {
            const float* k = static_cast<const float*>(cache.k) + row;
            for (int32_t d = 0; d < D; ++d) dot += q[d] * k[d];
            break;
          }
          case KvDType::kBF16: {
            const uint16_t* k = static_cast<const uint16_t*>(cache.k) + row;
            for (int32_t d = 0; d < D; ++d) dot += q[d] * Bf16ToF32(k[d]);
            break;
          }
          case KvDType::kInt8: {
            const int8_t* k = static_cast<const int8_t*>(cache.k) + row;
            for (int32_t d = 0; d < D; ++d) dot += qs[d] * static_cast<float>(k[d]);
            dot -= qoff;
            break;
          }
        }
        scores[j] = dot * shape.scale;
      }
      // Scores against this step's fresh keys (positions [cached, pos]).
      for (int32_t j = cached; j < ctx; ++j) {
        const float* k = qkv + (qstart + (j - cached)) * stride + static_cast<int64_t>(Hq + g) * D;
        float dot = 0.0f;
        for (int32_t d = 0; d < D; ++d) dot += q[d] * k[d];
        scores[j] = dot * shape.scale;
      }
      float mx = -INFINITY;
      for (int32_t j = 0; j < ctx; ++j) mx = std::max(mx, scores[j]);
      float sum = 0.0f, sum_cache = 0.0f;
      for (int32_t j = 0; j < ctx; ++j) {
        scores[j] = std::exp(scores[j] - mx);
        sum += scores[j];
        if (j < cached) sum_cache += scores[j];
      }
      std::fill(acc_cache.begin(), acc_cache.end(), 0.0f);
      std::fill(acc_fresh.begin(), acc_fresh.end(), 0.0f);
      for (int32_t j = 0; j < cached && j < ctx; ++j) {
        const float p = scores[j];
        const int64_t row = CacheRowIndex(meta, s, j, g, Hkv) * D;
        switch (cache.dtype) {
          case KvDType::kF32: {
            const float* v = static_cast<const float*>(cache.v) + row;
            for (int32_t d = 0; d < D; ++d) acc_cache[d] += p * v[d];
            break;
          }
          case KvDType::kBF16: {
            const uint16_t* v = static_cast<const uint16_t*>(cache.v) + row;
            for (int32_t d = 0; d < D; ++d) acc_cache[d] += p * Bf16ToF32(v[d]);
            break;
          }
          case KvDType::kInt8: {
            const int8_t* v = static_cast<const int8_t*>(cache.v) + row;
            for (int32_t d = 0; d < D; ++d) acc_cache[d] += p * static_cast<float>(v[d]);
            break;
          }
        }
      }
      for (int32_t j = cached; j < ctx; ++j) {
        const float p = scores[j];
        const float* v =
            qkv + (qstart + (j - cached)) * stride + static_cast<int64_t>(Hq + Hkv + g) * D;
        for (int32_t d = 0; d < D; ++d) acc_fresh[d] += p * v[d];
      }
      float* o = out + t * static_cast<int64_t>(Hq) * D + static_cast<int64_t>(h) * D;
      const float inv = 1.0f / sum;
      for (int32_t d = 0; d < D; ++d) {
        float c = acc_cache[d];
        if (cache.dtype == KvDType::kInt8) {
          c = cache.v_scale[c0 + d] * (c - cache.v_offset[c0 + d] * sum_cache);
        }
        o[d] = (c + acc_fresh[d]) * inv;
      }
    }
  };
  if (pool) {
    pool->ParallelFor(items, 4, body);
  } else {
    body(0, items);
  }
}

}  // namespace c8
