#include "c8/engine/weight_quantization.h"

#include <algorithm>
#include <cmath>

namespace c8 {

Result<ActivationStats> CalibrateActivations(ModelBundle& bundle,
                                             const std::vector<int32_t>& all_tokens,
                                             const CalibrationOptions& o) {
  Executor& ex = *bundle.executor;
  if (ex.tensor_parallel_size() != 1) {
    return Error("activation calibration runs on one rank (--tensor-parallel-size 1)");
  }
  const ModelConfig& c = ex.config();
  C8_ASSIGN_OR_RETURN(CalibrationText text, PrepareCalibration(ex, all_tokens, o));
  const std::vector<int32_t>& tokens = text.tokens;
  const int64_t seq_len = text.seq_len;
  ActivationStats stats;
  stats.layers.resize(static_cast<size_t>(c.num_layers));
  Worker& w = ex.worker(0);
  w.model().SetActivationObserver(
      [&](int64_t layer, int site, const float* x, int64_t T, int64_t K) {
        ActivationStats::Channels& ch =
            stats.layers[static_cast<size_t>(layer)][static_cast<size_t>(site)];
        if (ch.min.empty()) {
          ch.min.assign(static_cast<size_t>(K), INFINITY);
          ch.max.assign(static_cast<size_t>(K), -INFINITY);
        }
        for (int64_t t = 0; t < T; ++t) {
          for (int64_t k = 0; k < K; ++k) {
            ch.min[k] = std::min(ch.min[k], x[t * K + k]);
            ch.max[k] = std::max(ch.max[k], x[t * K + k]);
          }
        }
      });
  Status st = PrefillForCalibration(ex, tokens, seq_len, o.progress, "calibrating activations");
  ex.CleanupOnAll([](Worker& wk) { wk.model().SetActivationObserver(nullptr); });
  C8_RETURN_IF_ERROR(st);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    for (const auto& ch : stats.layers[static_cast<size_t>(l)]) {
      if (ch.min.empty()) {
        return Error("activation calibration: layer " + std::to_string(l) + " was never observed");
      }
    }
  }
  return stats;
}

namespace {

// max_n |W[n, k]| of every column k (a K-vector), maxed into `out`.
Status ColumnAbsMax(const WeightStore& src, const std::string& name, std::vector<float>& out) {
  C8_ASSIGN_OR_RETURN(const TensorView* t, src.Get(name));
  std::vector<float> w;
  C8_RETURN_IF_ERROR(TensorToF32(*t, w));
  const int64_t N = t->shape[0], K = t->shape[1];
  if (out.empty()) out.assign(static_cast<size_t>(K), 0.0f);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) out[k] = std::max(out[k], std::fabs(w[n * K + k]));
  }
  return Status::Ok();
}

float SmoothScale(float act, float wmax, float alpha) {
  if (!(act > 0.0f) || !(wmax > 0.0f)) return 1.0f;
  const float s = std::pow(act, alpha) / std::pow(wmax, 1.0f - alpha);
  return std::clamp(s, 1e-4f, 1e4f);
}

}  // namespace

Status PlanQuantization(const ActivationStats& stats, const WeightStore& src, const ModelConfig& c,
                        float alpha, ModelSlimWriteOptions* o) {
  const int64_t D = c.head_dim, hq = c.num_heads, hkv = c.num_kv_heads, group = hq / hkv;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::vector<std::string> names = QuantizedLinearNames(l);  // q k v o gate up down
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const auto& sites = stats.layers[static_cast<size_t>(l)];
    // The smoothing scale of every input channel of each site (1 without smoothing).
    std::array<std::vector<float>, 4> s;
    for (int site = 0; site < 4; ++site) {
      s[site].assign(sites[site].min.size(), 1.0f);
    }
    if (alpha > 0.0f) {
      auto act = [&](int site, size_t j) {
        return std::max(std::fabs(sites[site].min[j]), std::fabs(sites[site].max[j]));
      };
      // Sites 0 and 2: per hidden channel, over the linears that read it.
      for (auto [site, first, last] : {std::array<int, 3>{0, 0, 2}, std::array<int, 3>{2, 4, 5}}) {
        std::vector<float> wmax;
        for (int i = first; i <= last; ++i) {
          C8_RETURN_IF_ERROR(ColumnAbsMax(src, names[i] + ".weight", wmax));
        }
        for (size_t j = 0; j < s[site].size(); ++j)
          s[site][j] = SmoothScale(act(site, j), wmax[j], alpha);
      }
      // Site 3 (down_proj input): per intermediate channel.
      {
        std::vector<float> wmax;
        C8_RETURN_IF_ERROR(ColumnAbsMax(src, names[6] + ".weight", wmax));
        for (size_t j = 0; j < s[3].size(); ++j) s[3][j] = SmoothScale(act(3, j), wmax[j], alpha);
      }
      // Site 1 (o_proj input, channel (h, d)): one scale per KV channel (g, d), shared by the
      // query heads of group g, since it is folded into v_proj's row (g, d).
      {
        std::vector<float> wmax;
        C8_RETURN_IF_ERROR(ColumnAbsMax(src, names[3] + ".weight", wmax));
        for (int64_t g = 0; g < hkv; ++g) {
          for (int64_t d = 0; d < D; ++d) {
            float a = 0.0f, wm = 0.0f;
            for (int64_t h = g * group; h < (g + 1) * group; ++h) {
              a = std::max(a, act(1, static_cast<size_t>(h * D + d)));
              wm = std::max(wm, wmax[static_cast<size_t>(h * D + d)]);
            }
            const float sc = SmoothScale(a, wm, alpha);
            for (int64_t h = g * group; h < (g + 1) * group; ++h) s[1][h * D + d] = sc;
          }
        }
      }
      // Fold: columns of the reading linears * s; the producers / 1 / s.
      for (int i : {0, 1, 2}) o->column_scale[names[i]] = s[0];
      o->column_scale[names[3]] = s[1];
      for (int i : {4, 5}) o->column_scale[names[i]] = s[2];
      o->column_scale[names[6]] = s[3];
      auto inverse = [](const std::vector<float>& v) {
        std::vector<float> r(v.size());
        for (size_t i = 0; i < v.size(); ++i) r[i] = 1.0f / v[i];
        return r;
      };
      std::vector<float> v_rows(static_cast<size_t>(hkv * D));
      for (int64_t g = 0; g < hkv; ++g) {
        for (int64_t d = 0; d < D; ++d) v_rows[g * D + d] = 1.0f / s[1][g * group * D + d];
      }
      o->row_scale[names[2]] = v_rows;
      o->row_scale[names[5]] = inverse(s[3]);
      for (auto [norm, site] : {std::pair<const char*, int>{"input_layernorm", 0},
                                std::pair<const char*, int>{"post_attention_layernorm", 2}}) {
        for (const char* part : {".weight", ".bias"}) {
          const std::string name = p + norm + part;
          if (!src.Has(name)) continue;
          C8_ASSIGN_OR_RETURN(const TensorView* t, src.Get(name));
          std::vector<float> v;
          C8_RETURN_IF_ERROR(TensorToF32(*t, v));
          if (v.size() != s[site].size())
            return Error(t->file + ": " + name + " has the wrong size");
          for (size_t j = 0; j < v.size(); ++j) v[j] /= s[site][j];
          o->overrides[name] = std::move(v);
        }
      }
    }
    // Static input ranges after smoothing: X'_j = X_j / s_j.
    static const int kSite[7] = {0, 0, 0, 1, 2, 2, 3};
    for (size_t i = 0; i < names.size(); ++i) {
      const int site = kSite[i];
      ActivationRange r{INFINITY, -INFINITY};
      for (size_t j = 0; j < s[site].size(); ++j) {
        r.lo = std::min(r.lo, sites[site].min[j] / s[site][j]);
        r.hi = std::max(r.hi, sites[site].max[j] / s[site][j]);
      }
      o->ranges[names[i]] = r;
    }
  }
  return Status::Ok();
}

}  // namespace c8
