// Host-side filling of the fields every paged-attention parameter block shares (the
// CUDA-core split-KV kernel's AttnParams, the tensor-core decode and prefill kernels'
// TcParams): sequence metadata, head counts, the softmax scale and the cache pointers.
#pragma once

#include <cstdint>

#include "c8/backend/backend.h"

namespace c8 {

template <class Params>
void FillAttentionParams(Params& p, const uint16_t* qkv, const AttentionMeta& meta,
                         const KvLayerView& cache, const AttentionShape& shape, uint16_t* out) {
  p.qkv = qkv;
  p.out = out;
  p.query_start = meta.query_start;
  p.num_cached = meta.num_cached;
  p.block_tables = meta.block_tables;
  p.num_seqs = meta.num_seqs;
  p.max_blocks = meta.max_blocks_per_seq;
  p.block_size = meta.block_size;
  p.Hq = shape.num_heads;
  p.Hkv = shape.num_kv_heads;
  p.G = shape.num_heads / shape.num_kv_heads;
  p.scale_log2 = shape.scale * 1.4426950408889634f;  // log2(e): kernels use exp2
  p.kc = cache.k;
  p.vc = cache.v;
  if (cache.dtype == KvDType::kInt8) {
    p.ks = cache.k_scale;
    p.ko = cache.k_offset;
    p.vs = cache.v_scale;
    p.vo = cache.v_offset;
  }
}

}  // namespace c8
