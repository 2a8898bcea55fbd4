// Tensor-core prefill / chunked-prefill attention (FlashAttention-2 style, mma.sync m16n8k16)
// for every sequence with more than one new token. Layouts and the C8 algebra are described in
// cuda_attention_tc.cuh, the 32-row warp tile in cuda_prefill_tc.cuh.
//
// Grid (Hkv, S, row tiles x splits): CTA (g, s, z) serves rows [128 r, 128 r + 128) of sequence
// s, kv head g, where r = row tiles - 1 - z / splits (the longest causal rows of all heads start
// first) and row i of a sequence is (new token i / G, query head g G + i % G); warp w owns rows
// [32 w, 32 w + 32). It streams its part of the cached prefix [0, num_cached) from the paged
// cache (bf16, or int8 with fp16 mma), switches the accumulator to real values, then (last part
// only) streams the fresh keys of its own chunk from qkv (bf16) with the causal mask: row token
// i sees fresh keys 0..i.
//
// KV split (short chunks after long cached prefixes, when rows x kv heads leave SMs idle): the
// cached tiles are cut into `splits` parts of `part_tiles` tiles; every part writes its
// (max, sum, unnormalized accumulator) and PrefillReduceKernel combines them. The partials live
// in the backend's attention workspace (PagedAttentionWorkspaceBytes counts them).
#include <algorithm>

#include "c8/backend/cuda/cuda_attention_params.h"
#include "c8/backend/cuda/cuda_kernels.h"
#include "c8/backend/cuda/cuda_prefill_tc.cuh"

namespace c8::cuda {

namespace {

using namespace tc;

constexpr int kPrefillStages = 2;
constexpr int kRowsPerCta = 128;  // 4 warps x 32 rows
// Keys per online-softmax step: 32 (two per 64-key tile) measured 245 / 275 TFLOP/s against
// 238 / 270 for 64 (4k / 16k causal, before the ldmatrix V path; 270 / 300 vs 265 / 296 after).
constexpr int kSubKeys = 32;

template <int D>
constexpr int PrefillSmemBytes() {
  // K + V bf16 tiles (the largest kind) per stage, then each warp's Q fragments.
  return kPrefillStages * 2 * kTileKeys * D * 2 + 4 * kQWarpBytes<D>;
}

struct PrefillSplit {
  int splits = 1, part_tiles = 1 << 30;
  float* ml = nullptr;   // (T, Hq, splits, 2): max (log2 domain), sum
  float* acc = nullptr;  // (T, Hq, splits, D): unnormalized real accumulator
};

// Parts that sequence s uses: ceil(cached tiles / part_tiles), at least one.
__device__ __forceinline__ int PartsOf(int cached_tiles, int part_tiles) {
  return max(1, (cached_tiles + part_tiles - 1) / part_tiles);
}

// kSub: keys per online-softmax step (64 = the whole tile, 32 = two half tiles: fewer live
// score registers, one more max / rescale and Q read per tile). Instantiated with kSubKeys.
template <int D, bool kC8, int kSub>
__global__ void __launch_bounds__(kThreads, 2) PrefillKernel(TcParams p, PrefillSplit sp) {
  constexpr int kTileBytes = kTileKeys * D * 2;
  constexpr int kCacheRB = D * (kC8 ? 1 : 2);
  constexpr bool kNatV = !kC8;  // bf16 kernels: V through ldmatrix, natural output layout
  extern __shared__ __align__(128) uint8_t smem[];
  const int s = blockIdx.y, kvh = blockIdx.x;
  const int qstart = p.query_start[s], qlen = p.query_start[s + 1] - qstart;
  if (qlen <= 1) return;
  const int G = p.G, rows = qlen * G;
  const int row_tiles = gridDim.z / sp.splits;
  const int r0 = (row_tiles - 1 - int(blockIdx.z) / sp.splits) * kRowsPerCta;
  const int part = blockIdx.z % sp.splits;
  if (r0 >= rows) return;
  const int cached = p.num_cached[s];
  const int nct = (cached + kTileKeys - 1) / kTileKeys;  // cached tiles
  const int parts = PartsOf(nct, sp.part_tiles);
  if (part >= parts) return;
  const int c0 = part * sp.part_tiles;  // first cached tile of this part
  const int nc = max(0, min(nct, c0 + sp.part_tiles) - c0);
  const bool last = part == parts - 1;
  const int nfresh = (min(r0 + kRowsPerCta, rows) - 1) / G + 1;
  const int nt = nc + (last ? (nfresh + kTileKeys - 1) / kTileKeys : 0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int64_t W = int64_t(p.Hq + 2 * p.Hkv) * D;
  const int32_t* table = p.block_tables + int64_t(s) * p.max_blocks;
  const int bs = p.block_size;
  uint8_t* qs = smem + kPrefillStages * 2 * kTileBytes + warp * kQWarpBytes<D>;

  // This lane's rows are row0 + 16 mt + 8 r (m16 tile mt, fragment row g / g + 8); their
  // tokens are kept in tok[][] below, heads and Q pointers recomputed where needed (registers
  // go to the accumulators).
  const int row0 = r0 + warp * 32 + g;
  auto row_tok = [&](int mt, int r) { return min(row0 + 16 * mt + 8 * r, rows - 1) / G; };
  auto row_head = [&](int mt, int r) {
    return kvh * G + min(row0 + 16 * mt + 8 * r, rows - 1) % G;
  };
  // The warp's last token: fresh tiles starting after it are fully masked for the warp.
  const int wtok_max = min(r0 + warp * 32 + 31, rows - 1) / G;
  // The warp's first token: fresh tiles ending at or before it need no mask.
  const int wtok_min = min(r0 + warp * 32, rows - 1) / G;
  int tok[2][2];  // this lane's row tokens (kept: an integer division costs ~20 instructions)
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) tok[mt][r] = row_tok(mt, r);
  }

  auto stage = [&](int t) {
    uint8_t* kd = smem + (t % kPrefillStages) * 2 * kTileBytes;
    uint8_t* vd = kd + kTileBytes;
    if (t < nc) {
      const int kb = (c0 + t) * kTileKeys;
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

#pragma unroll
  for (int t = 0; t < kPrefillStages - 1; ++t) {
    if (t < nt) stage(t);
    CpAsyncCommit();
  }

  const uint16_t* qrow[2][2];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      qrow[mt][r] = p.qkv + int64_t(qstart + row_tok(mt, r)) * W + int64_t(row_head(mt, r)) * D;
    }
  }
  float qoff[2][2];
  const float* ks = p.ks ? p.ks + kvh * D : nullptr;
  const float* ko = p.ko ? p.ko + kvh * D : nullptr;
  if (kC8 && nc > 0) {
    StoreQ32<D, true>(qrow, ks, ko, p.scale_log2, qs, qoff);
  } else {
    StoreQ32<D, false>(qrow, ks, ko, p.scale_log2, qs, qoff);
  }
  WarpState<D> st[2];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) st[mt].m[r] = kNegBig, st[mt].l[r] = 0.0f;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      st[mt].o[j][0] = st[mt].o[j][1] = st[mt].o[j][2] = st[mt].o[j][3] = 0.0f;
    }
  }

  for (int t = 0; t < nt; ++t) {
    CpAsyncWait<kPrefillStages - 2>();
    __syncthreads();
    if (t + kPrefillStages - 1 < nt) stage(t + kPrefillStages - 1);
    CpAsyncCommit();
    const uint8_t* kt = smem + (t % kPrefillStages) * 2 * kTileBytes;
    const uint8_t* vt = kt + kTileBytes;
    if (t < nc) {
      const int left = cached - (c0 + t) * kTileKeys;
#pragma unroll 1
      for (int k0 = 0; k0 < kTileKeys; k0 += kSub) {
        const int lim[2][2] = {{left - k0, left - k0}, {left - k0, left - k0}};
        if (left - k0 >= kSub) {
          ProcessTile32<D, kC8, kSub, false, kNatV>(kt + k0 * kCacheRB, vt + k0 * kCacheRB, qs,
                                                    qoff, p.scale_log2, lim, st);
        } else {  // the prefix's last, partial tile
          ProcessTile32<D, kC8, kSub, true, kNatV>(kt + k0 * kCacheRB, vt + k0 * kCacheRB, qs, qoff,
                                                   p.scale_log2, lim, st);
        }
      }
    } else {
      if (kC8 && t == nc && nc > 0) {
        C8ToReal<D>(st[0], p.vs + kvh * D, p.vo + kvh * D);
        C8ToReal<D>(st[1], p.vs + kvh * D, p.vo + kvh * D);
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            qrow[mt][r] =
                p.qkv + int64_t(qstart + row_tok(mt, r)) * W + int64_t(row_head(mt, r)) * D;
          }
        }
        StoreQ32<D, false>(qrow, ks, ko, p.scale_log2, qs, qoff);
      }
      const int fb = (t - nc) * kTileKeys;
      if (fb > wtok_max) continue;  // every row of this warp masks the whole tile
#pragma unroll 1
      for (int k0 = 0; k0 < kTileKeys; k0 += kSub) {
        if (fb + k0 > wtok_max) break;
        const int kb = fb + k0 - 1;
        const bool full = fb + k0 + kSub - 1 <= wtok_min;  // no row of the warp masks a key
        const int lim[2][2] = {{full ? kSub : tok[0][0] - kb, full ? kSub : tok[0][1] - kb},
                               {full ? kSub : tok[1][0] - kb, full ? kSub : tok[1][1] - kb}};
        if (full) {
          ProcessTile32<D, false, kSub, false, kNatV>(kt + k0 * D * 2, vt + k0 * D * 2, qs, qoff,
                                                      p.scale_log2, lim, st);
        } else {  // the causal diagonal
          ProcessTile32<D, false, kSub, true, kNatV>(kt + k0 * D * 2, vt + k0 * D * 2, qs, qoff,
                                                     p.scale_log2, lim, st);
        }
      }
    }
  }
  CpAsyncWait<0>();
  if (kC8 && nc > 0 && nt == nc) {  // a part without fresh keys ends in the C8 domain
    C8ToReal<D>(st[0], p.vs + kvh * D, p.vo + kvh * D);
    C8ToReal<D>(st[1], p.vs + kvh * D, p.vo + kvh * D);
  }

  // out = o / l, or this part's (m, l, o) for the reduce.
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = st[mt].l[r];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      if (row0 + 16 * mt + 8 * r >= rows) continue;
      const int64_t th = int64_t(qstart + row_tok(mt, r)) * p.Hq + row_head(mt, r);
      if (sp.splits > 1) {
        const int64_t pi = th * sp.splits + part;
        float* acc = sp.acc + pi * D;
#pragma unroll
        for (int j = 0; j < D / 8; j += 2) {  // dims OutDim(n, j) and OutDim(n, j) + 1
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            if constexpr (kNatV) {  // dims 8 (j + e) + 2 c, + 1
              *reinterpret_cast<float2*>(acc + OutDim<true>(2 * c, j + e)) =
                  make_float2(st[mt].o[j + e][2 * r], st[mt].o[j + e][2 * r + 1]);
            } else {
              *reinterpret_cast<float2*>(acc + VDim(2 * c + e, j)) =
                  make_float2(st[mt].o[j][2 * r + e], st[mt].o[j + 1][2 * r + e]);
            }
          }
        }
        if (c == 0) *reinterpret_cast<float2*>(sp.ml + pi * 2) = make_float2(st[mt].m[r], l);
        continue;
      }
      const float inv = 1.0f / l;
      uint16_t* orow = p.out + th * D;
#pragma unroll
      for (int j = 0; j < D / 8; j += 2) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if constexpr (kNatV) {  // dims 8 (j + e) + 2 c, + 1
            const __nv_bfloat162 v = __floats2bfloat162_rn(st[mt].o[j + e][2 * r] * inv,
                                                           st[mt].o[j + e][2 * r + 1] * inv);
            *reinterpret_cast<__nv_bfloat162*>(orow + OutDim<true>(2 * c, j + e)) = v;
          } else {
            const __nv_bfloat162 v = __floats2bfloat162_rn(st[mt].o[j][e + 2 * r] * inv,
                                                           st[mt].o[j + 1][e + 2 * r] * inv);
            *reinterpret_cast<__nv_bfloat162*>(orow + VDim(2 * c + e, j)) = v;
          }
        }
      }
    }
  }
}

// Combines the parts of one (sequence, new token, head): grid (Hq, S, max_query_len), D threads.
__global__ void PrefillReduceKernel(TcParams p, PrefillSplit sp, int D) {
  const int h = blockIdx.x, s = blockIdx.y, i = blockIdx.z, d = threadIdx.x;
  const int qstart = p.query_start[s], qlen = p.query_start[s + 1] - qstart;
  if (qlen <= 1 || i >= qlen) return;
  const int n = PartsOf((p.num_cached[s] + kTileKeys - 1) / kTileKeys, sp.part_tiles);
  const int64_t base = (int64_t(qstart + i) * p.Hq + h) * sp.splits;
  float mx = -INFINITY;
  for (int k = 0; k < n; ++k) mx = fmaxf(mx, sp.ml[(base + k) * 2]);
  float l = 0.0f, a = 0.0f;
  for (int k = 0; k < n; ++k) {
    const float f = exp2f(sp.ml[(base + k) * 2] - mx);
    l += sp.ml[(base + k) * 2 + 1] * f;
    a += sp.acc[(base + k) * D + d] * f;
  }
  const __nv_bfloat16 v = __float2bfloat16_rn(a / l);
  p.out[(int64_t(qstart + i) * p.Hq + h) * D + d] = *reinterpret_cast<const uint16_t*>(&v);
}

// Split workspace cap (the partials of all parts of a step).
constexpr size_t kMaxWorkspace = size_t(64) << 20;

template <int D, bool kC8>
void LaunchPrefillTyped(DeviceContext& ctx, const TcParams& p, const PrefillSplit& sp, dim3 grid,
                        cudaStream_t stream) {
  constexpr int kSmem = PrefillSmemBytes<D>();
  bool& configured = ctx.prefill_configured[D == 128][kC8];  // per device
  if (!configured) {
    cudaFuncSetAttribute(PrefillKernel<D, kC8, kSubKeys>,
                         cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
    configured = true;
  }
  PrefillKernel<D, kC8, kSubKeys><<<grid, kThreads, kSmem, stream>>>(p, sp);
}

}  // namespace

// Parts of the cached prefix: split only when the CTAs without a split fill less than half of
// the resident slots (2 per SM) and the longest prefix has >= 2 x 8 tiles; parts of >= 8 tiles.
KvSplitPlan PlanPrefillSplit(const DeviceContext& ctx, const AttentionMeta& meta,
                             const AttentionShape& shape) {
  const KvSplitPlan none{1, 1 << 30};
  if (meta.max_query_len <= 1 || meta.num_seqs <= 0 || shape.num_kv_heads <= 0) return none;
  const int G = shape.num_heads / shape.num_kv_heads;
  const int64_t row_tiles = (int64_t(meta.max_query_len) * G + kRowsPerCta - 1) / kRowsPerCta;
  const int64_t ctas = row_tiles * shape.num_kv_heads * meta.num_seqs;  // without a split
  const int64_t slots = int64_t(ctx.num_sms) * 2;
  // Upper bound of any sequence's cached tiles (a prefill sequence's own prefix may be shorter:
  // it then uses fewer parts, the extra CTAs exit at once).
  const int max_tiles = (meta.max_context_len + kTileKeys - 1) / kTileKeys;
  constexpr int kMinPartTiles = 8;
  if (ctas * 2 > slots || max_tiles < 2 * kMinPartTiles) return none;
  int splits = static_cast<int>(std::min<int64_t>(slots / std::max<int64_t>(ctas, 1), 64));
  splits = std::min(splits, max_tiles / kMinPartTiles);
  const int64_t per_split = int64_t(meta.num_tokens) * shape.num_heads * (shape.head_dim + 2) * 4;
  if (per_split <= 0) return none;
  splits = static_cast<int>(std::min<int64_t>(splits, int64_t(kMaxWorkspace) / per_split));
  if (splits < 2) return none;
  KvSplitPlan sp;
  sp.part_len = (max_tiles + splits - 1) / splits;
  sp.splits = (max_tiles + sp.part_len - 1) / sp.part_len;
  if (sp.splits < 2) return none;
  return sp;
}

size_t PrefillSplitWorkspaceBytes(const KvSplitPlan& split, const AttentionMeta& meta,
                                  const AttentionShape& shape) {
  if (split.splits < 2) return 0;
  // (T, Hq, splits, 2) max and sum, then (T, Hq, splits, D) accumulators, fp32.
  return size_t(meta.num_tokens) * shape.num_heads * (shape.head_dim + 2) * 4 * split.splits;
}

bool LaunchPrefillAttention(DeviceContext& ctx, const KvSplitPlan& split, const uint16_t* qkv,
                            const AttentionMeta& meta, const KvLayerView& cache,
                            const AttentionShape& shape, uint16_t* out, void* workspace,
                            cudaStream_t stream) {
  const int D = shape.head_dim;
  if (cache.dtype == KvDType::kF32 || (D != 64 && D != 128)) return false;
  if (meta.max_query_len <= 1 || meta.num_seqs <= 0) return true;  // nothing to do here
  TcParams p{};
  FillAttentionParams(p, qkv, meta, cache, shape, out);
  const bool c8 = cache.dtype == KvDType::kInt8;
  const int64_t row_tiles = (int64_t(meta.max_query_len) * p.G + kRowsPerCta - 1) / kRowsPerCta;
  PrefillSplit sp;
  if (split.splits > 1 && workspace != nullptr) {
    sp.splits = split.splits;
    sp.part_tiles = split.part_len;
    sp.ml = static_cast<float*>(workspace);
    sp.acc = sp.ml + size_t(meta.num_tokens) * shape.num_heads * sp.splits * 2;
  }
  dim3 grid(static_cast<unsigned>(p.Hkv), static_cast<unsigned>(meta.num_seqs),
            static_cast<unsigned>(row_tiles * sp.splits));
  if (D == 128) {
    c8 ? LaunchPrefillTyped<128, true>(ctx, p, sp, grid, stream)
       : LaunchPrefillTyped<128, false>(ctx, p, sp, grid, stream);
  } else {
    c8 ? LaunchPrefillTyped<64, true>(ctx, p, sp, grid, stream)
       : LaunchPrefillTyped<64, false>(ctx, p, sp, grid, stream);
  }
  if (sp.splits > 1) {
    dim3 rgrid(static_cast<unsigned>(p.Hq), static_cast<unsigned>(meta.num_seqs),
               static_cast<unsigned>(meta.max_query_len));
    PrefillReduceKernel<<<rgrid, D, 0, stream>>>(p, sp, D);
  }
  return true;
}

}  // namespace c8::cuda
