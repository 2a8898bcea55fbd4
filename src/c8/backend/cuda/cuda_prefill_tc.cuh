// Prefill warp tile: one warp owns 32 rows (two m16 tiles, FlashAttention-2's 128 x 64 CTA
// tile with 4 warps) so every K / V fragment read from shared memory feeds two mma's (32 FLOP
// per shared byte instead of 16). Operand layouts and the C8 algebra are those of
// cuda_attention_tc.cuh; Q's A fragments live in shared memory (per warp, written once per
// phase) instead of registers, which leaves room for the 2 x D/8 x 4 accumulators.
//
// Q fragment layout in shared memory (per warp): uint4 index (ks * 2 + mt) * 32 + lane holds
// the 4 A-fragment words of m16 tile mt, k-step ks, for this lane (conflict-free reads).
#pragma once

#include "c8/backend/cuda/cuda_attention_tc.cuh"

namespace c8::cuda::tc {

// Online-softmax state of one warp's 32 rows: st[mt] holds m16 tile mt.
template <int D>
using WarpState32 = WarpState<D>[2];

// Bytes of one warp's Q fragments: 32 rows x D 16-bit values.
template <int D>
constexpr int kQWarpBytes = 32 * D * 2;

// Loads the A fragments of rows q[mt][r] (row g + 8 r of m16 tile mt; null = zero row) into
// this warp's Q region `qs` (kC8: fp16 q' = q s_k, qoff = scale_log2 sum q' (1152 + o_k)).
template <int D, bool kC8>
__device__ __forceinline__ void StoreQ32(const uint16_t* const (&q)[2][2], const float* ks,
                                         const float* ko, float scale_log2, uint8_t* qs,
                                         float (&qoff)[2][2]) {
  const int lane = threadIdx.x % 32;
  __syncwarp();
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
    uint32_t qa[D / 16][4];
    LoadQ<D, kC8>(q[mt][0], q[mt][1], ks, ko, scale_log2, qa, qoff[mt]);
#pragma unroll
    for (int k = 0; k < D / 16; ++k) {
      *reinterpret_cast<uint4*>(qs + ((k * 2 + mt) * 32 + lane) * 16) =
          make_uint4(qa[k][0], qa[k][1], qa[k][2], qa[k][3]);
    }
  }
  __syncwarp();
}

// V B-fragments of two n-blocks (dims [16 np, 16 np + 16)) for keys [k0, k0 + 16) of a bf16
// tile, straight from the swizzled rows with ldmatrix.trans: r[0], r[1] = b0, b1 of n-block
// 2 np, r[2], r[3] of 2 np + 1 (natural layout: column n of n-block j is dim 8 j + n).
template <int RB>
__device__ __forceinline__ void LdVPair(const uint8_t* vt, int k0, int np, uint32_t (&r)[4]) {
  const int lane = threadIdx.x % 32, mi = lane / 8;
  const uint8_t* a = vt + Swz<RB>(k0 + (mi & 1) * 8 + lane % 8, 2 * np + (mi >> 1));
  const uint32_t sa = static_cast<uint32_t>(__cvta_generic_to_shared(a));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sa));
}

// Output dim of accumulator column n (0..7) of n-block j: kNatV (bf16 kernels, V through
// ldmatrix) 8 j + n, else the permuted VDim of cuda_attention_tc.cuh.
template <bool kNatV>
__device__ __forceinline__ int OutDim(int n, int j) {
  return kNatV ? 8 * j + n : VDim(n, j);
}

// One warp, 32 rows, over the kKeys keys [0, kKeys) of a staged tile (kC8: int8 K/V rows with
// fp16 mma, else bf16). kMask: lim[mt][r] is applied (keys with index >= lim are masked for
// that row); without it every key is valid. kNatV: V through ldmatrix (bf16 only).
template <int D, bool kC8, int kKeys, bool kMask, bool kNatV>
__device__ __forceinline__ void ProcessTile32(const uint8_t* kt, const uint8_t* vt,
                                              const uint8_t* qs, const float (&qoff)[2][2],
                                              float scale_log2, const int (&lim)[2][2],
                                              WarpState<D> (&st)[2]) {
  constexpr int kRB = D * (kC8 ? 1 : 2);
  constexpr int kNb = kKeys / 8;
  constexpr int kChunks = D / 4 * (kC8 ? 1 : 2) / 16;  // 16-byte K chunks per lane and row
  constexpr int kKsPer = D / 16 / kChunks;             // k-steps per chunk: bf16 2, int8 4
  const int lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  float s[2][kNb][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int nb = 0; nb < kNb; ++nb)
      s[mt][nb][0] = s[mt][nb][1] = s[mt][nb][2] = s[mt][nb][3] = 0.f;
  }
  // S = Q K^T: chunk i of every K row serves k-steps [i kKsPer, (i + 1) kKsPer) of both tiles.
  // Not unrolled: keeps the compiler from hoisting every chunk's Q fragments (registers).
#pragma unroll 1
  for (int i = 0; i < kChunks; ++i) {
    uint32_t qa[kKsPer][2][4];
#pragma unroll
    for (int kk = 0; kk < kKsPer; ++kk) {
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const uint4 v =
            *reinterpret_cast<const uint4*>(qs + (((i * kKsPer + kk) * 2 + mt) * 32 + lane) * 16);
        qa[kk][mt][0] = v.x, qa[kk][mt][1] = v.y, qa[kk][mt][2] = v.z, qa[kk][mt][3] = v.w;
      }
    }
#pragma unroll
    for (int nb = 0; nb < kNb; ++nb) {
      const uint4 v = *reinterpret_cast<const uint4*>(kt + Swz<kRB>(nb * 8 + g, c * kChunks + i));
      const uint32_t kw[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int kk = 0; kk < kKsPer; ++kk) {
        uint32_t b0, b1;
        if constexpr (kC8) {
          const uint32_t x = kw[kk] ^ 0x80808080u;
          b0 = Prmt(x, kHalfMagic, 0x5140);
          b1 = Prmt(x, kHalfMagic, 0x7362);
        } else {
          b0 = kw[2 * kk];
          b1 = kw[2 * kk + 1];
        }
        Mma<kC8>(s[0][nb], qa[kk][0], b0, b1);
        Mma<kC8>(s[1][nb], qa[kk][1], b0, b1);
      }
    }
  }
  // Online softmax (log2 domain) per m16 tile. The max runs on the raw scores (scale > 0), and
  // p = 2^(s scale - (qoff + m)) is one FFMA + EX2 per score. The rescale is skipped when no
  // row max of the tile moved (alpha = 1 exactly).
  static_assert(!(kC8 && kNatV), "int8 V needs the byte-permute path");
  float bias[2][2];  // qoff + m per row: p = Ex2(fmaf(s, scale_log2, -bias))
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
    float raw[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nb = 0; nb < kNb; ++nb) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2;
        if constexpr (kMask) {
          const int n = nb * 8 + 2 * c + (e & 1);
          s[mt][nb][e] = n < lim[mt][r] ? s[mt][nb][e] : -INFINITY;
        }
        raw[r] = fmaxf(raw[r], s[mt][nb][e]);
      }
    }
    bool moved = false;
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      raw[r] = fmaxf(raw[r], __shfl_xor_sync(0xffffffffu, raw[r], 1));
      raw[r] = fmaxf(raw[r], __shfl_xor_sync(0xffffffffu, raw[r], 2));
      const float m = fmaxf(st[mt].m[r], fmaf(raw[r], scale_log2, -qoff[mt][r]));
      moved |= m != st[mt].m[r];
      alpha[r] = Ex2(st[mt].m[r] - m);
      st[mt].m[r] = m;
      st[mt].l[r] *= alpha[r];
      bias[mt][r] = qoff[mt][r] + m;
    }
    if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        st[mt].o[j][0] *= alpha[0], st[mt].o[j][1] *= alpha[0];
        st[mt].o[j][2] *= alpha[1], st[mt].o[j][3] *= alpha[1];
      }
    }
  }
  // P as packed 16-bit A fragments first (frees the fp32 scores: 32 registers instead of 64).
  // C8 sums the rounded p (the V offset term must see what the mma sees); bf16 the fp32 p.
  uint32_t pa_all[kKeys / 16][2][4];
#pragma unroll
  for (int kt16 = 0; kt16 < kKeys / 16; ++kt16) {
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float(&sv)[4] = s[mt][2 * kt16 + h];
        float p[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) p[e] = Ex2(fmaf(sv[e], scale_log2, -bias[mt][e / 2]));
        if constexpr (kC8) {
          float r0, r1;
          pa_all[kt16][mt][2 * h] = Pack2<true>(p[0], p[1], r0);
          pa_all[kt16][mt][2 * h + 1] = Pack2<true>(p[2], p[3], r1);
          st[mt].l[0] += r0;
          st[mt].l[1] += r1;
        } else {
          const __nv_bfloat162 lo = __floats2bfloat162_rn(p[0], p[1]);
          const __nv_bfloat162 hi = __floats2bfloat162_rn(p[2], p[3]);
          pa_all[kt16][mt][2 * h] = *reinterpret_cast<const uint32_t*>(&lo);
          pa_all[kt16][mt][2 * h + 1] = *reinterpret_cast<const uint32_t*>(&hi);
          st[mt].l[0] += p[0] + p[1];
          st[mt].l[1] += p[2] + p[3];
        }
      }
    }
  }
  // O += P V, 16 keys per k-step; each V word feeds both m16 tiles.
#pragma unroll
  for (int kt16 = 0; kt16 < kKeys / 16; ++kt16) {
    const uint32_t(&pa)[2][4] = pa_all[kt16];
    if constexpr (kNatV) {
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t b[4];
        LdVPair<kRB>(vt, kt16 * 16, np, b);
        Mma<false>(st[0].o[2 * np], pa[0], b[0], b[1]);
        Mma<false>(st[1].o[2 * np], pa[1], b[0], b[1]);
        Mma<false>(st[0].o[2 * np + 1], pa[0], b[2], b[3]);
        Mma<false>(st[1].o[2 * np + 1], pa[1], b[2], b[3]);
      }
      continue;
    }
    const int kb = kt16 * 16 + 2 * c;
    const int keys[4] = {kb, kb + 1, kb + 8, kb + 9};
    constexpr int kGroups = D / 64;      // 8-dim groups per lane
    constexpr int kWords = kC8 ? 2 : 4;  // words per key and group
#pragma unroll
    for (int hg = 0; hg < kGroups; ++hg) {
      uint32_t vw[4][kWords];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if constexpr (kC8) {
          const uint2 v =
              *reinterpret_cast<const uint2*>(vt + Swz<kRB>(keys[k], 4 * hg + g / 2) + 8 * (g & 1));
          vw[k][0] = v.x ^ 0x80808080u;
          vw[k][1] = v.y ^ 0x80808080u;
        } else {
          const uint4 v = *reinterpret_cast<const uint4*>(vt + Swz<kRB>(keys[k], 8 * hg + g));
          vw[k][0] = v.x, vw[k][1] = v.y, vw[k][2] = v.z, vw[k][3] = v.w;
        }
      }
#pragma unroll
      for (int wl = 0; wl < kWords; ++wl) {
        const int w = hg * kWords + wl;
        if constexpr (kC8) {  // word w = dims 4w..4w+3 of the lane's set (j = 4w + e)
          const uint32_t lo0 = Prmt(vw[0][wl], vw[1][wl], 0x5140),
                         hi0 = Prmt(vw[0][wl], vw[1][wl], 0x7362);
          const uint32_t lo1 = Prmt(vw[2][wl], vw[3][wl], 0x5140),
                         hi1 = Prmt(vw[2][wl], vw[3][wl], 0x7362);
          const uint32_t b[4][2] = {
              {Unbias(Prmt(lo0, kHalfMagic, 0x5140)), Unbias(Prmt(lo1, kHalfMagic, 0x5140))},
              {Unbias(Prmt(lo0, kHalfMagic, 0x7362)), Unbias(Prmt(lo1, kHalfMagic, 0x7362))},
              {Unbias(Prmt(hi0, kHalfMagic, 0x5140)), Unbias(Prmt(hi1, kHalfMagic, 0x5140))},
              {Unbias(Prmt(hi0, kHalfMagic, 0x7362)), Unbias(Prmt(hi1, kHalfMagic, 0x7362))}};
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            Mma<true>(st[0].o[4 * w + e], pa[0], b[e][0], b[e][1]);
            Mma<true>(st[1].o[4 * w + e], pa[1], b[e][0], b[e][1]);
          }
        } else {  // word w = dims 2w, 2w+1 (j = 2w + e)
          const uint32_t b00 = Prmt(vw[0][wl], vw[1][wl], 0x5410),
                         b01 = Prmt(vw[2][wl], vw[3][wl], 0x5410);
          const uint32_t b10 = Prmt(vw[0][wl], vw[1][wl], 0x7632),
                         b11 = Prmt(vw[2][wl], vw[3][wl], 0x7632);
          Mma<false>(st[0].o[2 * w], pa[0], b00, b01);
          Mma<false>(st[1].o[2 * w], pa[1], b00, b01);
          Mma<false>(st[0].o[2 * w + 1], pa[0], b10, b11);
          Mma<false>(st[1].o[2 * w + 1], pa[1], b10, b11);
        }
      }
    }
  }
}

}  // namespace c8::cuda::tc
