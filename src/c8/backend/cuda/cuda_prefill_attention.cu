// Tensor-core prefill / chunked-prefill attention (FlashAttention-2 style, mma.sync m16n8k16)
// for every sequence with more than one new token. Layouts and the C8 algebra are described in
// cuda_attention_tc.cuh.
//
// Grid (Hkv, S, row tiles): CTA (g, s, z) serves rows [64 r, 64 r + 64) of sequence s, kv head
// g, where r = gridDim.z - 1 - z (the longest causal rows of all heads start first) and row i of a
// sequence is (new token i / G, query head g G + i % G). It streams the cached prefix
// [0, num_cached) from the paged cache (bf16, or int8 with fp16 mma), switches the accumulator
// to real values, then streams the fresh keys of its own chunk from qkv (bf16) with the causal
// mask: row token i sees fresh keys 0..i.
#include "c8/backend/cuda/cuda_attention_tc.cuh"
#include "c8/backend/cuda/cuda_kernels.h"

namespace c8::cuda {

namespace {

using namespace tc;

constexpr int kPrefillStages = 3;
constexpr int kRowsPerCta = 64;

template <int D>
constexpr int PrefillSmemBytes() {
  return kPrefillStages * 2 * kTileKeys * D * 2;  // K + V bf16 tiles (the largest kind)
}

template <int D, bool kC8>
__global__ void __launch_bounds__(kThreads, 2) PrefillKernel(TcParams p) {
  constexpr int kTileBytes = kTileKeys * D * 2;
  constexpr int kCacheRB = D * (kC8 ? 1 : 2);
  extern __shared__ __align__(128) uint8_t smem[];
  const int s = blockIdx.y, kvh = blockIdx.x;
  const int qstart = p.query_start[s], qlen = p.query_start[s + 1] - qstart;
  if (qlen <= 1) return;
  const int G = p.G, rows = qlen * G;
  const int r0 = (gridDim.z - 1 - blockIdx.z) * kRowsPerCta;
  if (r0 >= rows) return;
  const int cached = p.num_cached[s];
  const int nfresh = (min(r0 + kRowsPerCta, rows) - 1) / G + 1;
  const int nc = (cached + kTileKeys - 1) / kTileKeys;
  const int nt = nc + (nfresh + kTileKeys - 1) / kTileKeys;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int64_t W = int64_t(p.Hq + 2 * p.Hkv) * D;
  const int32_t* table = p.block_tables + int64_t(s) * p.max_blocks;
  const int bs = p.block_size;

  // This lane's rows g and g + 8 of its warp's 16.
  int tok[2], head[2];
  bool valid[2];
  const uint16_t* qrow[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = r0 + warp * 16 + g + 8 * r;
    valid[r] = row < rows;
    const int rr = min(row, rows - 1);
    tok[r] = rr / G;
    head[r] = kvh * G + rr % G;
    qrow[r] = p.qkv + int64_t(qstart + tok[r]) * W + int64_t(head[r]) * D;
  }

  auto stage = [&](int t) {
    uint8_t* kd = smem + (t % kPrefillStages) * 2 * kTileBytes;
    uint8_t* vd = kd + kTileBytes;
    if (t < nc) {
      const int kb = t * kTileKeys;
      StageTile<kCacheRB>(kd, vd, static_cast<const uint8_t*>(p.kc),
                          static_cast<const uint8_t*>(p.vc), [&](int key) -> int64_t {
                            const int j = kb + key;
                            if (j >= cached) return -1;
                            const int64_t block = table[j / bs];
                            return ((block * p.Hkv + kvh) * bs + j % bs) * kCacheRB;
                          });
    } else {
      const int fb = (t - nc) * kTileKeys;
      const uint8_t* base = reinterpret_cast<const uint8_t*>(p.qkv);
      StageTile<D * 2>(kd, vd, base + int64_t(p.Hq + kvh) * D * 2,
                       base + int64_t(p.Hq + p.Hkv + kvh) * D * 2, [&](int key) -> int64_t {
                         const int f = fb + key;
                         return f < nfresh ? int64_t(qstart + f) * W * 2 : -1;
                       });
    }
  };

  uint32_t qa[D / 16][4];
  float qoff[2];
  const float* ks = p.ks ? p.ks + kvh * D : nullptr;
  const float* ko = p.ko ? p.ko + kvh * D : nullptr;
  if (kC8 && nc > 0) {
    LoadQ<D, true>(qrow[0], qrow[1], ks, ko, p.scale_log2, qa, qoff);
  } else {
    LoadQ<D, false>(qrow[0], qrow[1], ks, ko, p.scale_log2, qa, qoff);
  }
  WarpState<D> st;
#pragma unroll
  for (int r = 0; r < 2; ++r) st.m[r] = kNegBig, st.l[r] = 0.0f;
#pragma unroll
  for (int j = 0; j < D / 8; ++j) st.o[j][0] = st.o[j][1] = st.o[j][2] = st.o[j][3] = 0.0f;

#pragma unroll
  for (int t = 0; t < kPrefillStages - 1; ++t) {
    if (t < nt) stage(t);
    CpAsyncCommit();
  }
  for (int t = 0; t < nt; ++t) {
    CpAsyncWait<kPrefillStages - 2>();
    __syncthreads();
    if (t + kPrefillStages - 1 < nt) stage(t + kPrefillStages - 1);
    CpAsyncCommit();
    const uint8_t* kt = smem + (t % kPrefillStages) * 2 * kTileBytes;
    const uint8_t* vt = kt + kTileBytes;
    if (t < nc) {
      const int left = cached - t * kTileKeys;
      const int lim[2] = {left, left};
      ProcessTile<D, kC8, kTileKeys>(kt, vt, 0, qa, qoff, p.scale_log2, lim, st);
    } else {
      if (kC8 && t == nc && nc > 0) {
        C8ToReal<D>(st, p.vs + kvh * D, p.vo + kvh * D);
        LoadQ<D, false>(qrow[0], qrow[1], ks, ko, p.scale_log2, qa, qoff);
      }
      const int fb = (t - nc) * kTileKeys;
      const int lim[2] = {tok[0] - fb + 1, tok[1] - fb + 1};
      ProcessTile<D, false, kTileKeys>(kt, vt, 0, qa, qoff, p.scale_log2, lim, st);
    }
  }
  CpAsyncWait<0>();

  // out = o / l.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = st.l[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = 1.0f / l;
    if (!valid[r]) continue;
    uint16_t* orow = p.out + (int64_t(qstart + tok[r]) * p.Hq + head[r]) * D;
#pragma unroll
    for (int j = 0; j < D / 8; j += 2) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const __nv_bfloat162 v =
            __floats2bfloat162_rn(st.o[j][e + 2 * r] * inv, st.o[j + 1][e + 2 * r] * inv);
        *reinterpret_cast<__nv_bfloat162*>(orow + VDim(2 * c + e, j)) = v;
      }
    }
  }
}

template <int D, bool kC8>
void LaunchPrefillTyped(const TcParams& p, dim3 grid, cudaStream_t stream) {
  constexpr int kSmem = PrefillSmemBytes<D>();
  static bool configured = false;  // per instantiation; attribute setting is idempotent
  if (!configured) {
    cudaFuncSetAttribute(PrefillKernel<D, kC8>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
    configured = true;
  }
  PrefillKernel<D, kC8><<<grid, kThreads, kSmem, stream>>>(p);
}

}  // namespace

bool LaunchPrefillAttention(const uint16_t* qkv, const AttentionMeta& meta,
                            const KvLayerView& cache, const AttentionShape& shape, uint16_t* out,
                            cudaStream_t stream) {
  const int D = shape.head_dim;
  if (cache.dtype == KvDType::kF32 || (D != 64 && D != 128)) return false;
  if (meta.max_query_len <= 1 || meta.num_seqs <= 0) return true;  // nothing to do here
  TcParams p{};
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
  p.scale_log2 = shape.scale * 1.4426950408889634f;
  p.kc = cache.k;
  p.vc = cache.v;
  const bool c8 = cache.dtype == KvDType::kInt8;
  if (c8) {
    p.ks = cache.k_scale;
    p.ko = cache.k_offset;
    p.vs = cache.v_scale;
    p.vo = cache.v_offset;
  }
  const int64_t row_tiles = (int64_t(meta.max_query_len) * p.G + kRowsPerCta - 1) / kRowsPerCta;
  dim3 grid(static_cast<unsigned>(p.Hkv), static_cast<unsigned>(meta.num_seqs),
            static_cast<unsigned>(row_tiles));
  if (D == 128) {
    c8 ? LaunchPrefillTyped<128, true>(p, grid, stream)
       : LaunchPrefillTyped<128, false>(p, grid, stream);
  } else {
    c8 ? LaunchPrefillTyped<64, true>(p, grid, stream)
       : LaunchPrefillTyped<64, false>(p, grid, stream);
  }
  return true;
}

}  // namespace c8::cuda
