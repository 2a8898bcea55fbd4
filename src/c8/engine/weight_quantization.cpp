#include "c8/engine/weight_quantization.h"

#include <algorithm>
#include <array>

namespace c8 {

Result<std::map<std::string, ActivationRange>> CalibrateActivations(
    ModelBundle& bundle, const std::vector<int32_t>& all_tokens, const CalibrationOptions& o) {
  Executor& ex = *bundle.executor;
  if (ex.tensor_parallel_size() != 1) {
    return Error("activation calibration runs on one rank (--tensor-parallel-size 1)");
  }
  const ModelConfig& c = ex.config();
  std::vector<int32_t> tokens = all_tokens;
  if (o.max_tokens > 0 && static_cast<int64_t>(tokens.size()) > o.max_tokens) {
    tokens.resize(o.max_tokens);
  }
  if (tokens.empty()) return Error("calibration text produced no tokens");
  const int64_t seq_len = std::min<int64_t>(o.seq_len, ex.max_model_len());
  const int64_t bs = ex.kv_spec().block_size;
  if (ex.kv_spec().num_blocks * bs < seq_len) {
    return Error("KV cache too small for --seq-len " + std::to_string(seq_len));
  }
  // (layer, site) -> range; sites as DecoderModel::ActivationObserver.
  std::vector<std::array<ActivationRange, 4>> ranges(static_cast<size_t>(c.num_layers));
  std::vector<std::array<bool, 4>> seen(static_cast<size_t>(c.num_layers),
                                        {false, false, false, false});
  Worker& w = ex.worker(0);
  w.model().SetActivationObserver(
      [&](int64_t layer, int site, const float* x, int64_t T, int64_t K) {
        ActivationRange& r = ranges[static_cast<size_t>(layer)][static_cast<size_t>(site)];
        bool& s = seen[static_cast<size_t>(layer)][static_cast<size_t>(site)];
        const auto [mn, mx] = std::minmax_element(x, x + T * K);
        r.lo = s ? std::min(r.lo, *mn) : *mn;
        r.hi = s ? std::max(r.hi, *mx) : *mx;
        s = true;
      });
  const int64_t num_seqs = (static_cast<int64_t>(tokens.size()) + seq_len - 1) / seq_len;
  Status st;
  for (int64_t s = 0; s < num_seqs && st.ok(); ++s) {
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
    st = ex.RunOnAll([&](Worker& wk) {
      std::vector<float> logits;
      return wk.ForwardHost(b, wk.cache(), &logits);
    });
    if (o.progress) o.progress(s + 1, num_seqs, "calibrating activations");
  }
  ex.CleanupOnAll([](Worker& wk) { wk.model().SetActivationObserver(nullptr); });
  C8_RETURN_IF_ERROR(st);
  std::map<std::string, ActivationRange> out;
  static const int kSite[7] = {0, 0, 0, 1, 2, 2, 3};  // q k v o gate up down
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::vector<std::string> names = QuantizedLinearNames(l);
    for (size_t i = 0; i < names.size(); ++i) {
      if (!seen[static_cast<size_t>(l)][static_cast<size_t>(kSite[i])]) {
        return Error("activation calibration: layer " + std::to_string(l) + " was never observed");
      }
      out[names[i]] = ranges[static_cast<size_t>(l)][static_cast<size_t>(kSite[i])];
    }
  }
  return out;
}

}  // namespace c8
