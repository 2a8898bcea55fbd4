#include "c8/engine/kv_eval.h"

#include <algorithm>
#include <cmath>

namespace c8 {

namespace {
// log_softmax of one row into out (double for stable KL sums).
void LogSoftmax(const float* x, int64_t n, std::vector<double>& out) {
  out.resize(n);
  double mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, static_cast<double>(x[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(x[i] - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] - lse;
}
}  // namespace

namespace {

// Temporary caches (one per rank of `ex`, each holding that rank's heads), freed on their
// ranks' threads (CUDA: their devices), also when creating them failed half way.
class RankCaches {
 public:
  explicit RankCaches(Executor& ex)
      : ex_(ex), caches_(static_cast<size_t>(ex.tensor_parallel_size())) {}
  ~RankCaches() {
    ex_.CleanupOnAll([&](Worker& w) { caches_[static_cast<size_t>(w.shard().rank)].reset(); });
  }
  Status Create(const std::vector<KvLayerConfig>& layers, int64_t block_size, int64_t blocks) {
    const ModelConfig& c = ex_.config();
    return ex_.RunOnAll([&](Worker& w) -> Status {
      const KvCacheSpec spec = w.CacheSpec(block_size, blocks);
      C8_ASSIGN_OR_RETURN(
          caches_[static_cast<size_t>(w.shard().rank)],
          KvCache::Create(w.backend(), spec, SliceKvLayers(layers, w.shard(), c.head_dim)));
      return Status::Ok();
    });
  }
  // Rank 0's logits of `b` against this executor's caches.
  Status Forward(const ForwardBatch& b, std::vector<float>* logits) {
    return ex_.RunOnAll([&](Worker& w) -> Status {
      const size_t r = static_cast<size_t>(w.shard().rank);
      std::vector<float> unused;
      return w.ForwardHost(b, *caches_[r], r == 0 ? logits : &unused);
    });
  }

 private:
  Executor& ex_;
  std::vector<std::unique_ptr<KvCache>> caches_;
};

}  // namespace

Result<KvEvalResult> EvaluateKv(Executor& ex, const std::vector<KvLayerConfig>& ref_layers,
                                const std::vector<KvLayerConfig>& test_layers,
                                const std::vector<int32_t>& tokens, const KvEvalOptions& o) {
  return EvaluateModels(ex, ref_layers, ex, test_layers, tokens, o);
}

Result<KvEvalResult> EvaluateModels(Executor& ref_ex, const std::vector<KvLayerConfig>& ref_layers,
                                    Executor& test_ex,
                                    const std::vector<KvLayerConfig>& test_layers,
                                    const std::vector<int32_t>& all_tokens,
                                    const KvEvalOptions& o) {
  const ModelConfig& c = ref_ex.config();
  if (test_ex.config().vocab_size != c.vocab_size) {
    return Error("eval: the models' vocabularies differ (" + std::to_string(c.vocab_size) +
                 " and " + std::to_string(test_ex.config().vocab_size) + " tokens)");
  }
  std::vector<int32_t> tokens = all_tokens;
  if (o.max_tokens > 0 && static_cast<int64_t>(tokens.size()) > o.max_tokens) {
    tokens.resize(o.max_tokens);
  }
  const int64_t W = std::min<int64_t>({o.window, ref_ex.max_model_len(), test_ex.max_model_len()});
  if (static_cast<int64_t>(tokens.size()) < 2 || W < 2) return Error("eval text is too short");
  const int64_t num_windows = (static_cast<int64_t>(tokens.size()) + W - 1) / W;
  const int64_t S = std::max<int64_t>(1, std::min(o.parallel, num_windows));
  const int64_t bs = 16;
  const int64_t blocks_per_window = (W + bs - 1) / bs;
  RankCaches ref_caches(ref_ex), test_caches(test_ex);
  C8_RETURN_IF_ERROR(ref_caches.Create(ref_layers, bs, 1 + S * blocks_per_window));
  C8_RETURN_IF_ERROR(test_caches.Create(test_layers, bs, 1 + S * blocks_per_window));

  const int64_t V = c.vocab_size;
  double nll_ref = 0, nll_test = 0, kl = 0;
  int64_t agree = 0, scored = 0;
  std::vector<float> logits_ref, logits_test;
  std::vector<double> lr, lt;
  const int64_t groups = (num_windows + S - 1) / S;
  const int64_t total_steps = groups * W;
  int64_t steps_done = 0;
  for (int64_t g = 0; g < groups; ++g) {
    // Windows of this group and their lengths.
    std::vector<int64_t> start, len;
    for (int64_t s = 0; s < S; ++s) {
      const int64_t w = g * S + s;
      if (w >= num_windows) break;
      start.push_back(w * W);
      len.push_back(std::min<int64_t>(W, static_cast<int64_t>(tokens.size()) - w * W));
    }
    for (int64_t t = 0; t + 1 < W; ++t) {
      ForwardBatch b;
      std::vector<int64_t> seq_of_row;
      b.query_start.push_back(0);
      b.max_blocks_per_seq = static_cast<int32_t>(blocks_per_window);
      for (size_t s = 0; s < start.size(); ++s) {
        if (t + 1 >= len[s]) continue;  // nothing left to predict in this window
        b.token_ids.push_back(tokens[start[s] + t]);
        b.positions.push_back(static_cast<int32_t>(t));
        const int32_t first_block = static_cast<int32_t>(1 + s * blocks_per_window);
        b.slot_mapping.push_back(static_cast<int32_t>((first_block + t / bs) * bs + t % bs));
        b.num_cached.push_back(static_cast<int32_t>(t));
        for (int64_t k = 0; k < blocks_per_window; ++k) {
          b.block_tables.push_back(static_cast<int32_t>(first_block + k));
        }
        b.logits_rows.push_back(b.num_tokens() - 1);
        b.query_start.push_back(b.num_tokens());
        seq_of_row.push_back(static_cast<int64_t>(s));
      }
      if (b.token_ids.empty()) break;
      C8_RETURN_IF_ERROR(ref_caches.Forward(b, &logits_ref));
      C8_RETURN_IF_ERROR(test_caches.Forward(b, &logits_test));
      for (size_t r = 0; r < seq_of_row.size(); ++r) {
        const int64_t s = seq_of_row[r];
        const int32_t target = tokens[start[s] + t + 1];
        LogSoftmax(logits_ref.data() + r * V, V, lr);
        LogSoftmax(logits_test.data() + r * V, V, lt);
        nll_ref -= lr[target];
        nll_test -= lt[target];
        double k = 0;
        for (int64_t i = 0; i < V; ++i) k += std::exp(lr[i]) * (lr[i] - lt[i]);
        kl += k;
        agree += std::max_element(lr.begin(), lr.end()) - lr.begin() ==
                 std::max_element(lt.begin(), lt.end()) - lt.begin();
        ++scored;
      }
      if (o.progress) o.progress(++steps_done, total_steps, "evaluating");
    }
    steps_done = (g + 1) * W;
  }
  KvEvalResult r;
  r.tokens_scored = scored;
  r.ppl_ref = std::exp(nll_ref / scored);
  r.ppl_test = std::exp(nll_test / scored);
  r.ppl_increase_pct = 100.0 * (r.ppl_test / r.ppl_ref - 1.0);
  r.mean_kl = kl / scored;
  r.top1_agreement = static_cast<double>(agree) / scored;
  return r;
}

}  // namespace c8
