// MLA attention of the CPU backend against a dense fp64 reference, for every latent cache
// dtype (fp32, bf16, int8 C8 with per-channel scales and offsets) and all four attention
// states in one batch; MoE routing (group-limited greedy and noaux_tc) against brute force.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "c8/backend/cpu/cpu_backend.h"
#include "c8/kv/c8_quant.h"
#include "c8/kv/kv_cache.h"  // KvLayerConfig
#include "c8/util/bf16.h"

namespace c8 {
namespace {

std::vector<float> Randn(size_t n, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(CpuMla, AttentionMatchesDenseReferenceForEveryLatentDtype) {
  CpuBackend b(2);
  const int64_t H = 3, r = 32, R = 8, dn = 5, bs = 16;
  const float scale = 0.21f;
  // Sequences: (cached, new): prefill without cache, decode, prefix hit + chunk.
  const std::vector<std::pair<int32_t, int32_t>> seqs = {{0, 5}, {20, 1}, {16, 4}};
  std::mt19937 rng(5);
  for (KvDType dt : {KvDType::kF32, KvDType::kBF16, KvDType::kInt8}) {
    SCOPED_TRACE(std::string(KvDTypeName(dt)));
    const int64_t num_blocks = 8;
    KvLayerConfig lc;
    lc.dtype = dt;
    std::vector<float> ks = Randn(r, rng, 0.004f), ko = Randn(r, rng, 3.0f);
    for (float& s : ks) s = 0.03f + std::fabs(s);
    lc.c8.k_scale = ks;
    lc.c8.k_offset = ko;
    for (float& o : lc.c8.k_offset) o = std::round(o);
    // The layer as KvCache lays it out: latent (blocks, 1, bs, r), rope part (blocks, 1, bs, R).
    std::vector<float> kbuf(static_cast<size_t>(num_blocks * bs * r)),
        vbuf(static_cast<size_t>(num_blocks * bs * R));
    KvLayerView view;
    view.dtype = dt;
    view.v_dtype = dt == KvDType::kF32 ? KvDType::kF32 : KvDType::kBF16;
    view.k = kbuf.data();
    view.v = vbuf.data();
    view.k_scale = lc.c8.k_scale.data();
    view.k_offset = lc.c8.k_offset.data();
    // Every sequence's blocks: seq s uses blocks 2s, 2s + 1.
    std::vector<int32_t> qs = {0}, cached, tables, slots;
    int32_t T = 0;
    for (size_t s = 0; s < seqs.size(); ++s) {
      T += seqs[s].second;
      qs.push_back(T);
      cached.push_back(seqs[s].first);
      tables.push_back(static_cast<int32_t>(2 * s));
      tables.push_back(static_cast<int32_t>(2 * s + 1));
    }
    // Earlier steps' entries written first (one "step" per sequence prefix), then this step's.
    const int64_t total_pos = 32;
    std::vector<std::vector<float>> lat(seqs.size()), kpe(seqs.size());
    for (size_t s = 0; s < seqs.size(); ++s) {
      lat[s] = Randn(total_pos * r, rng);
      kpe[s] = Randn(total_pos * R, rng);
    }
    auto write = [&](size_t s, int32_t p0, int32_t n) {
      AttentionMeta m;
      m.num_seqs = 1;
      m.num_tokens = n;
      m.block_size = bs;
      std::vector<int32_t> sl;
      for (int32_t i = 0; i < n; ++i) sl.push_back(static_cast<int32_t>(2 * s * bs) + p0 + i);
      m.slot_mapping = sl.data();
      Tensor tl(lat[s].data() + p0 * r, DType::kF32, {n, r});
      Tensor tk(kpe[s].data() + p0 * R, DType::kF32, {n, R});
      b.WriteMlaCache(tl, tk, m, view);
    };
    for (size_t s = 0; s < seqs.size(); ++s) {
      if (seqs[s].first > 0) write(s, 0, seqs[s].first);
    }
    std::vector<float> q_lat, q_rope, new_lat, new_kpe;
    const int64_t stride = dn + R;
    for (size_t s = 0; s < seqs.size(); ++s) {
      for (int32_t i = 0; i < seqs[s].second; ++i) {
        const int32_t p = seqs[s].first + i;
        slots.push_back(static_cast<int32_t>(2 * s * bs) + p);
        new_lat.insert(new_lat.end(), lat[s].begin() + p * r, lat[s].begin() + (p + 1) * r);
        new_kpe.insert(new_kpe.end(), kpe[s].begin() + p * R, kpe[s].begin() + (p + 1) * R);
      }
    }
    q_lat = Randn(static_cast<size_t>(T * H * r), rng, 0.3f);
    q_rope = Randn(static_cast<size_t>(T * H * stride), rng, 0.3f);
    AttentionMeta meta;
    meta.num_seqs = static_cast<int32_t>(seqs.size());
    meta.num_tokens = T;
    meta.block_size = bs;
    meta.max_blocks_per_seq = 2;
    meta.query_start = qs.data();
    meta.num_cached = cached.data();
    meta.block_tables = tables.data();
    meta.slot_mapping = slots.data();
    Tensor tl(new_lat.data(), DType::kF32, {T, r}), tk(new_kpe.data(), DType::kF32, {T, R});
    b.WriteMlaCache(tl, tk, meta, view);
    AttentionShape shape;
    shape.num_heads = H;
    shape.num_kv_heads = 1;
    shape.head_dim = r;
    shape.rope_dim = R;
    shape.scale = scale;
    std::vector<float> out(static_cast<size_t>(T * H * r), -7.0f);
    Tensor tq(q_lat.data(), DType::kF32, {T, H * r}),
        tr(q_rope.data(), DType::kF32, {T, H * stride});
    Tensor to(out.data(), DType::kF32, {T, H * r});
    b.MlaAttention(tq, tr, stride, dn, meta, view, shape, to);
    // Dense reference on the values as the cache holds them (quantized / rounded), fp64.
    auto stored = [&](size_t s, int64_t p, int64_t d) -> double {
      const float x = lat[s][p * r + d];
      if (dt == KvDType::kBF16) return Bf16ToF32(F32ToBf16(x));
      if (dt == KvDType::kInt8) {
        const int8_t qv = QuantizeC8(x, lc.c8.k_scale[d], lc.c8.k_offset[d]);
        return static_cast<double>(lc.c8.k_scale[d]) * (qv - lc.c8.k_offset[d]);
      }
      return x;
    };
    double worst = 0, worst_vs_fp = 0;
    int64_t t = 0;
    for (size_t s = 0; s < seqs.size(); ++s) {
      for (int32_t i = 0; i < seqs[s].second; ++i, ++t) {
        const int32_t pos = seqs[s].first + i;
        for (int64_t h = 0; h < H; ++h) {
          std::vector<double> sc(pos + 1), sc_fp(pos + 1);
          for (int32_t j = 0; j <= pos; ++j) {
            double dot = 0, dot_fp = 0, rope = 0;
            for (int64_t d = 0; d < r; ++d) {
              dot += q_lat[(t * H + h) * r + d] * stored(s, j, d);
              dot_fp += q_lat[(t * H + h) * r + d] * lat[s][j * r + d];
            }
            for (int64_t d = 0; d < R; ++d) {
              rope += q_rope[t * H * stride + h * stride + dn + d] *
                      static_cast<double>(Bf16ToF32(F32ToBf16(kpe[s][j * R + d])));
            }
            if (dt == KvDType::kF32) rope = 0;  // fp32 cache: the rope part is exact too
            if (dt == KvDType::kF32) {
              for (int64_t d = 0; d < R; ++d) {
                rope += q_rope[t * H * stride + h * stride + dn + d] * kpe[s][j * R + d];
              }
            }
            sc[j] = scale * (dot + rope);
            sc_fp[j] = scale * (dot_fp + rope);
          }
          for (auto* v : {&sc, &sc_fp}) {
            const double mx = *std::max_element(v->begin(), v->end());
            double sum = 0;
            for (double& x : *v) sum += (x = std::exp(x - mx));
            for (double& x : *v) x /= sum;
          }
          for (int64_t d = 0; d < r; ++d) {
            double ref = 0, ref_fp = 0;
            for (int32_t j = 0; j <= pos; ++j) {
              ref += sc[j] * stored(s, j, d);
              ref_fp += sc_fp[j] * lat[s][j * r + d];
            }
            const double got = out[(t * H + h) * r + d];
            worst = std::max(worst, std::fabs(got - ref));
            worst_vs_fp = std::max(worst_vs_fp, std::fabs(got - ref_fp));
          }
        }
      }
    }
    EXPECT_LT(worst, 2e-5) << "against the stored values";
    // Against the unquantized latent: bf16 and C8 rounding only (C8: scales ~0.03-0.04).
    EXPECT_LT(worst_vs_fp, dt == KvDType::kF32 ? 2e-5 : dt == KvDType::kBF16 ? 2e-2 : 1e-1);
    std::printf("MLA %s: max err %.3g vs stored values, %.3g vs the fp32 latent\n",
                std::string(KvDTypeName(dt)).c_str(), worst, worst_vs_fp);
  }
}

// Brute-force routing: every expert set of size k consistent with the rule, best by score.
TEST(CpuMoe, RoutingRulesMatchBruteForce) {
  CpuBackend b(1);
  const int64_t E = 8, Hd = 8, T = 40, k = 2;
  std::mt19937 rng(9);
  std::vector<float> x = Randn(T * Hd, rng), w = Randn(E * Hd, rng, 0.7f),
                     bias = Randn(E, rng, 0.3f);
  for (auto method :
       {MoeConfig::TopK::kGreedy, MoeConfig::TopK::kGroupLimited, MoeConfig::TopK::kNoAuxTc}) {
    MoeRouter router;
    router.config.num_experts = E;
    router.config.top_k = k;
    router.config.n_group = 4;
    router.config.topk_group = 2;
    router.config.topk_method = method;
    router.config.scoring = method == MoeConfig::TopK::kNoAuxTc ? MoeConfig::Scoring::kSigmoid
                                                                : MoeConfig::Scoring::kSoftmax;
    router.config.norm_topk_prob = method == MoeConfig::TopK::kNoAuxTc;
    router.config.routed_scaling_factor = 2.5;
    router.weight = Tensor(w.data(), DType::kF32, {E, Hd});
    if (method == MoeConfig::TopK::kNoAuxTc) router.bias = Tensor(bias.data(), DType::kF32, {E});
    std::vector<int32_t> ids(T * k);
    std::vector<float> wts(T * k);
    Tensor tx(x.data(), DType::kF32, {T, Hd}), ti(ids.data(), DType::kI32, {T, k});
    Tensor tw(wts.data(), DType::kF32, {T, k});
    b.MoeRoute(tx, router, ti, tw);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> sc(E), choice(E);
      for (int64_t e = 0; e < E; ++e) {
        double l = 0;
        for (int64_t i = 0; i < Hd; ++i) l += static_cast<double>(w[e * Hd + i]) * x[t * Hd + i];
        sc[e] = l;
      }
      if (router.config.scoring == MoeConfig::Scoring::kSoftmax) {
        double mx = *std::max_element(sc.begin(), sc.end()), sum = 0;
        for (double& s : sc) sum += (s = std::exp(s - mx));
        for (double& s : sc) s /= sum;
      } else {
        for (double& s : sc) s = 1 / (1 + std::exp(-s));
      }
      for (int64_t e = 0; e < E; ++e) {
        choice[e] = sc[e] + (method == MoeConfig::TopK::kNoAuxTc ? bias[e] : 0.0);
      }
      // Allowed groups (2 of 4, 2 experts each).
      std::vector<double> g(4);
      for (int gi = 0; gi < 4; ++gi) {
        const double a = choice[2 * gi], c = choice[2 * gi + 1];
        g[gi] = method == MoeConfig::TopK::kNoAuxTc ? a + c : std::max(a, c);
      }
      std::vector<int> order = {0, 1, 2, 3};
      std::sort(order.begin(), order.end(), [&](int a, int c) { return g[a] > g[c]; });
      std::vector<bool> ok(E, true);
      if (method != MoeConfig::TopK::kGreedy) {
        for (int64_t e = 0; e < E; ++e) ok[e] = (e / 2 == order[0] || e / 2 == order[1]);
      }
      std::vector<int> cand;
      for (int64_t e = 0; e < E; ++e) {
        if (ok[e]) cand.push_back(static_cast<int>(e));
      }
      std::sort(cand.begin(), cand.end(), [&](int a, int c) { return choice[a] > choice[c]; });
      std::vector<int> got = {ids[t * k], ids[t * k + 1]}, want = {cand[0], cand[1]};
      std::sort(got.begin(), got.end());
      std::sort(want.begin(), want.end());
      EXPECT_EQ(got, want) << "token " << t;
      double wsum = sc[want[0]] + sc[want[1]];
      for (int j = 0; j < 2; ++j) {
        const int e = ids[t * k + j];
        double expect = sc[e];
        if (router.config.norm_topk_prob) expect /= wsum;
        expect *= 2.5;
        EXPECT_NEAR(wts[t * k + j], expect, 1e-5) << "token " << t;
      }
    }
  }
}

}  // namespace
}  // namespace c8
