// Batched sampling: one block per row runs the host Sampler's steps (c8/sampling/sampler.h)
// over the row's fp32 logits in device memory:
//   copy + NaN/+inf check -> penalties -> min_tokens mask -> greedy argmax | temperature ->
//   min_p -> top_k -> top_p -> exponential race (Philox4x32-10, same uniforms as SamplerRng)
// then raw-logit logprobs (log_softmax, rank, top-N) for rows that ask.
// top_k and top_p thresholds are found by a 4-pass MSB radix select over the order-preserving
// key of the float logits, weighting each kept token by 1 (top_k) or exp(l - max) (top_p):
// the threshold is the largest value t with weight(l >= t) >= target, so ties at the boundary
// are kept exactly as the host does.
#include <cfloat>
#include <cstdint>

#include "c8/backend/cuda/cuda_kernels.h"

namespace c8::cuda {

namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 256;

struct Shared {
  double hist[kWarps][kBins];
  double red_d[kWarps];
  float red_f[kWarps];
  int32_t red_i[kWarps];
  int32_t red_i2[kWarps];
  double bcast_d;
  float bcast_f;
  int32_t bcast_i;
  uint32_t bcast_u;
};

__device__ __forceinline__ uint32_t KeyOf(float v) {
  const uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float ValueOfKey(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

__device__ double BlockSumD(double v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  __syncthreads();
  if (l == 0) s.red_d[w] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0.0;
    for (int i = 0; i < kWarps; ++i) t += s.red_d[i];
    s.bcast_d = t;
  }
  __syncthreads();
  return s.bcast_d;
}

__device__ float BlockMaxF(float v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  __syncthreads();
  if (l == 0) s.red_f[w] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float t = -INFINITY;
    for (int i = 0; i < kWarps; ++i) t = fmaxf(t, s.red_f[i]);
    s.bcast_f = t;
  }
  __syncthreads();
  return s.bcast_f;
}

// (v, id) better: larger v, then lower id. id < 0 = none.
__device__ __forceinline__ bool BetterF(float v, int32_t id, float bv, int32_t bid) {
  if (id < 0) return false;
  if (bid < 0) return true;
  return v > bv || (v == bv && id < bid);
}
__device__ __forceinline__ bool BetterD(double v, int32_t id, double bv, int32_t bid) {
  if (id < 0) return false;
  if (bid < 0) return true;
  return v > bv || (v == bv && id < bid);
}

// Block argmax of (v, id), ties to the lowest id; returns the winning id (-1 if none).
__device__ int32_t BlockArgMaxF(float v, int32_t id, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, id, o);
    if (BetterF(ov, oi, v, id)) v = ov, id = oi;
  }
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  __syncthreads();
  if (l == 0) s.red_f[w] = v, s.red_i[w] = id;
  __syncthreads();
  if (threadIdx.x == 0) {
    float bv = 0.0f;
    int32_t bi = -1;
    for (int i = 0; i < kWarps; ++i) {
      if (BetterF(s.red_f[i], s.red_i[i], bv, bi)) bv = s.red_f[i], bi = s.red_i[i];
    }
    s.bcast_i = bi;
  }
  __syncthreads();
  return s.bcast_i;
}

__device__ int32_t BlockArgMaxD(double v, int32_t id, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) {
    const double ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, id, o);
    if (BetterD(ov, oi, v, id)) v = ov, id = oi;
  }
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  __syncthreads();
  if (l == 0) s.red_d[w] = v, s.red_i[w] = id;
  __syncthreads();
  if (threadIdx.x == 0) {
    double bv = 0.0;
    int32_t bi = -1;
    for (int i = 0; i < kWarps; ++i) {
      if (BetterD(s.red_d[i], s.red_i[i], bv, bi)) bv = s.red_d[i], bi = s.red_i[i];
    }
    s.bcast_i = bi;
  }
  __syncthreads();
  return s.bcast_i;
}

// Philox4x32-10, as c8::Philox4x32_10.
__device__ __forceinline__ uint4 Philox(uint4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    const uint32_t hi0 = __umulhi(kM0, c.x), lo0 = kM0 * c.x;
    const uint32_t hi1 = __umulhi(kM1, c.z), lo1 = kM1 * c.z;
    c = make_uint4(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
  }
  return c;
}

struct RowState {
  const float* w;  // processed logits
  float max;
  double min_p_logit;  // -inf when off
  float thr_k, thr_p;  // -inf when off
  __device__ bool Kept(float v) const {
    return v != -INFINITY && static_cast<double>(v) >= min_p_logit && v >= thr_k && v >= thr_p;
  }
};

// Largest value t among kept tokens with weight(kept, l >= t) >= target; weight = 1 (by_mass
// false) or exp(l - max). Returns -inf when the target is not reached (keep everything).
__device__ float RadixThreshold(const RowState& st, int64_t V, bool by_mass, double target,
                                Shared& s) {
  const int w = threadIdx.x / 32;
  uint32_t prefix = 0;
  double above = 0.0;  // weight of kept tokens whose key is above the current prefix range
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 24 - 8 * pass;
    const uint32_t mask_hi = pass == 0 ? 0u : (0xffffffffu << (32 - 8 * pass));
    for (int i = threadIdx.x; i < kWarps * kBins; i += kThreads) (&s.hist[0][0])[i] = 0.0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < V; i += kThreads) {
      const float v = st.w[i];
      if (!st.Kept(v)) continue;
      const uint32_t k = KeyOf(v);
      if ((k & mask_hi) != prefix) continue;
      const double wt = by_mass ? exp(static_cast<double>(v) - st.max) : 1.0;
      atomicAdd(&s.hist[w][(k >> shift) & 0xff], wt);
    }
    __syncthreads();
    if (threadIdx.x < kBins) {
      double t = 0.0;
      for (int i = 0; i < kWarps; ++i) t += s.hist[i][threadIdx.x];
      s.hist[0][threadIdx.x] = t;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int chosen = -1, lowest = -1;
      double cum = above;
      for (int d = kBins - 1; d >= 0; --d) {
        const double b = s.hist[0][d];
        if (b == 0.0) continue;
        lowest = d;
        if (cum + b >= target) {
          chosen = d;
          break;
        }
        cum += b;
      }
      if (chosen < 0) {
        // Not reached: in the first pass keep everything; later, keep this prefix's lowest.
        s.bcast_i = pass == 0 ? -1 : lowest;
        s.bcast_d = pass == 0 ? above : cum - s.hist[0][lowest];
      } else {
        s.bcast_i = chosen;
        s.bcast_d = cum;
      }
    }
    __syncthreads();
    const int d = s.bcast_i;
    above = s.bcast_d;
    __syncthreads();
    if (d < 0) return -INFINITY;
    prefix |= static_cast<uint32_t>(d) << shift;
  }
  return ValueOfKey(prefix);
}

__global__ void __launch_bounds__(kThreads)
    SampleRowsKernel(const float* __restrict__ logits, int64_t V, const SampleRowArgs* rows,
                     const PenaltyToken* penalty, const int32_t* masked,
                     const uint32_t* __restrict__ allowed, float* work, SampleRowResult* out) {
  __shared__ Shared s;
  const SampleRowArgs a = rows[blockIdx.x];
  SampleRowResult* res = out + blockIdx.x;
  if (a.skip) return;
  const float* x = logits + a.logits_row * V;
  float* w = work + static_cast<int64_t>(blockIdx.x) * V;

  // 1. Copy, rejecting NaN and +inf.
  int bad = 0;
  for (int64_t i = threadIdx.x; i < V; i += kThreads) {
    const float v = x[i];
    bad |= (isnan(v) || v == INFINITY) ? 1 : 0;
    w[i] = v;
  }
  if (__syncthreads_or(bad)) {
    if (threadIdx.x == 0) res->status = 1;
    return;
  }
  // 2. Penalties (distinct ids: no two threads touch one logit).
  for (int i = threadIdx.x; i < a.penalty_count; i += kThreads) {
    const PenaltyToken t = penalty[a.penalty_begin + i];
    float l = w[t.token_id];
    if (a.apply_rep) l = l > 0.0f ? __fdiv_rn(l, a.rep) : __fmul_rn(l, a.rep);
    if (a.apply_freq_pres && t.output_count > 0) {
      l = __fsub_rn(l, __fmul_rn(a.freq, static_cast<float>(t.output_count)));
      l = __fsub_rn(l, a.pres);
    }
    w[t.token_id] = l;
  }
  __syncthreads();
  // 3. min_tokens mask.
  for (int i = threadIdx.x; i < a.masked_count; i += kThreads) {
    const int32_t t = masked[a.masked_begin + i];
    if (t >= 0 && t < V) w[t] = -INFINITY;
  }
  // 3b. Structured output: tokens outside the allowed bitmask.
  if (a.allowed_begin >= 0) {
    const uint32_t* bits = allowed + a.allowed_begin;
    for (int64_t i = threadIdx.x; i < V; i += kThreads) {
      if (((bits[i >> 5] >> (i & 31)) & 1u) == 0) w[i] = -INFINITY;
    }
  }
  __syncthreads();

  int32_t token = -1;
  if (a.greedy) {
    // 4. Greedy: argmax, ties to the lowest id.
    float bv = 0.0f;
    int32_t bi = -1;
    for (int64_t i = threadIdx.x; i < V; i += kThreads) {
      if (BetterF(w[i], static_cast<int32_t>(i), bv, bi)) bv = w[i], bi = static_cast<int32_t>(i);
    }
    token = BlockArgMaxF(bv, bi, s);
    if (w[token] == -INFINITY) token = -1;
  } else {
    // 5. Temperature.
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < V; i += kThreads) {
      float v = w[i];
      if (a.temperature != 1.0f) {
        v = __fdiv_rn(v, a.temperature);
        w[i] = v;
      }
      m = fmaxf(m, v);
    }
    m = BlockMaxF(m, s);
    if (m != -INFINITY) {
      RowState st{w, m, a.use_min_p ? static_cast<double>(m) + a.log_min_p : -HUGE_VAL, -INFINITY,
                  -INFINITY};
      // 7. top_k.
      if (a.top_k > 0) {
        double n = 0.0;
        for (int64_t i = threadIdx.x; i < V; i += kThreads) n += st.Kept(w[i]) ? 1.0 : 0.0;
        n = BlockSumD(n, s);
        if (a.top_k < n) st.thr_k = RadixThreshold(st, V, false, a.top_k, s);
      }
      // 8. top_p.
      if (a.use_top_p) {
        double n = 0.0, z = 0.0;
        float lo = FLT_MAX;
        for (int64_t i = threadIdx.x; i < V; i += kThreads) {
          const float v = w[i];
          if (!st.Kept(v)) continue;
          n += 1.0;
          z += exp(static_cast<double>(v) - m);
          lo = fminf(lo, v);
        }
        n = BlockSumD(n, s);
        z = BlockSumD(z, s);
        lo = -BlockMaxF(-lo, s);
        if (n > 1.0 && lo != m) st.thr_p = RadixThreshold(st, V, true, a.top_p * z, s);
      }
      // 9. Exponential race: argmax l + Gumbel(U), ties to the lowest id.
      double bv = 0.0;
      int32_t bi = -1;
      const int64_t groups = (V + 3) / 4;
      for (int64_t g = threadIdx.x; g < groups; g += kThreads) {
        bool any = false;
        for (int j = 0; j < 4; ++j) {
          const int64_t t = 4 * g + j;
          any |= t < V && st.Kept(w[t]);
        }
        if (!any) continue;
        const uint4 r = Philox(make_uint4(static_cast<uint32_t>(g), static_cast<uint32_t>(a.step),
                                          static_cast<uint32_t>(a.step >> 32), a.stream),
                               static_cast<uint32_t>(a.seed), static_cast<uint32_t>(a.seed >> 32));
        const uint32_t bits[4] = {r.x, r.y, r.z, r.w};
        for (int j = 0; j < 4; ++j) {
          const int64_t t = 4 * g + j;
          if (t >= V || !st.Kept(w[t])) continue;
          const double u = (static_cast<double>(bits[j]) + 0.5) * 0x1p-32;
          const double score = static_cast<double>(w[t]) - log(-log(u));
          if (BetterD(score, static_cast<int32_t>(t), bv, bi))
            bv = score, bi = static_cast<int32_t>(t);
        }
      }
      token = BlockArgMaxD(bv, bi, s);
    }
  }
  if (token < 0) {
    if (threadIdx.x == 0) res->status = 2;
    return;
  }
  if (threadIdx.x == 0) res->token_id = token;
  if (a.num_logprobs < 0) return;

  // Raw-logit logprobs.
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < V; i += kThreads) m = fmaxf(m, x[i]);
  m = BlockMaxF(m, s);
  double z = 0.0;
  for (int64_t i = threadIdx.x; i < V; i += kThreads) z += exp(static_cast<double>(x[i]) - m);
  z = BlockSumD(z, s);
  const double log_z = static_cast<double>(m) + log(z);
  const float chosen = x[token];
  double rank = 0.0;
  for (int64_t i = threadIdx.x; i < V; i += kThreads) rank += x[i] >= chosen ? 1.0 : 0.0;
  rank = BlockSumD(rank, s);
  if (threadIdx.x == 0) {
    res->logprob = static_cast<float>(static_cast<double>(chosen) - log_z);
    res->rank = static_cast<int32_t>(rank);
  }
  const int n = static_cast<int>(a.num_logprobs < V ? a.num_logprobs : V);
  float pv = INFINITY;
  int32_t pid = -1;
  for (int k = 0; k < n; ++k) {
    float bv = 0.0f;
    int32_t bi = -1;
    for (int64_t i = threadIdx.x; i < V; i += kThreads) {
      const float v = x[i];
      const int32_t id = static_cast<int32_t>(i);
      if (pid >= 0 && !(v < pv || (v == pv && id > pid))) continue;  // already taken
      if (BetterF(v, id, bv, bi)) bv = v, bi = id;
    }
    bi = BlockArgMaxF(bv, bi, s);
    if (bi < 0) break;
    pv = x[bi];
    pid = bi;
    if (threadIdx.x == 0) {
      res->top_ids[k] = bi;
      res->top_logprobs[k] = static_cast<float>(static_cast<double>(pv) - log_z);
    }
  }
}

}  // namespace

void LaunchSampleRows(const float* logits, int64_t V, int32_t R, const SampleRowArgs* rows,
                      const PenaltyToken* penalty, const int32_t* masked, const uint32_t* allowed,
                      float* work, SampleRowResult* out, cudaStream_t stream) {
  if (R <= 0) return;
  SampleRowsKernel<<<R, kThreads, 0, stream>>>(logits, V, rows, penalty, masked, allowed, work,
                                               out);
}

}  // namespace c8::cuda
