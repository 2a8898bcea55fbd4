// Decode-shaped W8A8 GEMM (T <= a few hundred tokens): y (T, N) = epilogue(xq (T, K) int8 .
// wq (N, K)^T int8), built to stream the int8 weight bytes at memory bandwidth.
//
// Tensor cores with the operands swapped: mma.sync m16n8k32 takes 16 weight rows as its M and
// 8 tokens as its N, so one token costs no more than eight. K is walked in units of 64 bytes;
// inside a unit each thread of a quad reads 16 contiguous bytes of a weight row (and of a
// token row) with one 16-byte load, and the two mma steps of the unit take a fixed permutation
// of those 64 k positions, the same for weights and activations (a dot product does not care
// about the order of k), so every load is a full 64-byte row segment with no shuffles.
//
// Grid: x = token chunk (64 tokens; fastest, so the CTAs reading the same weight rows run
// together and the second chunk's reads hit L2), y = block of 32 weight rows, z = split of K.
// The 8 warps of a CTA take interleaved K units of the CTA's split and sum into shared memory;
// with one split the CTA applies the epilogue itself, otherwise each CTA adds its int32 partial
// sums into a workspace with atomics (exact: integer addition is associative, so the result
// does not depend on order) and the last CTA of a row block (a counter) applies the epilogue and
// leaves workspace and counter at zero for the next call (also inside CUDA graphs).
//
// Epilogue as in cuda_quant_linear.cu's DequantKernel (same fp32 operations, same order):
// y = acc * scale[n] (* tok_scale[t]) (+ shift[n]) (+ bias[n]), bf16 or fp32.
#include <cuda_bf16.h>

#include <algorithm>

#include "c8/backend/cuda/cuda_bf16.cuh"
#include "c8/backend/cuda/cuda_kernels.h"

namespace c8::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kRows = 32;  // weight rows per CTA (two 16-row mma tiles)
constexpr int kUnit = 64;  // bytes of K per unit

__device__ __forceinline__ int4 LoadStreaming(const int8_t* p) {
  int4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.s32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

__device__ __forceinline__ void Mma(int (&c)[4], int a0, int a1, int a2, int a3, int b0, int b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// NT token tiles of 8 (tokens per chunk = 8 NT <= 64); U units in flight per warp.
template <int NT, int U>
__global__ void __launch_bounds__(kThreads)
    Int8SmallMKernel(const int8_t* __restrict__ xq, const int8_t* __restrict__ wq, int T, int N,
                     int K, int units_per_split, Int8Epilogue ep, int32_t* __restrict__ ws,
                     unsigned* __restrict__ counters) {
  constexpr int kTok = 8 * NT;
  constexpr int kPad = kTok + 1;
  __shared__ int32_t red[kRows * kPad];
  __shared__ int last;
  const int tok0 = blockIdx.x * kTok, row0 = blockIdx.y * kRows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  for (int i = threadIdx.x; i < kRows * kPad; i += kThreads) red[i] = 0;

  // Rows g, g + 8 of each 16-row tile (clamped: rows past N compute garbage never stored).
  const int8_t* wrow[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = min(row0 + (i >> 1) * 16 + (i & 1) * 8 + g, N - 1);
    wrow[i] = wq + static_cast<int64_t>(r) * K + t * 16;
  }
  const int8_t* xrow[NT];
  bool xok[NT];
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const int tk = tok0 + j * 8 + g;
    xok[j] = tk < T;
    xrow[j] = xq + static_cast<int64_t>(min(tk, T - 1)) * K + t * 16;
  }

  int acc[2][NT][4];
#pragma unroll
  for (int m = 0; m < 2; ++m)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[m][j][c] = 0;

  const int units = K / kUnit;
  const int u_begin = blockIdx.z * units_per_split;
  const int u_end = min(units, u_begin + units_per_split);
  for (int u0 = u_begin + warp; u0 < u_end; u0 += kWarps * U) {
    int4 w[U][4];
#pragma unroll
    for (int s = 0; s < U; ++s) {
      const int u = u0 + s * kWarps;
      if (u < u_end) {
#pragma unroll
        for (int i = 0; i < 4; ++i)
          w[s][i] = LoadStreaming(wrow[i] + static_cast<int64_t>(u) * kUnit);
      }
    }
#pragma unroll
    for (int s = 0; s < U; ++s) {
      const int u = u0 + s * kWarps;
      if (u >= u_end) break;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        int4 x = make_int4(0, 0, 0, 0);
        if (xok[j])
          x = __ldg(reinterpret_cast<const int4*>(xrow[j] + static_cast<int64_t>(u) * kUnit));
#pragma unroll
        for (int m = 0; m < 2; ++m) {
          const int4& a = w[s][2 * m];      // row g of tile m
          const int4& b = w[s][2 * m + 1];  // row g + 8
          Mma(acc[m][j], a.x, b.x, a.y, b.y, x.x, x.y);
          Mma(acc[m][j], a.z, b.z, a.w, b.w, x.z, x.w);
        }
      }
    }
  }
  __syncthreads();  // red zeroed
#pragma unroll
  for (int m = 0; m < 2; ++m)
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const int r = m * 16 + g, c = j * 8 + 2 * t;
      atomicAdd(&red[r * kPad + c], acc[m][j][0]);
      atomicAdd(&red[r * kPad + c + 1], acc[m][j][1]);
      atomicAdd(&red[(r + 8) * kPad + c], acc[m][j][2]);
      atomicAdd(&red[(r + 8) * kPad + c + 1], acc[m][j][3]);
    }
  __syncthreads();

  const int rows = min(kRows, N - row0), toks = min(kTok, T - tok0);
  if (gridDim.z > 1) {
    for (int i = threadIdx.x; i < rows * toks; i += kThreads) {
      const int r = i % rows, tk = i / rows;
      atomicAdd(&ws[static_cast<int64_t>(tok0 + tk) * N + row0 + r], red[r * kPad + tk]);
    }
    __threadfence();
    __syncthreads();
    unsigned* counter = counters + blockIdx.y * gridDim.x + blockIdx.x;
    if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == gridDim.z - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    for (int i = threadIdx.x; i < rows * toks; i += kThreads) {
      const int r = i % rows, tk = i / rows;
      red[r * kPad + tk] = atomicExch(&ws[static_cast<int64_t>(tok0 + tk) * N + row0 + r], 0);
    }
    if (threadIdx.x == 0) *counter = 0u;
    __syncthreads();
  }
  for (int i = threadIdx.x; i < rows * toks; i += kThreads) {
    const int r = i % rows, tk = i / rows;
    const int n = row0 + r, tg = tok0 + tk;
    float v = __fmul_rn(static_cast<float>(red[r * kPad + tk]), ep.scale[n]);
    if (ep.tok_scale) v = __fmul_rn(v, ep.tok_scale[tg]);
    if (ep.shift) v = __fadd_rn(v, ep.shift[n]);
    if (ep.bias) {
      const float b = ep.bias_f32 ? static_cast<const float*>(ep.bias)[n]
                                  : Bf(static_cast<const uint16_t*>(ep.bias)[n]);
      v = __fadd_rn(v, b);
    }
    const int64_t o = static_cast<int64_t>(tg) * N + n;
    if (ep.y_f32) {
      static_cast<float*>(ep.y)[o] = v;
    } else {
      static_cast<uint16_t*>(ep.y)[o] = ToBf(v);
    }
  }
}

struct Plan {
  int nt = 1;      // token tiles of 8 per chunk
  int chunks = 1;  // token chunks (grid x)
  int row_blocks = 1;
  int splits = 1;
  int units_per_split = 1;
};

Plan MakePlan(int64_t T, int64_t N, int64_t K, int num_sms) {
  Plan p;
  p.nt = T <= 8 ? 1 : T <= 16 ? 2 : T <= 32 ? 4 : 8;
  p.chunks = static_cast<int>((T + 8 * p.nt - 1) / (8 * p.nt));
  p.row_blocks = static_cast<int>((N + kRows - 1) / kRows);
  const int units = static_cast<int>(K / kUnit);
  const int64_t base = static_cast<int64_t>(p.chunks) * p.row_blocks;
  // About 4 CTAs (32 warps) per SM keep enough weight bytes in flight; each split keeps at
  // least two units per warp.
  const int64_t want = static_cast<int64_t>(num_sms) * 4;
  int splits = static_cast<int>(std::max<int64_t>(1, (want + base - 1) / base));
  splits = std::min(splits, std::max(1, units / (2 * kWarps)));
  p.units_per_split = (units + splits - 1) / splits;
  p.splits = (units + p.units_per_split - 1) / p.units_per_split;
  return p;
}

template <int NT>
void Launch(const Plan& p, const int8_t* xq, const int8_t* wq, int64_t T, int64_t N, int64_t K,
            const Int8Epilogue& ep, int32_t* ws, unsigned* counters, cudaStream_t stream) {
  constexpr int U = NT >= 8 ? 2 : 4;
  const dim3 grid(p.chunks, p.row_blocks, p.splits);
  Int8SmallMKernel<NT, U><<<grid, kThreads, 0, stream>>>(xq, wq, static_cast<int>(T),
                                                         static_cast<int>(N), static_cast<int>(K),
                                                         p.units_per_split, ep, ws, counters);
}

}  // namespace

bool Int8SmallMTakes(int64_t T, int64_t N, int64_t K) {
  return T > 0 && N > 0 && K > 0 && K % kUnit == 0 && T * K < (int64_t{1} << 31) &&
         N * K < (int64_t{1} << 40) && N < (int64_t{1} << 30);
}

size_t Int8SmallMWorkspaceBytes(int64_t T, int64_t N) {
  const int64_t chunks = (T + 63) / 64, row_blocks = (N + kRows - 1) / kRows;
  return static_cast<size_t>(T * N) * 4 + static_cast<size_t>(chunks * row_blocks) * 4;
}

void LaunchInt8GemmSmallM(const int8_t* xq, const int8_t* wq, int64_t T, int64_t N, int64_t K,
                          const Int8Epilogue& ep, void* ws, int num_sms, cudaStream_t stream) {
  if (T <= 0 || N <= 0) return;
  const Plan p = MakePlan(T, N, K, num_sms);
  auto* acc = static_cast<int32_t*>(ws);
  auto* counters =
      reinterpret_cast<unsigned*>(static_cast<char*>(ws) + static_cast<size_t>(T * N) * 4);
  switch (p.nt) {
    case 1:
      return Launch<1>(p, xq, wq, T, N, K, ep, acc, counters, stream);
    case 2:
      return Launch<2>(p, xq, wq, T, N, K, ep, acc, counters, stream);
    case 4:
      return Launch<4>(p, xq, wq, T, N, K, ep, acc, counters, stream);
    default:
      return Launch<8>(p, xq, wq, T, N, K, ep, acc, counters, stream);
  }
}

}  // namespace c8::cuda
