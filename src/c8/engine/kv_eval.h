// Accuracy of a KV cache configuration against a reference one on the same text:
// perplexity of each, mean KL(ref || test) of next-token distributions, and top-1
// agreement. Tokens are fed one per step (teacher forcing) for a batch of parallel
// windows, so every scored token attends to all earlier tokens read back from the cache:
// the decode path, where a C8 cache's rounding actually shows.
#pragma once

#include <vector>

#include "c8/kv/kv_cache.h"
#include "c8/runner/executor.h"
#include "c8/util/progress.h"

namespace c8 {

struct KvEvalOptions {
  int64_t window = 512;    // tokens per independent window (context length)
  int64_t parallel = 16;   // windows decoded together per step
  int64_t max_tokens = 0;  // 0 = all of the text
  ProgressFn progress;
};

struct KvEvalResult {
  int64_t tokens_scored = 0;
  double ppl_ref = 0, ppl_test = 0;
  double ppl_increase_pct = 0;  // 100 * (ppl_test / ppl_ref - 1)
  double mean_kl = 0;           // nats per token
  double top1_agreement = 0;    // fraction of positions with the same argmax
};

// Every rank of `ex` runs the windows (two temporary caches each); rank 0's logits are scored.
Result<KvEvalResult> EvaluateKv(Executor& ex, const std::vector<KvLayerConfig>& ref_layers,
                                const std::vector<KvLayerConfig>& test_layers,
                                const std::vector<int32_t>& tokens, const KvEvalOptions& options);

// The same comparison between two models of one vocabulary (e.g. a 16-bit model against its
// W8A8 / W8A8C8 checkpoint), each with its own KV configuration: weights and cache together.
Result<KvEvalResult> EvaluateModels(Executor& ref, const std::vector<KvLayerConfig>& ref_layers,
                                    Executor& test, const std::vector<KvLayerConfig>& test_layers,
                                    const std::vector<int32_t>& tokens,
                                    const KvEvalOptions& options);

}  // namespace c8
