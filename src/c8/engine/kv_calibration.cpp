#include "c8/engine/kv_calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace c8 {

void KvRangeStats::Init(int64_t layers, int64_t channels) {
  const float inf = std::numeric_limits<float>::infinity();
  k_min.assign(layers, std::vector<float>(channels, inf));
  v_min.assign(layers, std::vector<float>(channels, inf));
  k_max.assign(layers, std::vector<float>(channels, -inf));
  v_max.assign(layers, std::vector<float>(channels, -inf));
  tokens = 0;
}

void KvRangeStats::Observe(int64_t layer, const float* k, const float* v, int64_t T,
                           int64_t channels) {
  auto& kmn = k_min[layer];
  auto& kmx = k_max[layer];
  auto& vmn = v_min[layer];
  auto& vmx = v_max[layer];
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t c = 0; c < channels; ++c) {
      const float kx = k[t * channels + c], vx = v[t * channels + c];
      kmn[c] = std::min(kmn[c], kx);
      kmx[c] = std::max(kmx[c], kx);
      vmn[c] = std::min(vmn[c], vx);
      vmx[c] = std::max(vmx[c], vx);
    }
  }
  if (layer == 0) tokens += T;
}

namespace {
void OneRange(float mn, float mx, bool symmetric, float& scale, float& offset) {
  constexpr float kTiny = 1e-8f;
  if (!std::isfinite(mn) || !std::isfinite(mx)) mn = mx = 0.0f;
  if (symmetric) {
    scale = std::max(std::max(std::fabs(mn), std::fabs(mx)) / 127.0f, kTiny);
    offset = 0.0f;
  } else {
    scale = std::max((mx - mn) / 255.0f, kTiny);
    offset = -128.0f - mn / scale;
  }
}
}  // namespace

C8LayerScales ScalesFromRange(const std::vector<float>& k_min, const std::vector<float>& k_max,
                              const std::vector<float>& v_min, const std::vector<float>& v_max,
                              bool symmetric) {
  C8LayerScales s;
  const size_t n = k_min.size();
  s.k_scale.resize(n);
  s.k_offset.resize(n);
  s.v_scale.resize(n);
  s.v_offset.resize(n);
  for (size_t c = 0; c < n; ++c) {
    OneRange(k_min[c], k_max[c], symmetric, s.k_scale[c], s.k_offset[c]);
    OneRange(v_min[c], v_max[c], symmetric, s.v_scale[c], s.v_offset[c]);
  }
  return s;
}

Result<CalibrationText> PrepareCalibration(Executor& ex, const std::vector<int32_t>& tokens,
                                           const CalibrationOptions& o) {
  CalibrationText t;
  t.tokens = tokens;
  if (o.max_tokens > 0 && static_cast<int64_t>(t.tokens.size()) > o.max_tokens) {
    t.tokens.resize(o.max_tokens);
  }
  if (t.tokens.empty()) return Error("calibration text produced no tokens");
  t.seq_len = std::min<int64_t>(o.seq_len, ex.max_model_len());
  // Blocks 1.. hold a sequence (block 0 is the null block).
  if ((ex.kv_spec().num_blocks - 1) * ex.kv_spec().block_size < t.seq_len) {
    return Error("KV cache too small for --seq-len " + std::to_string(t.seq_len));
  }
  return t;
}

Status PrefillForCalibration(Executor& ex, const std::vector<int32_t>& tokens, int64_t seq_len,
                             const ProgressFn& progress, const std::string& label) {
  const int64_t bs = ex.kv_spec().block_size;
  const int64_t num_seqs = (static_cast<int64_t>(tokens.size()) + seq_len - 1) / seq_len;
  for (int64_t s = 0; s < num_seqs; ++s) {
    const int64_t begin = s * seq_len;
    const int64_t n = std::min<int64_t>(seq_len, static_cast<int64_t>(tokens.size()) - begin);
    ForwardBatch b;
    for (int64_t i = 0; i < n; ++i) {
      b.token_ids.push_back(tokens[begin + i]);
      b.positions.push_back(static_cast<int32_t>(i));
      b.slot_mapping.push_back(static_cast<int32_t>(bs + i));  // blocks 1.. (0 is null)
    }
    b.query_start = {0, static_cast<int32_t>(n)};
    b.num_cached = {0};
    b.max_blocks_per_seq = static_cast<int32_t>((n + bs - 1) / bs);
    for (int32_t i = 0; i < b.max_blocks_per_seq; ++i) b.block_tables.push_back(1 + i);
    C8_RETURN_IF_ERROR(ex.RunOnAll([&](Worker& w) {
      std::vector<float> logits;
      return w.ForwardHost(b, w.cache(), &logits);
    }));
    if (progress) progress(s + 1, num_seqs, label);
  }
  return Status::Ok();
}

// MLA (ModelSlim's FAKQuant recipe): symmetric, one scale per layer for the whole latent
// (fa_k = fa_v = absmax / 127, offset 0; the roped key is not quantized) and one per head for
// the absorbed query (fa_q). One rank (DeepSeek models run without tensor parallelism).
Result<std::vector<C8LayerScales>> CalibrateMla(Executor& ex, const std::vector<int32_t>& tokens,
                                                int64_t seq_len, const CalibrationOptions& o) {
  const ModelConfig& c = ex.config();
  const int64_t r = c.mla.kv_lora_rank, H = c.num_heads;
  std::vector<float> k_absmax(static_cast<size_t>(c.num_layers), 0.0f);
  std::vector<std::vector<float>> q_absmax(static_cast<size_t>(c.num_layers),
                                           std::vector<float>(static_cast<size_t>(H), 0.0f));
  C8_RETURN_IF_ERROR(ex.RunOnAll([&](Worker& w) {
    w.model().SetKvObserver([&](int64_t l, const float* k, const float*, int64_t T) {
      float& m = k_absmax[static_cast<size_t>(l)];
      for (int64_t i = 0; i < T * r; ++i) m = std::max(m, std::fabs(k[i]));
    });
    w.model().SetQueryObserver([&](int64_t l, const float* q, int64_t T) {
      std::vector<float>& m = q_absmax[static_cast<size_t>(l)];
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t h = 0; h < H; ++h) {
          const float* v = q + (t * H + h) * r;
          for (int64_t i = 0; i < r; ++i) m[h] = std::max(m[h], std::fabs(v[i]));
        }
      }
    });
    return Status::Ok();
  }));
  Status st = PrefillForCalibration(ex, tokens, seq_len, o.progress, "calibrating");
  ex.CleanupOnAll([](Worker& w) {
    w.model().SetKvObserver(nullptr);
    w.model().SetQueryObserver(nullptr);
  });
  C8_RETURN_IF_ERROR(st);
  auto scale_of = [](float absmax) { return absmax > 0.0f ? absmax / 127.0f : 1.0f; };
  std::vector<C8LayerScales> out;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    C8LayerScales s;
    const float k = scale_of(k_absmax[static_cast<size_t>(l)]);
    s.k_scale.assign(static_cast<size_t>(r), k);
    s.k_offset.assign(static_cast<size_t>(r), 0.0f);
    s.v_scale = s.k_scale;
    s.v_offset = s.k_offset;
    for (float m : q_absmax[static_cast<size_t>(l)]) s.q_scale.push_back(scale_of(m));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<C8LayerScales>> CalibrateKv(ModelBundle& bundle,
                                               const std::vector<int32_t>& all_tokens,
                                               const CalibrationOptions& o,
                                               KvRangeStats* stats_out) {
  Executor& ex = *bundle.executor;
  const ModelConfig& c = ex.config();
  const int64_t D = c.head_dim;
  const int64_t channels = c.num_kv_heads * D;
  C8_ASSIGN_OR_RETURN(CalibrationText text, PrepareCalibration(ex, all_tokens, o));
  const std::vector<int32_t>& tokens = text.tokens;
  const int64_t seq_len = text.seq_len;
  if (c.is_mla()) return CalibrateMla(ex, tokens, seq_len, o);
  // Each rank observes its own KV heads (channels [kv_head_begin * D, ...)) into its own
  // statistics; they are merged by channel afterwards (replicated heads agree).
  const int N = ex.tensor_parallel_size();
  std::vector<KvRangeStats> rank_stats(static_cast<size_t>(N));
  C8_RETURN_IF_ERROR(ex.RunOnAll([&](Worker& w) {
    KvRangeStats& st = rank_stats[static_cast<size_t>(w.shard().rank)];
    const int64_t local = w.shard().num_kv_heads * D;
    st.Init(c.num_layers, local);
    w.model().SetKvObserver([&st, local](int64_t layer, const float* k, const float* v, int64_t T) {
      st.Observe(layer, k, v, T, local);
    });
    return Status::Ok();
  }));
  Status st = PrefillForCalibration(ex, tokens, seq_len, o.progress, "calibrating");
  // The observers point into this frame: always removed, also after a failed step.
  ex.CleanupOnAll([](Worker& w) { w.model().SetKvObserver(nullptr); });
  C8_RETURN_IF_ERROR(st);
  KvRangeStats stats;
  stats.Init(c.num_layers, channels);
  stats.tokens = rank_stats[0].tokens;
  for (int r = 0; r < N; ++r) {
    const KvRangeStats& rs = rank_stats[static_cast<size_t>(r)];
    const int64_t c0 = ex.worker(r).shard().kv_head_begin * D;
    for (int64_t l = 0; l < c.num_layers; ++l) {
      for (size_t i = 0; i < rs.k_min[l].size(); ++i) {
        const size_t ch = static_cast<size_t>(c0) + i;
        stats.k_min[l][ch] = std::min(stats.k_min[l][ch], rs.k_min[l][i]);
        stats.k_max[l][ch] = std::max(stats.k_max[l][ch], rs.k_max[l][i]);
        stats.v_min[l][ch] = std::min(stats.v_min[l][ch], rs.v_min[l][i]);
        stats.v_max[l][ch] = std::max(stats.v_max[l][ch], rs.v_max[l][i]);
      }
    }
  }
  std::vector<C8LayerScales> out;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    out.push_back(ScalesFromRange(stats.k_min[l], stats.k_max[l], stats.v_min[l], stats.v_max[l],
                                  o.symmetric));
  }
  if (stats_out) *stats_out = std::move(stats);
  return out;
}

}  // namespace c8
