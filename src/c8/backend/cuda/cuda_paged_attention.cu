// Paged attention dispatch. bf16 and C8 int8 caches: sequences with more than one new token go
// to the tensor-core prefill kernel (cuda_prefill_attention.cu), single-token (decode)
// sequences to the tensor-core split-KV decode kernel below (TcDecodeKernel: one CTA per
// (sequence, kv head, KV split) serving all G query heads as the rows of one m16 tile, the 4
// warps taking 16 keys each of every 64-key tile; layouts in cuda_attention_tc.cuh).
// fp32 caches use the CUDA-core split-KV kernel (SplitKvAttentionKernel).
//
// CUDA-core split-KV paged attention, one CTA per (query token, kv head, KV split), GQA-aware: the
// CTA serves all query heads of its kv head (up to 4 per CTA; larger groups use several head
// chunks), so each K/V byte of a split is read once per token. This kernel serves decode
// tokens (one new token per sequence) and is the fallback for prefill tokens when the
// tensor-core prefill kernel (cuda_prefill_attention.cu) does not take them.
//
// For query token t of sequence s at position p = num_cached[s] + (t - query_start[s]):
// keys 0..num_cached-1 come from the paged cache, keys num_cached..p from the fresh qkv.
//
// C8 int8 is never dequantized to memory; with per-channel scale s and offset o:
//   q.k = (q*s_k).k_int8 - (q*s_k).o_k
//   sum_j p_j v_j = s_v * (sum_j p_j v_int8_j - o_v * sum_j p_j)
// Fresh (bf16) keys/values are mapped into the same int8 domain (k / s_k + o_k) so one
// accumulator serves both. bf16 and fp32 caches use scale 1, offset 0.
//
// Thread layout (128 threads = 4 warps): a row (one token of one kv head, D elements) is
// read by TPR = D / 8 lanes, 8 channels each (int8: 8-byte loads, bf16: 16-byte loads);
// a warp covers 32 / TPR rows per step and U steps per chunk; warps take chunks in turn.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "c8/backend/cuda/cuda_attention_params.h"
#include "c8/backend/cuda/cuda_attention_tc.cuh"
#include "c8/backend/cuda/cuda_kernels.h"

namespace c8::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxG =
    4;  // query heads per CTA (larger groups: several head chunks; 4 measured best)
constexpr int kUnroll = 4;
constexpr float kNegBig = -1e30f;

__device__ __forceinline__ float Bf(uint32_t h16) {
  return __uint_as_float(h16 << 16);
}
__device__ __forceinline__ uint16_t ToBf(float f) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}

struct AttnParams {
  const uint16_t* qkv;  // (T, (Hq + 2 Hkv) D) bf16
  uint16_t* out;        // (T, Hq D) bf16
  const int32_t* query_start;
  const int32_t* num_cached;
  const int32_t* block_tables;  // (S, max_blocks)
  int32_t num_seqs, max_blocks, block_size;
  int32_t Hq, Hkv, G, head_chunks;
  float scale_log2;  // softmax scale * log2(e)
  const void* kc;    // (num_blocks, Hkv, block_size, D) cache dtype
  const void* vc;
  const float *ks, *ko, *vs, *vo;  // (Hkv D) each, C8 only (null otherwise)
  int32_t num_splits, part_len;
  int32_t skip_prefill;  // 1: tokens of sequences with > 1 new token are left alone
  float* part_ml;        // (T, Hq, splits, 2): running max (log2 domain), sum
  float* part_acc;       // (T, Hq, splits, D)
};

// 8 consecutive elements of a row (bf16 or fp32) -> fp32.
__device__ __forceinline__ void Load8(const uint16_t* p, float (&f)[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = Bf(w[i] & 0xffffu);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}
__device__ __forceinline__ void Load8(const float* p, float (&f)[8]) {
  const float4 a = reinterpret_cast<const float4*>(p)[0];
  const float4 b = reinterpret_cast<const float4*>(p)[1];
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

// Sequence of token t: the largest s with query_start[s] <= t.
__device__ __forceinline__ int FindSeq(const int32_t* query_start, int num_seqs, int t) {
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (query_start[mid] <= t) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

template <int D>
struct RowLayout {
  static constexpr int kTpr = D / 8;      // lanes per row
  static constexpr int kRpw = 32 / kTpr;  // rows per warp step
  static constexpr int kChunk = kRpw * kUnroll;
};

// Per-thread online-softmax state for up to kMaxG heads over its 8 channels.
struct SoftmaxState {
  float m[kMaxG], l[kMaxG], acc[kMaxG][8];
};

// Processes rows [j0, j1) of one (token, kv head): fresh rows (kFresh) come from qkv,
// others from the paged cache of element type T.
template <int D, typename T, bool kFresh>
__device__ __forceinline__ void ProcessRows(const AttnParams& p, int s, int g, int nh, int j0,
                                            int j1, int fresh_row0, const float (&q)[kMaxG][8],
                                            const float (&qoff)[kMaxG], SoftmaxState& st) {
  using L = RowLayout<D>;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int r = lane / L::kTpr, c = lane % L::kTpr;
  const int64_t qkv_stride = int64_t(p.Hq + 2 * p.Hkv) * D;
  // Fresh rows in the C8 domain: k' = k / s_k + o_k, v' = v / s_v + o_v.
  float kmul[8], kadd[8], vmul[8], vadd[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) kmul[e] = vmul[e] = 1.0f, kadd[e] = vadd[e] = 0.0f;
  if (kFresh && p.ks != nullptr) {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int ch = g * D + c * 8 + e;
      kmul[e] = 1.0f / p.ks[ch];
      kadd[e] = p.ko[ch];
      vmul[e] = 1.0f / p.vs[ch];
      vadd[e] = p.vo[ch];
    }
  }
  const int32_t* table = p.block_tables + int64_t(s) * p.max_blocks;
  for (int cj = j0 + warp * L::kChunk; cj < j1; cj += kWarps * L::kChunk) {
    float kf[kUnroll][8], vf[kUnroll][8];
    bool valid[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      int j = cj + u * L::kRpw + r;
      valid[u] = j < j1;
      j = valid[u] ? j : j1 - 1;
      if constexpr (kFresh) {
        const uint16_t* row = p.qkv + int64_t(fresh_row0 + (j - j0)) * qkv_stride;
        Load8(row + int64_t(p.Hq + g) * D + c * 8, kf[u]);
        Load8(row + int64_t(p.Hq + p.Hkv + g) * D + c * 8, vf[u]);
      } else {
        const int block = table[j / p.block_size];
        const int64_t off =
            ((int64_t(block) * p.Hkv + g) * p.block_size + j % p.block_size) * D + c * 8;
        Load8(static_cast<const T*>(p.kc) + off, kf[u]);
        Load8(static_cast<const T*>(p.vc) + off, vf[u]);
      }
    }
    if constexpr (kFresh) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          kf[u][e] = fmaf(kf[u][e], kmul[e], kadd[e]);
          vf[u][e] = fmaf(vf[u][e], vmul[e], vadd[e]);
        }
      }
    }
#pragma unroll
    for (int i = 0; i < kMaxG; ++i) {
      if (i >= nh) break;
      float sc[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        float d = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) d = fmaf(q[i][e], kf[u][e], d);
#pragma unroll
        for (int o = L::kTpr / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        sc[u] = valid[u] ? d - qoff[i] : -INFINITY;
      }
      float mx = st.m[i];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) mx = fmaxf(mx, sc[u]);
      const float alpha = exp2f(st.m[i] - mx);
      st.m[i] = mx;
      float ps[kUnroll], psum = 0.0f;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) psum += (ps[u] = exp2f(sc[u] - mx));
      st.l[i] = st.l[i] * alpha + psum;
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        float a = st.acc[i][e] * alpha;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) a = fmaf(ps[u], vf[u][e], a);
        st.acc[i][e] = a;
      }
    }
  }
}

template <int D, typename T>
__global__ void __launch_bounds__(kThreads) SplitKvAttentionKernel(AttnParams p) {
  using L = RowLayout<D>;
  const int t = blockIdx.x;
  const int g = blockIdx.y / p.head_chunks;
  const int h0 = g * p.G + (blockIdx.y % p.head_chunks) * kMaxG;
  const int nh = min(kMaxG, g * p.G + p.G - h0);
  const int split = blockIdx.z;
  const int s = FindSeq(p.query_start, p.num_seqs, t);
  const int qstart = p.query_start[s];
  if (p.skip_prefill && p.query_start[s + 1] - qstart > 1) return;
  const int cached = p.num_cached[s];
  const int ctx = cached + (t - qstart) + 1;
  const int j0 = split * p.part_len;
  const int j1 = min(ctx, j0 + p.part_len);
  if (j0 >= j1) return;

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int r = lane / L::kTpr, c = lane % L::kTpr;
  // q of this thread's 8 channels for each head, scaled into the cache domain.
  float q[kMaxG][8], qoff[kMaxG];
  const uint16_t* qrow = p.qkv + int64_t(t) * (p.Hq + 2 * p.Hkv) * D;
  float ksc[8], kof[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    ksc[e] = p.ks ? p.ks[g * D + c * 8 + e] : 1.0f;
    kof[e] = p.ks ? p.ko[g * D + c * 8 + e] : 0.0f;
  }
#pragma unroll
  for (int i = 0; i < kMaxG; ++i) {
    float qf[8];
    Load8(qrow + int64_t(min(h0 + i, h0 + nh - 1)) * D + c * 8, qf);
    float off = 0.0f;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      q[i][e] = qf[e] * p.scale_log2 * ksc[e];
      off = fmaf(q[i][e], kof[e], off);
    }
#pragma unroll
    for (int o = L::kTpr / 2; o > 0; o >>= 1) off += __shfl_xor_sync(0xffffffffu, off, o);
    qoff[i] = off;
  }
  SoftmaxState st;
#pragma unroll
  for (int i = 0; i < kMaxG; ++i) {
    st.m[i] = kNegBig;
    st.l[i] = 0.0f;
#pragma unroll
    for (int e = 0; e < 8; ++e) st.acc[i][e] = 0.0f;
  }
  if (j0 < min(j1, cached)) {
    ProcessRows<D, T, false>(p, s, g, nh, j0, min(j1, cached), 0, q, qoff, st);
  }
  if (max(j0, cached) < j1) {
    const int f0 = max(j0, cached);
    ProcessRows<D, T, true>(p, s, g, nh, f0, j1, qstart + (f0 - cached), q, qoff, st);
  }

  // Merge the row groups of a warp (lanes with equal c), then the warps through smem.
#pragma unroll
  for (int o = L::kTpr; o < 32; o <<= 1) {
#pragma unroll
    for (int i = 0; i < kMaxG; ++i) {
      const float mo = __shfl_xor_sync(0xffffffffu, st.m[i], o);
      const float lo = __shfl_xor_sync(0xffffffffu, st.l[i], o);
      const float mx = fmaxf(st.m[i], mo);
      const float a = exp2f(st.m[i] - mx), b = exp2f(mo - mx);
      st.m[i] = mx;
      st.l[i] = st.l[i] * a + lo * b;
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float ao = __shfl_xor_sync(0xffffffffu, st.acc[i][e], o);
        st.acc[i][e] = st.acc[i][e] * a + ao * b;
      }
    }
  }
  __shared__ float sm_ml[kWarps][kMaxG][2];
  __shared__ float sm_acc[kWarps][kMaxG][D];
  if (r == 0) {
#pragma unroll
    for (int i = 0; i < kMaxG; ++i) {
#pragma unroll
      for (int e = 0; e < 8; ++e) sm_acc[warp][i][c * 8 + e] = st.acc[i][e];
      if (c == 0) {
        sm_ml[warp][i][0] = st.m[i];
        sm_ml[warp][i][1] = st.l[i];
      }
    }
  }
  __syncthreads();
  for (int item = threadIdx.x; item < nh * D; item += kThreads) {
    const int i = item / D, d = item % D;
    float mx = kNegBig;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, sm_ml[w][i][0]);
    float lsum = 0.0f, a = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float f = exp2f(sm_ml[w][i][0] - mx);
      lsum += sm_ml[w][i][1] * f;
      a += sm_acc[w][i][d] * f;
    }
    if (p.vs != nullptr) a = p.vs[g * D + d] * (a - p.vo[g * D + d] * lsum);
    const int h = h0 + i;
    if (p.num_splits == 1) {
      p.out[(int64_t(t) * p.Hq + h) * D + d] = ToBf(a / lsum);
    } else {
      const int64_t pi = (int64_t(t) * p.Hq + h) * p.num_splits + split;
      p.part_acc[pi * D + d] = a;
      if (d == 0) {
        p.part_ml[pi * 2] = mx;
        p.part_ml[pi * 2 + 1] = lsum;
      }
    }
  }
}

// Combines the splits of one (token, head): grid (T, Hq), D threads.
__global__ void SplitKvReduceKernel(AttnParams p, int D) {
  const int t = blockIdx.x, h = blockIdx.y, d = threadIdx.x;
  const int s = FindSeq(p.query_start, p.num_seqs, t);
  const int qstart = p.query_start[s];
  if (p.skip_prefill && p.query_start[s + 1] - qstart > 1) return;
  const int ctx = p.num_cached[s] + (t - qstart) + 1;
  const int n = (ctx + p.part_len - 1) / p.part_len;
  const int64_t base = (int64_t(t) * p.Hq + h) * p.num_splits;
  float mx = kNegBig;
  for (int i = 0; i < n; ++i) mx = fmaxf(mx, p.part_ml[(base + i) * 2]);
  float lsum = 0.0f, a = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float f = exp2f(p.part_ml[(base + i) * 2] - mx);
    lsum += p.part_ml[(base + i) * 2 + 1] * f;
    a += p.part_acc[(base + i) * D + d] * f;
  }
  p.out[(int64_t(t) * p.Hq + h) * D + d] = ToBf(a / lsum);
}

// ---- tensor-core decode (bf16 / C8 int8 caches) ---------------------------------------------

constexpr int kDecodeRows = 16;  // query heads per CTA (one m16 tile)

template <int D, bool kC8>
__host__ __device__ constexpr int DecodeStages() {
  return 3;  // 48 KB (int8, 4 CTAs per SM) / 96 KB (bf16, 2 CTAs per SM) of K/V for D = 128
}
template <int D, bool kC8>
__host__ __device__ constexpr int DecodeSmemBytes() {
  const int ring = DecodeStages<D, kC8>() * 2 * tc::kTileKeys * D * (kC8 ? 1 : 2);
  const int merge = (4 * kDecodeRows * D + 4 * kDecodeRows * 2 + kDecodeRows) * 4;
  return ring > merge ? ring : merge;
}

// Grid (S, Hkv * head_tiles, splits). CTA (s, y, z): sequence s (skipped unless it has exactly
// one new token), kv head y / head_tiles, query heads [16 (y % head_tiles), +16) of its group,
// keys [z part_len, (z + 1) part_len) of the context; cached keys through the mma tiles, the
// token's own (fresh) key in fp32 by the CTA whose split ends the context.
// kSwap (C8, G <= 8): the swapped tile step (ProcessTileSwapped: keys as mma rows, heads as
// columns), half the mma and softmax work of the 16-row head tile.
template <int D, bool kC8, bool kSwap = false>
__global__ void __launch_bounds__(tc::kThreads, kC8 ? 4 : 2) TcDecodeKernel(tc::TcParams p) {
  using namespace tc;
  constexpr int kStages = DecodeStages<D, kC8>();
  constexpr int kRB = D * (kC8 ? 1 : 2);
  constexpr int kTileBytes = kTileKeys * kRB;
  extern __shared__ __align__(128) uint8_t smem[];
  const int s = blockIdx.x;
  const int kvh = blockIdx.y / p.head_tiles, ht = blockIdx.y % p.head_tiles;
  const int qstart = p.query_start[s];
  if (p.query_start[s + 1] - qstart != 1) return;
  const int cached = p.num_cached[s], ctx = cached + 1;
  const int j0 = blockIdx.z * p.part_len, j1 = min(ctx, j0 + p.part_len);
  if (j0 >= j1) return;
  const int ce = min(j1, cached);
  const int nt = ce > j0 ? (ce - j0 + kTileKeys - 1) / kTileKeys : 0;
  const int h0 = kvh * p.G + ht * kDecodeRows, nh = min(kDecodeRows, p.G - ht * kDecodeRows);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int64_t W = int64_t(p.Hq + 2 * p.Hkv) * D;
  const uint16_t* tok_row = p.qkv + int64_t(qstart) * W;
  const int32_t* table = p.block_tables + int64_t(s) * p.max_blocks;
  const int bs = p.block_size;

  auto stage = [&](int t) {
    uint8_t* kd = smem + (t % kStages) * 2 * kTileBytes;
    const int kb = j0 + t * kTileKeys;
    StageTile<kRB>(kd, kd + kTileBytes, static_cast<const uint8_t*>(p.kc),
                   static_cast<const uint8_t*>(p.vc), [&](int key) -> int64_t {
                     const int j = kb + key;
                     if (j >= ce) return -1;
                     const int64_t block = table[j / bs];
                     return ((block * p.Hkv + kvh) * bs + j % bs) * kRB;
                   });
  };

  uint32_t qa[D / 16][4];
  float qoff[2];
  const float* ks = p.ks ? p.ks + kvh * D : nullptr;
  const float* ko = p.ko ? p.ko + kvh * D : nullptr;
  LoadQ<D, kC8>(g < nh ? tok_row + int64_t(h0 + g) * D : nullptr,
                !kSwap && g + 8 < nh ? tok_row + int64_t(h0 + g + 8) * D : nullptr, ks, ko,
                p.scale_log2, qa, qoff);
  WarpState<D> st;
  SwapState<D> sw;
  uint32_t qb[D / 16][2];
  float qh[2];
  if constexpr (kSwap) {
#pragma unroll
    for (int k = 0; k < D / 16; ++k) qb[k][0] = qa[k][0], qb[k][1] = qa[k][2];
    qh[0] = __shfl_sync(0xffffffffu, qoff[0], 8 * c);  // head 2c lives in lanes 4 (2c) + *
    qh[1] = __shfl_sync(0xffffffffu, qoff[0], 8 * c + 4);
#pragma unroll
    for (int r = 0; r < 2; ++r) sw.m[r] = kNegBig, sw.l[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < D / 16; ++i) sw.o[i][0] = sw.o[i][1] = sw.o[i][2] = sw.o[i][3] = 0.0f;
  } else {
#pragma unroll
    for (int r = 0; r < 2; ++r) st.m[r] = kNegBig, st.l[r] = 0.0f;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) st.o[j][0] = st.o[j][1] = st.o[j][2] = st.o[j][3] = 0.0f;
  }

#pragma unroll
  for (int t = 0; t < kStages - 1; ++t) {
    if (t < nt) stage(t);
    CpAsyncCommit();
  }
  for (int t = 0; t < nt; ++t) {
    CpAsyncWait<kStages - 2>();
    __syncthreads();
    if (t + kStages - 1 < nt) stage(t + kStages - 1);
    CpAsyncCommit();
    const uint8_t* kt = smem + (t % kStages) * 2 * kTileBytes;
    const int left = ce - (j0 + t * kTileKeys);
    if constexpr (kSwap) {
      ProcessTileSwapped<D>(kt, kt + kTileBytes, warp * (kTileKeys / 4), qb, qh, p.scale_log2, left,
                            sw);
    } else {
      const int lim[2] = {left, left};
      ProcessTile<D, kC8, kTileKeys / 4>(kt, kt + kTileBytes, warp * (kTileKeys / 4), qa, qoff,
                                         p.scale_log2, lim, st);
    }
  }
  CpAsyncWait<0>();
  __syncthreads();  // the ring is reused below

  // Merge the 4 warps (and the fresh key) through shared memory.
  float* sm_o = reinterpret_cast<float*>(smem);   // (4, 16, D)
  float* sm_ml = sm_o + 4 * kDecodeRows * D;      // (4, 16, 2)
  float* sm_fresh = sm_ml + 4 * kDecodeRows * 2;  // (16): fresh score, log2 domain
  if constexpr (kSwap) {
    SwapToShared<D>(sw, p.vs + kvh * D, p.vo + kvh * D, sm_o, sm_ml, warp);
  } else {
    if constexpr (kC8) C8ToReal<D>(st, p.vs + kvh * D, p.vo + kvh * D);
  }
#pragma unroll
  for (int r = 0; r < 2 && !kSwap; ++r) {
    float l = st.l[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = g + 8 * r;
    float* o = sm_o + (warp * kDecodeRows + row) * D;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      o[VDim(2 * c, j)] = st.o[j][2 * r];
      o[VDim(2 * c + 1, j)] = st.o[j][2 * r + 1];
    }
    if (c == 0) {
      sm_ml[(warp * kDecodeRows + row) * 2] = st.m[r];
      sm_ml[(warp * kDecodeRows + row) * 2 + 1] = l;
    }
  }
  const bool fresh = j1 == ctx;
  const uint16_t* kf = tok_row + int64_t(p.Hq + kvh) * D;
  const uint16_t* vf = tok_row + int64_t(p.Hq + p.Hkv + kvh) * D;
  if (fresh) {
    for (int row = warp; row < nh; row += 4) {
      const uint16_t* q = tok_row + int64_t(h0 + row) * D;
      float d = 0.0f;
      for (int e = lane; e < D; e += 32) d = fmaf(BfToF(q[e]), BfToF(kf[e]), d);
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
      if (lane == 0) sm_fresh[row] = d * p.scale_log2;
    }
  }
  __syncthreads();
  for (int item = threadIdx.x; item < nh * D; item += kThreads) {
    const int row = item / D, d = item % D;
    float mx = fresh ? sm_fresh[row] : kNegBig;
#pragma unroll
    for (int w = 0; w < 4; ++w) mx = fmaxf(mx, sm_ml[(w * kDecodeRows + row) * 2]);
    float l = 0.0f, a = 0.0f;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const float f = Ex2(sm_ml[(w * kDecodeRows + row) * 2] - mx);
      l += sm_ml[(w * kDecodeRows + row) * 2 + 1] * f;
      a += sm_o[(w * kDecodeRows + row) * D + d] * f;
    }
    if (fresh) {
      const float f = Ex2(sm_fresh[row] - mx);
      l += f;
      a += f * BfToF(vf[d]);
    }
    const int h = h0 + row;
    if (p.num_splits == 1) {
      p.out[(int64_t(qstart) * p.Hq + h) * D + d] = ToBf(a / l);
    } else {
      const int64_t pi = (int64_t(s) * p.Hq + h) * p.num_splits + blockIdx.z;  // per sequence
      p.part_acc[pi * D + d] = a;
      if (d == 0) {
        p.part_ml[pi * 2] = mx;
        p.part_ml[pi * 2 + 1] = l;
      }
    }
  }
}

// Combines the splits of one (decode sequence, head): grid (S, Hq), kReduceThreads threads.
// Split weights first go to shared memory (all splits in parallel), then kReduceThreads / D
// groups of D threads each sum a strided share of the splits' partial outputs (loads unrolled so
// that many are in flight: the partials were just written and sit in L2, and a serial loop over
// hundreds of splits would be bound by its latency), and the groups are added up.
constexpr int kReduceThreads = 512;
constexpr int kMaxSplits = 512;
__global__ void __launch_bounds__(kReduceThreads) TcDecodeReduceKernel(tc::TcParams p, int D) {
  __shared__ float w[kMaxSplits];             // exp2(m_i - max) per split
  __shared__ float red[kReduceThreads / 32];  // block reductions
  __shared__ float acc[kReduceThreads];       // (groups, D) partial sums
  const int s = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
  const int t = p.query_start[s];
  if (p.query_start[s + 1] - t != 1) return;
  const int n = min(kMaxSplits, (p.num_cached[s] + 1 + p.part_len - 1) / p.part_len);
  const int64_t base = (int64_t(s) * p.Hq + h) * p.num_splits;  // partials are per sequence
  // max over splits
  float mx = kNegBig;
  for (int i = tid; i < n; i += kReduceThreads) mx = fmaxf(mx, p.part_ml[(base + i) * 2]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (tid % 32 == 0) red[tid / 32] = mx;
  __syncthreads();
  mx = red[0];
#pragma unroll
  for (int k = 1; k < kReduceThreads / 32; ++k) mx = fmaxf(mx, red[k]);
  __syncthreads();
  // weights and the softmax denominator
  float l = 0.0f;
  for (int i = tid; i < n; i += kReduceThreads) {
    const float f = exp2f(p.part_ml[(base + i) * 2] - mx);
    w[i] = f;
    l += p.part_ml[(base + i) * 2 + 1] * f;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) l += __shfl_xor_sync(0xffffffffu, l, o);
  if (tid % 32 == 0) red[tid / 32] = l;
  __syncthreads();
  l = 0.0f;
#pragma unroll
  for (int k = 0; k < kReduceThreads / 32; ++k) l += red[k];
  // weighted sum of the partial outputs: group g takes splits g, g + groups, ...
  const int groups = kReduceThreads / D, g = tid / D, d = tid % D;
  float a = 0.0f;
  if (g < groups) {
    int i = g;
    for (; i + 3 * groups < n; i += 4 * groups) {
      const float a0 = p.part_acc[(base + i) * D + d];
      const float a1 = p.part_acc[(base + i + groups) * D + d];
      const float a2 = p.part_acc[(base + i + 2 * groups) * D + d];
      const float a3 = p.part_acc[(base + i + 3 * groups) * D + d];
      a += a0 * w[i] + a1 * w[i + groups] + a2 * w[i + 2 * groups] + a3 * w[i + 3 * groups];
    }
    for (; i < n; i += groups) a += p.part_acc[(base + i) * D + d] * w[i];
  }
  acc[tid] = a;
  __syncthreads();
  if (tid < D) {
    for (int k = 1; k < groups; ++k) a += acc[k * D + tid];
    p.out[(int64_t(t) * p.Hq + h) * D + tid] = ToBf(a / l);
  }
}

// ---- split planning ------------------------------------------------------------------------

// work: CTAs without splitting; the context is split (parts a multiple of `align` tokens, at
// least min_part) until there are about `target` CTAs.
KvSplitPlan PlanFor(int64_t work, int max_ctx, int64_t target, int min_part, int align) {
  max_ctx = std::max(1, max_ctx);
  int64_t splits = 1;
  if (work < target) splits = (target + work - 1) / work;
  splits = std::min<int64_t>({splits, (max_ctx + min_part - 1) / min_part, 512});
  splits = std::max<int64_t>(splits, 1);
  const int per = static_cast<int>((max_ctx + splits - 1) / splits);
  KvSplitPlan plan;
  plan.part_len = ((per + align - 1) / align) * align;
  plan.splits = (max_ctx + plan.part_len - 1) / plan.part_len;
  return plan;
}

// CUDA-core kernel (fp32 caches).
KvSplitPlan PlanSplits(const DeviceContext& ctx, const AttentionMeta& meta,
                       const AttentionShape& shape) {
  const int head_chunks = (shape.num_heads / shape.num_kv_heads + kMaxG - 1) / kMaxG;
  const int64_t work = int64_t(meta.num_tokens) * shape.num_kv_heads * head_chunks;
  return PlanFor(work, meta.max_context_len, int64_t(ctx.num_sms) * 8, 256, 64);
}

// Sets a decode kernel's shared-memory attribute on the context's device, once.
template <int D, bool kC8, bool kSwap = false>
void ConfigureTcDecode(DeviceContext& ctx) {
  bool& done = ctx.decode_configured[D == 128][kSwap ? 2 : kC8 ? 1 : 0];
  if (done) return;
  cudaFuncSetAttribute(TcDecodeKernel<D, kC8, kSwap>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       DecodeSmemBytes<D, kC8>());
  done = true;
}

// Resident CTAs per SM of a decode kernel (queried once per device). The swapped C8 step has
// the same shared memory and launch bounds as the 16-row one, so the planner uses the 16-row
// kernel's figure for both.
template <int D, bool kC8>
int TcDecodeOccupancy(DeviceContext& ctx) {
  int& occ = ctx.decode_occupancy[D == 128][kC8];
  if (occ == 0) {
    ConfigureTcDecode<D, kC8>(ctx);
    int n = 0;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, TcDecodeKernel<D, kC8, false>, tc::kThreads,
                                                  DecodeSmemBytes<D, kC8>());
    occ = std::max(1, n);
  }
  return occ;
}
int TcDecodeOccupancy(DeviceContext& ctx, int D, bool c8) {
  if (D == 128) return c8 ? TcDecodeOccupancy<128, true>(ctx) : TcDecodeOccupancy<128, false>(ctx);
  return c8 ? TcDecodeOccupancy<64, true>(ctx) : TcDecodeOccupancy<64, false>(ctx);
}

// Tensor-core decode kernel (bf16 / int8 caches): every CTA streams one part, so the step takes
// about waves x part (+ a fixed cost per CTA); pick the split count minimizing that, where
// waves = ceil(CTAs / resident CTA slots). For a given wave count the best split count is the
// largest that still fits in it, so only those candidates (one per wave count, a few) are
// evaluated (once per step when the caller plans, PlanPagedAttention).
KvSplitPlan PlanTcSplits(DeviceContext& ctx, const AttentionMeta& meta, const AttentionShape& shape,
                         bool c8) {
  const int G = shape.num_heads / shape.num_kv_heads;
  const int head_tiles = (G + kDecodeRows - 1) / kDecodeRows;
  const int64_t work =
      std::max<int64_t>(1, int64_t(meta.num_seqs) * shape.num_kv_heads * head_tiles);
  const int64_t slots = int64_t(ctx.num_sms) * TcDecodeOccupancy(ctx, shape.head_dim, c8);
  const int ctxlen = std::max(1, meta.max_context_len);
  constexpr int kCtaCost = 192;  // keys' worth of prologue / merge / reduce per CTA
  const int max_splits = std::max(1, std::min(kMaxSplits, (ctxlen + 255) / 256));
  KvSplitPlan best;
  int64_t best_cost = -1;
  auto consider = [&](int64_t want) {
    const int sp = static_cast<int>(std::clamp<int64_t>(want, 1, max_splits));
    const int part = ((ctxlen + sp - 1) / sp + tc::kTileKeys - 1) / tc::kTileKeys * tc::kTileKeys;
    const int splits = (ctxlen + part - 1) / part;
    const int64_t waves = (work * splits + slots - 1) / slots;
    const int64_t cost = waves * (part + kCtaCost);
    if (best_cost < 0 || cost < best_cost || (cost == best_cost && splits < best.splits)) {
      best_cost = cost;
      best.splits = splits;
      best.part_len = part;
    }
  };
  consider(1);
  consider(max_splits);
  for (int64_t w = 1; w <= 16; ++w) consider(w * slots / work);
  return best;
}

bool UsesTensorCores(KvDType dtype, const AttentionShape& shape) {
  return dtype != KvDType::kF32 && (shape.head_dim == 64 || shape.head_dim == 128);
}

template <int D, typename T>
void LaunchTyped(const AttnParams& p, dim3 grid, cudaStream_t stream) {
  SplitKvAttentionKernel<D, T><<<grid, kThreads, 0, stream>>>(p);
}

template <int D, bool kC8, bool kSwap = false>
void LaunchTcDecode(DeviceContext& ctx, const tc::TcParams& p, dim3 grid, cudaStream_t stream) {
  ConfigureTcDecode<D, kC8, kSwap>(ctx);
  TcDecodeKernel<D, kC8, kSwap><<<grid, tc::kThreads, DecodeSmemBytes<D, kC8>(), stream>>>(p);
}

void LaunchTensorCoreAttention(DeviceContext& ctx, const AttentionPlan& ap, const uint16_t* qkv,
                               const AttentionMeta& meta, const KvLayerView& cache,
                               const AttentionShape& shape, uint16_t* out, void* workspace,
                               cudaStream_t stream) {
  if (meta.max_query_len > 1) {
    LaunchPrefillAttention(ctx, ap.prefill, qkv, meta, cache, shape, out, workspace, stream);
  }
  const bool c8 = cache.dtype == KvDType::kInt8;
  const KvSplitPlan& plan = c8 ? ap.decode_int8 : ap.decode_bf16;
  tc::TcParams p{};
  FillAttentionParams(p, qkv, meta, cache, shape, out);
  p.head_tiles = (p.G + kDecodeRows - 1) / kDecodeRows;
  p.num_splits = plan.splits;
  p.part_len = plan.part_len;
  const size_t parts = size_t(meta.num_seqs) * shape.num_heads * plan.splits;
  p.part_ml = static_cast<float*>(workspace);
  p.part_acc = plan.splits > 1 ? static_cast<float*>(workspace) + parts * 2 : nullptr;
  dim3 grid(static_cast<unsigned>(meta.num_seqs), static_cast<unsigned>(p.Hkv * p.head_tiles),
            static_cast<unsigned>(plan.splits));
  const bool swap = c8 && p.G <= 8 && ctx.decode_swap;
  if (shape.head_dim == 128) {
    swap ? LaunchTcDecode<128, true, true>(ctx, p, grid, stream)
    : c8 ? LaunchTcDecode<128, true>(ctx, p, grid, stream)
         : LaunchTcDecode<128, false>(ctx, p, grid, stream);
  } else {
    swap ? LaunchTcDecode<64, true, true>(ctx, p, grid, stream)
    : c8 ? LaunchTcDecode<64, true>(ctx, p, grid, stream)
         : LaunchTcDecode<64, false>(ctx, p, grid, stream);
  }
  if (plan.splits > 1) {
    dim3 rgrid(static_cast<unsigned>(meta.num_seqs), static_cast<unsigned>(p.Hq));
    TcDecodeReduceKernel<<<rgrid, kReduceThreads, 0, stream>>>(p, shape.head_dim);
  }
}

}  // namespace

void PlanPagedAttention(DeviceContext& ctx, const AttentionMeta& meta, const AttentionShape& shape,
                        const KvDType* only, AttentionPlan& plan) {
  plan.planned = true;
  plan.num_heads = shape.num_heads;
  plan.num_kv_heads = shape.num_kv_heads;
  plan.head_dim = shape.head_dim;
  plan.num_seqs = meta.num_seqs;
  plan.num_tokens = meta.num_tokens;
  plan.max_query_len = meta.max_query_len;
  plan.max_context_len = meta.max_context_len;
  plan.no_cached_keys = meta.no_cached_keys;
  plan.decode_bf16 = plan.decode_int8 = plan.decode_f32 = KvSplitPlan{};
  plan.prefill = KvSplitPlan{1, 1 << 30};
  if (shape.num_kv_heads <= 0 || shape.num_heads % shape.num_kv_heads != 0) return;
  auto wanted = [&](KvDType d) { return only == nullptr || *only == d; };
  if (UsesTensorCores(KvDType::kBF16, shape)) {
    if (wanted(KvDType::kBF16)) plan.decode_bf16 = PlanTcSplits(ctx, meta, shape, false);
    if (wanted(KvDType::kInt8)) plan.decode_int8 = PlanTcSplits(ctx, meta, shape, true);
    if (meta.max_query_len > 1 && meta.num_seqs > 0 &&
        (wanted(KvDType::kBF16) || wanted(KvDType::kInt8))) {
      plan.prefill = PlanPrefillSplit(ctx, meta, shape);
    }
  }
  // The CUDA-core kernel serves fp32 caches (and any dtype at head dims the tensor-core kernels
  // lack, which Attention refuses today).
  if (wanted(KvDType::kF32) || !UsesTensorCores(KvDType::kBF16, shape)) {
    plan.decode_f32 = PlanSplits(ctx, meta, shape);
  }
}

bool PlanMatches(const AttentionPlan& plan, const AttentionMeta& meta,
                 const AttentionShape& shape) {
  return plan.planned && plan.num_heads == shape.num_heads &&
         plan.num_kv_heads == shape.num_kv_heads && plan.head_dim == shape.head_dim &&
         plan.num_seqs == meta.num_seqs && plan.num_tokens == meta.num_tokens &&
         plan.max_query_len == meta.max_query_len && plan.max_context_len == meta.max_context_len &&
         plan.no_cached_keys == meta.no_cached_keys;
}

size_t PagedAttentionWorkspaceBytes(const AttentionPlan& plan, const AttentionMeta& meta,
                                    const AttentionShape& shape, KvDType dtype) {
  if (UsesTensorCores(dtype, shape)) {
    // Tensor-core decode: partials per decode sequence (S, Hq, splits, D + 2); the prefill
    // kernel's partials use the same bytes before it (stream-ordered).
    const int splits = (dtype == KvDType::kInt8 ? plan.decode_int8 : plan.decode_bf16).splits;
    const size_t decode =
        splits <= 1 ? 0
                    : size_t(meta.num_seqs) * shape.num_heads * splits * (shape.head_dim + 2) * 4;
    return std::max(decode, PrefillSplitWorkspaceBytes(plan.prefill, meta, shape));
  }
  // CUDA-core kernel: partials per token (T, Hq, splits, D + 2).
  const int splits = plan.decode_f32.splits;
  if (splits <= 1) return 0;
  return size_t(meta.num_tokens) * shape.num_heads * splits * (shape.head_dim + 2) * 4;
}

void LaunchPagedAttention(DeviceContext& ctx, const AttentionPlan& ap, const uint16_t* qkv,
                          const AttentionMeta& meta, const KvLayerView& cache,
                          const AttentionShape& shape, uint16_t* out, void* workspace,
                          cudaStream_t stream) {
  if (meta.num_tokens <= 0) return;
  if (UsesTensorCores(cache.dtype, shape)) {
    return LaunchTensorCoreAttention(ctx, ap, qkv, meta, cache, shape, out, workspace, stream);
  }
  // fp32 caches: the CUDA-core kernel (the prefill kernel refuses them, so it serves every
  // token).
  bool skip_prefill = false;
  if (meta.max_query_len > 1) {
    skip_prefill =
        LaunchPrefillAttention(ctx, ap.prefill, qkv, meta, cache, shape, out, workspace, stream);
  }
  const KvSplitPlan& plan = ap.decode_f32;
  AttnParams p{};
  FillAttentionParams(p, qkv, meta, cache, shape, out);
  p.head_chunks = (p.G + kMaxG - 1) / kMaxG;
  p.num_splits = plan.splits;
  p.part_len = plan.part_len;
  p.skip_prefill = skip_prefill ? 1 : 0;
  const size_t parts = size_t(meta.num_tokens) * shape.num_heads * plan.splits;
  p.part_ml = static_cast<float*>(workspace);
  p.part_acc = plan.splits > 1 ? static_cast<float*>(workspace) + parts * 2 : nullptr;
  dim3 grid(static_cast<unsigned>(meta.num_tokens), static_cast<unsigned>(p.Hkv * p.head_chunks),
            static_cast<unsigned>(plan.splits));
  if (shape.head_dim == 128) {  // only fp32 caches reach this kernel
    LaunchTyped<128, float>(p, grid, stream);
  } else {
    LaunchTyped<64, float>(p, grid, stream);
  }
  if (plan.splits > 1) {
    dim3 rgrid(static_cast<unsigned>(meta.num_tokens), static_cast<unsigned>(p.Hq));
    SplitKvReduceKernel<<<rgrid, shape.head_dim, 0, stream>>>(p, shape.head_dim);
  }
}

}  // namespace c8::cuda
