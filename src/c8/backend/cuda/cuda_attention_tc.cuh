// Tensor-core paged attention (mma.sync m16n8k16, fp32 accumulate) shared by the prefill
// kernel (cuda_prefill_attention.cu) and the decode kernel (cuda_paged_attention.cu).
//
// A CTA serves one (sequence, kv head) and a tile of "rows": row r of a sequence is the pair
// (new token r / G, query head r % G) of that kv head's group (GQA packing), so every K/V byte
// staged in shared memory serves all G heads.
//   prefill: 4 warps x 16 rows = 64 rows per CTA, every warp takes all 64 keys of a tile;
//   decode:  16 rows (the G heads of one token), the 4 warps take 16 keys each of a tile and
//            merge their (max, sum, acc) at the end; the context is also split across CTAs.
// K/V tiles of 64 keys go global -> shared with cp.async (zero-filled past the end) through a
// kStages-deep ring, 16-byte chunks XOR-swizzled (Swz) so fragment reads are conflict-free.
//
// Operand layouts (g = lane / 4, c = lane % 4):
//   S = Q K^T: the contraction (head dim) is permuted so that lane c owns dims
//     [c D/4, (c+1) D/4) of every K row (contiguous 16-byte reads). k-step ks uses dims
//     c D/4 + 4 ks + {0,1} (fragment k = 2c, 2c+1) and + {2,3} (k = 2c+8, 2c+9); Q's A
//     fragments are built with the same permutation straight from global memory.
//   O = P V: P's A fragments are S's accumulators (FlashAttention-2), V's B fragments are
//     built from two key rows with byte permutes; output column n of n-block j is
//     dim VDim(n, j) = (j / 8) 64 + 8 n + j % 8.
// C8 int8 tiles use fp16 mma: int8 x becomes the exact fp16 1152 + x with one XOR and one
// byte permute per pair ((x ^ 0x80) | 0x6400 = 1024 + 128 + x), never a dequantized copy. With
// q' = fp16(q * s_k) and the bias folded in:
//   score = q'.(k + 1152) - sum q' (1152 + o_k)       (bias folded: 128-term sums only)
//   sum_j p_j v_j = s_v (sum_j p_j v_j - o_v sum_j p_j)  (V fragments get the bias removed by
//   one HSUB2: keeping it would cancel ~1152 l against the signal over long contexts)
// bf16 tiles (bf16 cache, fresh keys of this step) use bf16 mma on the raw values.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace c8::cuda::tc {

constexpr int kThreads = 128;
constexpr int kTileKeys = 64;
constexpr float kNegBig = -1e30f;
constexpr uint32_t kHalfMagic = 0x64646464u;
constexpr float kBias = 1152.0f;

struct TcParams {
  const uint16_t* qkv;  // (T, (Hq + 2 Hkv) D) bf16
  uint16_t* out;        // (T, Hq D) bf16
  const int32_t* query_start;
  const int32_t* num_cached;
  const int32_t* block_tables;  // (S, max_blocks)
  int32_t num_seqs, max_blocks, block_size;
  int32_t Hq, Hkv, G, head_tiles;
  float scale_log2;  // softmax scale * log2(e)
  const void* kc;    // (num_blocks, Hkv, block_size, D), int8 or bf16
  const void* vc;
  const float *ks, *ko, *vs, *vo;  // (Hkv D) each, C8 only
  // Decode split-KV: CTA z takes keys [z part_len, (z + 1) part_len).
  int32_t num_splits, part_len;
  float* part_ml;   // (T, Hq, splits, 2): max (log2 domain), sum
  float* part_acc;  // (T, Hq, splits, D)
};

// ---- PTX wrappers ----------------------------------------------------------------------
__device__ __forceinline__ uint32_t Prmt(uint32_t a, uint32_t b, uint32_t sel) {
  return __byte_perm(a, b, sel);
}
__device__ __forceinline__ float Ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem, bool valid) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void CpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
// d += a b: a (16 x 16) row, b (16 x 8) col; fp16 (kF16) or bf16 inputs, fp32 accumulate.
template <bool kF16>
__device__ __forceinline__ void Mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1) {
  if constexpr (kF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}
// Two floats -> packed fp16x2 / bf16x2 (lo in the low half); `rounded` gets lo + hi as rounded.
template <bool kF16>
__device__ __forceinline__ uint32_t Pack2(float lo, float hi, float& rounded) {
  if constexpr (kF16) {
    const __half2 h = __floats2half2_rn(lo, hi);
    const float2 f = __half22float2(h);
    rounded = f.x + f.y;
    return *reinterpret_cast<const uint32_t*>(&h);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    const float2 f = __bfloat1622float2(h);
    rounded = f.x + f.y;
    return *reinterpret_cast<const uint32_t*>(&h);
  }
}
// fp16x2 (1152 + a, 1152 + b) -> (a, b), exact.
__device__ __forceinline__ uint32_t Unbias(uint32_t h2) {
  uint32_t r;
  asm("sub.f16x2 %0, %1, %2;" : "=r"(r) : "r"(h2), "r"(0x64806480u));
  return r;
}
__device__ __forceinline__ float BfToF(uint32_t bits16) {
  return __uint_as_float(bits16 << 16);
}

// ---- shared-memory tile layout -----------------------------------------------------------
// A tile is 64 rows of RB bytes (RB = D * element size: 64, 128 or 256); 16-byte chunk `ch` of
// row `key` lives at Swz<RB>(key, ch).
template <int RB>
__device__ __forceinline__ int Swz(int key, int ch) {
  if constexpr (RB == 256) {
    return key * 256 + ((ch ^ (key & 7) ^ ((ch >> 3) << 1)) << 4);
  } else if constexpr (RB == 128) {
    return key * 128 + ((ch ^ (key & 7)) << 4);
  } else {
    return key * 64 + ((ch ^ ((key >> 1) & 3)) << 4);
  }
}
// Output dim of accumulator column n (0..7) of n-block j (0..D/8-1).
__device__ __forceinline__ int VDim(int n, int j) {
  return (j / 8) * 64 + 8 * n + j % 8;
}

// Online-softmax state of one warp: 16 rows, this lane holds rows g (index 0) and g + 8 (1).
template <int D>
struct WarpState {
  float o[D / 8][4];  // accumulator fragments (n-block j: rows g: [0],[1]; g + 8: [2],[3])
  float m[2], l[2];   // running max (log2 domain, quad-uniform), lane-partial sum
};

// Q A-fragments of this lane's rows (q0 = row g, q1 = row g + 8; null = zero row), permuted
// like K. kC8: q' = fp16(q * s_k) and qoff = scale_log2 * sum q' (1152 + o_k) (quad-reduced).
template <int D, bool kC8>
__device__ __forceinline__ void LoadQ(const uint16_t* q0, const uint16_t* q1, const float* ks,
                                      const float* ko, float scale_log2, uint32_t (&qa)[D / 16][4],
                                      float (&qoff)[2]) {
  const int c = threadIdx.x % 4;
  const uint16_t* rows[2] = {q0, q1};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float off = 0.0f;
#pragma unroll
    for (int v = 0; v < D / 32; ++v) {  // 8 dims (one uint4) = k-steps 2v, 2v+1
      const int d0 = c * (D / 4) + v * 8;
      uint4 raw = make_uint4(0, 0, 0, 0);
      if (rows[r] != nullptr) raw = *reinterpret_cast<const uint4*>(rows[r] + d0);
      const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
      if constexpr (kC8) {
        uint32_t h[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int d = d0 + 2 * i;
          const __half2 hh = __floats2half2_rn(BfToF(w[i] & 0xffffu) * ks[d],
                                               __uint_as_float(w[i] & 0xffff0000u) * ks[d + 1]);
          const float2 f = __half22float2(hh);
          off = fmaf(f.x, ko[d] + kBias, off);
          off = fmaf(f.y, ko[d + 1] + kBias, off);
          h[i] = *reinterpret_cast<const uint32_t*>(&hh);
        }
        qa[2 * v][r] = h[0], qa[2 * v][r + 2] = h[1];
        qa[2 * v + 1][r] = h[2], qa[2 * v + 1][r + 2] = h[3];
      } else {
        qa[2 * v][r] = w[0], qa[2 * v][r + 2] = w[1];
        qa[2 * v + 1][r] = w[2], qa[2 * v + 1][r + 2] = w[3];
      }
    }
    off += __shfl_xor_sync(0xffffffffu, off, 1);
    off += __shfl_xor_sync(0xffffffffu, off, 2);
    qoff[r] = off * scale_log2;
  }
}

// One warp over kKeys keys [key0, key0 + kKeys) of a staged tile (kC8: int8 rows, else bf16).
// lim[r]: keys with tile index >= lim[r] are masked for row r (g / g + 8).
template <int D, bool kC8, int kKeys>
__device__ __forceinline__ void ProcessTile(const uint8_t* kt, const uint8_t* vt, int key0,
                                            const uint32_t (&qa)[D / 16][4], const float (&qoff)[2],
                                            float scale_log2, const int (&lim)[2],
                                            WarpState<D>& st) {
  constexpr int kRB = D * (kC8 ? 1 : 2);
  constexpr int kNb = kKeys / 8;
  const int lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  float s[kNb][4];
  // S = Q K^T.
#pragma unroll
  for (int nb = 0; nb < kNb; ++nb) {
    s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
    const int key = key0 + nb * 8 + g;
    constexpr int kChunks = D / 4 * (kC8 ? 1 : 2) / 16;
    uint32_t kw[kChunks * 4];
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const uint4 v = *reinterpret_cast<const uint4*>(kt + Swz<kRB>(key, c * kChunks + i));
      kw[4 * i] = v.x, kw[4 * i + 1] = v.y, kw[4 * i + 2] = v.z, kw[4 * i + 3] = v.w;
    }
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      uint32_t b0, b1;
      if constexpr (kC8) {
        const uint32_t x = kw[ks] ^ 0x80808080u;
        b0 = Prmt(x, kHalfMagic, 0x5140);
        b1 = Prmt(x, kHalfMagic, 0x7362);
      } else {
        b0 = kw[2 * ks];
        b1 = kw[2 * ks + 1];
      }
      Mma<kC8>(s[nb], qa[ks], b0, b1);
    }
  }
  // Online softmax (log2 domain).
  const bool masked = min(lim[0], lim[1]) < key0 + kKeys;
  float mx[2] = {st.m[0], st.m[1]};
#pragma unroll
  for (int nb = 0; nb < kNb; ++nb) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = e / 2;
      const int n = key0 + nb * 8 + 2 * c + (e & 1);
      float x = fmaf(s[nb][e], scale_log2, -qoff[r]);
      if (masked) x = n < lim[r] ? x : -INFINITY;
      s[nb][e] = x;
      mx[r] = fmaxf(mx[r], x);
    }
  }
  float alpha[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    alpha[r] = Ex2(st.m[r] - mx[r]);
    st.m[r] = mx[r];
    st.l[r] *= alpha[r];
  }
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    st.o[j][0] *= alpha[0], st.o[j][1] *= alpha[0];
    st.o[j][2] *= alpha[1], st.o[j][3] *= alpha[1];
  }
  // O += P V, 16 keys per k-step.
#pragma unroll
  for (int kt16 = 0; kt16 < kKeys / 16; ++kt16) {
    uint32_t pa[4];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float(&sv)[4] = s[2 * kt16 + h];
      float r0, r1;
      pa[2 * h] = Pack2<kC8>(Ex2(sv[0] - mx[0]), Ex2(sv[1] - mx[0]), r0);
      pa[2 * h + 1] = Pack2<kC8>(Ex2(sv[2] - mx[1]), Ex2(sv[3] - mx[1]), r1);
      st.l[0] += r0;
      st.l[1] += r1;
    }
    // Keys 2c, 2c+1 (b0) and 2c+8, 2c+9 (b1) of this k-step; this lane's V dims VDim(g, j).
    const int kb = key0 + kt16 * 16 + 2 * c;
    const int keys[4] = {kb, kb + 1, kb + 8, kb + 9};
    constexpr int kGroups = D / 64;  // 8-dim groups per lane
    uint32_t vw[4][kGroups * (kC8 ? 2 : 4)];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
#pragma unroll
      for (int h = 0; h < kGroups; ++h) {
        if constexpr (kC8) {
          const uint2 v =
              *reinterpret_cast<const uint2*>(vt + Swz<kRB>(keys[k], 4 * h + g / 2) + 8 * (g & 1));
          vw[k][2 * h] = v.x ^ 0x80808080u;
          vw[k][2 * h + 1] = v.y ^ 0x80808080u;
        } else {
          const uint4 v = *reinterpret_cast<const uint4*>(vt + Swz<kRB>(keys[k], 8 * h + g));
          vw[k][4 * h] = v.x, vw[k][4 * h + 1] = v.y, vw[k][4 * h + 2] = v.z,
                    vw[k][4 * h + 3] = v.w;
        }
      }
    }
#pragma unroll
    for (int w = 0; w < kGroups * (kC8 ? 2 : 4); ++w) {
      if constexpr (kC8) {  // word w = dims 4w..4w+3 of the lane's set (j = 4w + e)
        const uint32_t lo0 = Prmt(vw[0][w], vw[1][w], 0x5140),
                       hi0 = Prmt(vw[0][w], vw[1][w], 0x7362);
        const uint32_t lo1 = Prmt(vw[2][w], vw[3][w], 0x5140),
                       hi1 = Prmt(vw[2][w], vw[3][w], 0x7362);
        Mma<true>(st.o[4 * w + 0], pa, Unbias(Prmt(lo0, kHalfMagic, 0x5140)),
                  Unbias(Prmt(lo1, kHalfMagic, 0x5140)));
        Mma<true>(st.o[4 * w + 1], pa, Unbias(Prmt(lo0, kHalfMagic, 0x7362)),
                  Unbias(Prmt(lo1, kHalfMagic, 0x7362)));
        Mma<true>(st.o[4 * w + 2], pa, Unbias(Prmt(hi0, kHalfMagic, 0x5140)),
                  Unbias(Prmt(hi1, kHalfMagic, 0x5140)));
        Mma<true>(st.o[4 * w + 3], pa, Unbias(Prmt(hi0, kHalfMagic, 0x7362)),
                  Unbias(Prmt(hi1, kHalfMagic, 0x7362)));
      } else {  // word w = dims 2w, 2w+1 (j = 2w + e)
        Mma<false>(st.o[2 * w], pa, Prmt(vw[0][w], vw[1][w], 0x5410),
                   Prmt(vw[2][w], vw[3][w], 0x5410));
        Mma<false>(st.o[2 * w + 1], pa, Prmt(vw[0][w], vw[1][w], 0x7632),
                   Prmt(vw[2][w], vw[3][w], 0x7632));
      }
    }
  }
}

// C8 accumulator -> real values: o = s_v (o - o_v l), l = the quad-reduced row sums.
template <int D>
__device__ __forceinline__ void C8ToReal(WarpState<D>& st, const float* vs, const float* vo) {
  const int c = threadIdx.x % 4;
  float lf[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    lf[r] = st.l[r];
    lf[r] += __shfl_xor_sync(0xffffffffu, lf[r], 1);
    lf[r] += __shfl_xor_sync(0xffffffffu, lf[r], 2);
  }
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int d = VDim(2 * c + e, j);
      const float sv = vs[d], ov = vo[d];
      st.o[j][e] = sv * (st.o[j][e] - ov * lf[0]);
      st.o[j][e + 2] = sv * (st.o[j][e + 2] - ov * lf[1]);
    }
  }
}

// ---- swapped decode tile (C8 caches, groups of <= 8 query heads) --------------------------
// S^T = K Q^T with the 16 keys of a warp's block as the m16 rows and the (up to 8) heads as the
// n8 columns, then O^T = V^T P^T with 16 dims per m-tile: a 16-key block costs D/16 + D/16
// mma (instead of 2 D/16 + D/8 with the heads padded to 16 rows), and the softmax works on 4
// values per lane instead of 8. P^T's B fragments come from S^T's accumulators through
// movmatrix (8x8 b16 transpose in registers). K and V bytes are read and converted exactly as
// in ProcessTile (same swizzle, same 1152-bias fp16 trick).
//
// O^T accumulator m-tile i: rows g / g + 8 = dims VDim(g, 2i) / VDim(g, 2i + 1), columns
// 2c / 2c + 1 = heads; m, l: heads 2c (index 0) and 2c + 1 (1), m uniform over g, l lane-partial.
template <int D>
struct SwapState {
  float o[D / 16][4];
  float m[2], l[2];
};

__device__ __forceinline__ uint32_t MovTrans(uint32_t x) {
  uint32_t y;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
  return y;
}

// One warp over keys [key0, key0 + 16) of a staged int8 tile. qb[ks]: Q^T B fragments of head
// g (b0, b1 of k-step ks, permuted like K); qh: the C8 offsets of heads 2c, 2c + 1 (log2 domain);
// keys with tile index >= lim are masked.
template <int D>
__device__ __forceinline__ void ProcessTileSwapped(const uint8_t* kt, const uint8_t* vt, int key0,
                                                   const uint32_t (&qb)[D / 16][2],
                                                   const float (&qh)[2], float scale_log2, int lim,
                                                   SwapState<D>& st) {
  constexpr int kRB = D;
  const int lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  // S^T (16 keys x 8 heads): this lane (key g | g + 8, heads 2c, 2c + 1).
  float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  {
    constexpr int kChunks = D / 4 / 16;
    uint32_t kw[2][kChunks * 4];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
      for (int i = 0; i < kChunks; ++i) {
        const uint4 v =
            *reinterpret_cast<const uint4*>(kt + Swz<kRB>(key0 + 8 * r + g, c * kChunks + i));
        kw[r][4 * i] = v.x, kw[r][4 * i + 1] = v.y, kw[r][4 * i + 2] = v.z, kw[r][4 * i + 3] = v.w;
      }
    }
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      const uint32_t x0 = kw[0][ks] ^ 0x80808080u, x1 = kw[1][ks] ^ 0x80808080u;
      const uint32_t a[4] = {Prmt(x0, kHalfMagic, 0x5140), Prmt(x1, kHalfMagic, 0x5140),
                             Prmt(x0, kHalfMagic, 0x7362), Prmt(x1, kHalfMagic, 0x7362)};
      Mma<true>(s, a, qb[ks][0], qb[ks][1]);
    }
  }
  // Online softmax per head (column), log2 domain.
  const bool masked = lim < key0 + 16;
  float mx[2] = {st.m[0], st.m[1]};
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    float x = fmaf(s[e], scale_log2, -qh[e & 1]);
    if (masked) x = key0 + 8 * (e >> 1) + g < lim ? x : -INFINITY;
    s[e] = x;
    mx[e & 1] = fmaxf(mx[e & 1], x);
  }
  float alpha[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 4));
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 8));
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 16));
    alpha[h] = Ex2(st.m[h] - mx[h]);
    st.m[h] = mx[h];
    st.l[h] *= alpha[h];
  }
#pragma unroll
  for (int i = 0; i < D / 16; ++i) {
    st.o[i][0] *= alpha[0], st.o[i][1] *= alpha[1];
    st.o[i][2] *= alpha[0], st.o[i][3] *= alpha[1];
  }
  // P (fp16; the sums use the same rounded values the mma sees), then P^T B fragments.
  const __half2 p0 = __floats2half2_rn(Ex2(s[0] - mx[0]), Ex2(s[1] - mx[1]));  // key g
  const __half2 p1 = __floats2half2_rn(Ex2(s[2] - mx[0]), Ex2(s[3] - mx[1]));  // key g + 8
  {
    const float2 f0 = __half22float2(p0), f1 = __half22float2(p1);
    st.l[0] += f0.x + f1.x;
    st.l[1] += f0.y + f1.y;
  }
  const uint32_t b0 = MovTrans(*reinterpret_cast<const uint32_t*>(&p0));  // head g, keys 2c, 2c+1
  const uint32_t b1 = MovTrans(*reinterpret_cast<const uint32_t*>(&p1));  // keys 2c+8, 2c+9
  // O^T += V^T P^T: keys 2c, 2c + 1, 2c + 8, 2c + 9 of the block; dims VDim(g, j).
  const int kb = key0 + 2 * c;
  const int keys[4] = {kb, kb + 1, kb + 8, kb + 9};
  constexpr int kGroups = D / 64;
  uint32_t vw[4][kGroups * 2];
#pragma unroll
  for (int k = 0; k < 4; ++k) {
#pragma unroll
    for (int h = 0; h < kGroups; ++h) {
      const uint2 v =
          *reinterpret_cast<const uint2*>(vt + Swz<kRB>(keys[k], 4 * h + g / 2) + 8 * (g & 1));
      vw[k][2 * h] = v.x ^ 0x80808080u;
      vw[k][2 * h + 1] = v.y ^ 0x80808080u;
    }
  }
#pragma unroll
  for (int w = 0; w < kGroups * 2; ++w) {  // word w = dims j = 4w .. 4w + 3: m-tiles 2w, 2w + 1
    const uint32_t lo0 = Prmt(vw[0][w], vw[1][w], 0x5140), hi0 = Prmt(vw[0][w], vw[1][w], 0x7362);
    const uint32_t lo1 = Prmt(vw[2][w], vw[3][w], 0x5140), hi1 = Prmt(vw[2][w], vw[3][w], 0x7362);
    const uint32_t a0[4] = {
        Unbias(Prmt(lo0, kHalfMagic, 0x5140)), Unbias(Prmt(lo0, kHalfMagic, 0x7362)),
        Unbias(Prmt(lo1, kHalfMagic, 0x5140)), Unbias(Prmt(lo1, kHalfMagic, 0x7362))};
    Mma<true>(st.o[2 * w], a0, b0, b1);
    const uint32_t a1[4] = {
        Unbias(Prmt(hi0, kHalfMagic, 0x5140)), Unbias(Prmt(hi0, kHalfMagic, 0x7362)),
        Unbias(Prmt(hi1, kHalfMagic, 0x5140)), Unbias(Prmt(hi1, kHalfMagic, 0x7362))};
    Mma<true>(st.o[2 * w + 1], a1, b0, b1);
  }
}

// Swapped C8 accumulators -> real values (o = s_v (o - o_v l)) written to the decode merge
// buffers: sm_o (4 warps, 16 rows, D) row = head, sm_ml (4, 16, 2) = (max, sum).
template <int D>
__device__ __forceinline__ void SwapToShared(SwapState<D>& st, const float* vs, const float* vo,
                                             float* sm_o, float* sm_ml, int warp) {
  const int lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  float lf[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    lf[h] = st.l[h];
    lf[h] += __shfl_xor_sync(0xffffffffu, lf[h], 4);
    lf[h] += __shfl_xor_sync(0xffffffffu, lf[h], 8);
    lf[h] += __shfl_xor_sync(0xffffffffu, lf[h], 16);
  }
  float* o0 = sm_o + (warp * 16 + 2 * c) * D;
  float* o1 = o0 + D;
#pragma unroll
  for (int i = 0; i < D / 16; ++i) {
    const int da = VDim(g, 2 * i), db = VDim(g, 2 * i + 1);
    const float sa = vs[da], oa = vo[da], sb = vs[db], ob = vo[db];
    o0[da] = sa * (st.o[i][0] - oa * lf[0]);
    o1[da] = sa * (st.o[i][1] - oa * lf[1]);
    o0[db] = sb * (st.o[i][2] - ob * lf[0]);
    o1[db] = sb * (st.o[i][3] - ob * lf[1]);
  }
  if (g == 0) {
    sm_ml[(warp * 16 + 2 * c) * 2] = st.m[0];
    sm_ml[(warp * 16 + 2 * c) * 2 + 1] = lf[0];
    sm_ml[(warp * 16 + 2 * c + 1) * 2] = st.m[1];
    sm_ml[(warp * 16 + 2 * c + 1) * 2 + 1] = lf[1];
  }
}

// Stages tile keys [0, 64) of K and V into `kd`, `vd` (RB-byte rows). off(key) is the byte
// offset of the row in both kbase and vbase, or -1 for a zero row.
template <int RB, typename RowOff>
__device__ __forceinline__ void StageTile(uint8_t* kd, uint8_t* vd, const uint8_t* kbase,
                                          const uint8_t* vbase, RowOff off) {
  constexpr int kCpr = RB / 16;
  constexpr int kItems = kTileKeys * kCpr;
  static_assert(kItems % kThreads == 0, "tile items");
#pragma unroll
  for (int i = 0; i < kItems / kThreads; ++i) {
    const int item = threadIdx.x + i * kThreads;
    const int key = item / kCpr, ch = item % kCpr;
    const int64_t o = off(key);
    const bool ok = o >= 0;
    const int64_t src = ok ? o + ch * 16 : 0;
    CpAsync16(kd + Swz<RB>(key, ch), kbase + src, ok);
    CpAsync16(vd + Swz<RB>(key, ch), vbase + src, ok);
  }
}

}  // namespace c8::cuda::tc
