// Mixture-of-experts ops of the CPU backend (DeepSeek V2 / V3): fp32 routing with the
// softmax / sigmoid scores and the greedy, group-limited and noaux_tc top-k rules, then each
// expert's SwiGLU MLP on the rows routed to it (gathered, run through the backend's own
// linears, 16-bit or W8A8, and added back weighted).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "c8/backend/cpu/cpu_backend.h"
#include "c8/util/bf16.h"

namespace c8 {

namespace {

// Indices of the k largest values (ties: lower index first).
std::vector<int32_t> TopK(const std::vector<float>& v, int64_t k) {
  std::vector<int32_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

}  // namespace

void CpuBackend::MoeRoute(const Tensor& x, const MoeRouter& router, Tensor& topk_ids,
                          Tensor& topk_w) {
  const MoeConfig& c = router.config;
  const int64_t T = x.dim(0), H = x.dim(1), E = c.num_experts, k = c.top_k;
  const int64_t per_group = E / c.n_group;
  pool_.ParallelFor(T, 4, [&](int64_t lo, int64_t hi) {
    std::vector<float> scores(E), choice(E), group(c.n_group);
    for (int64_t t = lo; t < hi; ++t) {
      const float* xv = x.as<float>() + t * H;
      for (int64_t e = 0; e < E; ++e) {
        const float* w = router.weight.as<float>() + e * H;
        float acc = 0.0f;
        for (int64_t i = 0; i < H; ++i) acc += w[i] * xv[i];
        scores[e] = acc;
      }
      if (c.scoring == MoeConfig::Scoring::kSoftmax) {
        const float mx = *std::max_element(scores.begin(), scores.end());
        float sum = 0.0f;
        for (float& s : scores) sum += (s = std::exp(s - mx));
        for (float& s : scores) s /= sum;
      } else {
        for (float& s : scores) s = 1.0f / (1.0f + std::exp(-s));
      }
      choice = scores;
      if (c.topk_method == MoeConfig::TopK::kNoAuxTc && router.bias.data) {
        for (int64_t e = 0; e < E; ++e) choice[e] += router.bias.as<float>()[e];
      }
      if (c.topk_method != MoeConfig::TopK::kGreedy) {
        for (int64_t g = 0; g < c.n_group; ++g) {
          const float* v = choice.data() + g * per_group;
          if (c.topk_method == MoeConfig::TopK::kNoAuxTc) {  // sum of the group's top 2
            std::vector<float> gv(v, v + per_group);
            std::partial_sort(gv.begin(), gv.begin() + std::min<int64_t>(2, per_group), gv.end(),
                              std::greater<float>());
            group[g] = gv[0] + (per_group > 1 ? gv[1] : 0.0f);
          } else {
            group[g] = *std::max_element(v, v + per_group);
          }
        }
        std::vector<bool> keep(c.n_group, false);
        for (int32_t g : TopK(group, c.topk_group)) keep[g] = true;
        const float masked = c.topk_method == MoeConfig::TopK::kNoAuxTc ? -INFINITY : 0.0f;
        for (int64_t e = 0; e < E; ++e) {
          if (!keep[e / per_group]) choice[e] = masked;
        }
      }
      const std::vector<int32_t> ids = TopK(choice, k);
      float* w = topk_w.as<float>() + t * k;
      int32_t* id = static_cast<int32_t*>(topk_ids.data) + t * k;
      float sum = 0.0f;
      for (int64_t j = 0; j < k; ++j) {
        id[j] = ids[j];
        // noaux_tc weighs by the unbiased score; the other rules by the (masked) score.
        w[j] = c.topk_method == MoeConfig::TopK::kNoAuxTc ? scores[ids[j]] : choice[ids[j]];
        sum += w[j];
      }
      if (c.norm_topk_prob && k > 1) {
        for (int64_t j = 0; j < k; ++j) w[j] /= sum + 1e-20f;
      }
      for (int64_t j = 0; j < k; ++j) w[j] *= static_cast<float>(c.routed_scaling_factor);
    }
  });
}

void CpuBackend::MoeExperts(const Tensor& x, const Tensor& topk_ids, const Tensor& topk_w,
                            const MoeExpertWeights& experts, Tensor& out) {
  const int64_t T = x.dim(0), H = x.dim(1), k = topk_ids.dim(1), I = experts.intermediate;
  const int64_t E = static_cast<int64_t>(experts.gate_up.size());
  std::vector<std::vector<int64_t>> routed(static_cast<size_t>(E));  // (t * k + j) per expert
  const int32_t* ids = static_cast<const int32_t*>(topk_ids.data);
  for (int64_t i = 0; i < T * k; ++i) {
    if (ids[i] >= 0 && ids[i] < E) routed[static_cast<size_t>(ids[i])].push_back(i);
  }
  std::vector<float> xs, gu, act, ys;
  for (int64_t e = 0; e < E; ++e) {
    const std::vector<int64_t>& rows = routed[static_cast<size_t>(e)];
    const int64_t n = static_cast<int64_t>(rows.size());
    if (n == 0) continue;
    xs.resize(static_cast<size_t>(n * H));
    gu.resize(static_cast<size_t>(n * 2 * I));
    act.resize(static_cast<size_t>(n * I));
    ys.resize(static_cast<size_t>(n * H));
    for (int64_t r = 0; r < n; ++r) {
      const float* src = x.as<float>() + (rows[r] / k) * H;
      std::copy(src, src + H, xs.data() + r * H);
    }
    Tensor tx(xs.data(), DType::kF32, {n, H}), tgu(gu.data(), DType::kF32, {n, 2 * I});
    Tensor tact(act.data(), DType::kF32, {n, I}), ty(ys.data(), DType::kF32, {n, H});
    Linear(tx, experts.gate_up[e], nullptr, tgu);
    SiluMul(tgu, tact);
    Linear(tact, experts.down[e], nullptr, ty);
    for (int64_t r = 0; r < n; ++r) {
      const float w = topk_w.as<float>()[rows[r]];
      float* o = out.as<float>() + (rows[r] / k) * H;
      const float* y = ys.data() + r * H;
      for (int64_t i = 0; i < H; ++i) o[i] += w * y[i];
    }
  }
}

}  // namespace c8
