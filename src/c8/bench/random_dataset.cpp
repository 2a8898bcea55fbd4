#include "c8/bench/random_dataset.h"

#include <cmath>
#include <random>
#include <string>

namespace c8::bench {

namespace {

// Uniform integer in [lo, hi] (inclusive) without modulo bias, platform independent.
int64_t UniformInt(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  const uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
  if (range == 0) return static_cast<int64_t>(rng());
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return lo + static_cast<int64_t>(x % range);
}

}  // namespace

Result<std::vector<RequestInput>> SampleRandomDataset(const RandomDatasetOptions& opt,
                                                      const Tokenizer* tokenizer) {
  const double r = opt.range_ratio;
  if (!(r >= 0.0 && r < 1.0)) {
    return Error("--random-range-ratio " + std::to_string(r) + ": must be in [0, 1)");
  }
  if (opt.num_prompts < 1) return Error("--num-prompts: must be at least 1");
  if (opt.input_len < 0) return Error("--random-input-len: must not be negative");
  if (opt.output_len < 0) return Error("--random-output-len: must not be negative");
  if (opt.prefix_len < 0) return Error("--random-prefix-len: must not be negative");
  const int64_t vocab = tokenizer ? tokenizer->vocab_size() : opt.vocab_size;
  if (vocab < 1) return Error("--random-vocab-size: must be at least 1");

  const int64_t in_lo = static_cast<int64_t>(std::floor(opt.input_len * (1.0 - r)));
  const int64_t in_hi = static_cast<int64_t>(std::ceil(opt.input_len * (1.0 + r)));
  const int64_t out_lo =
      std::max<int64_t>(1, static_cast<int64_t>(std::floor(opt.output_len * (1.0 - r))));
  const int64_t out_hi =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(opt.output_len * (1.0 + r))));
  if (opt.prefix_len + in_lo < 1) {
    return Error("--random-input-len " + std::to_string(opt.input_len) +
                 ": with --random-range-ratio and --random-prefix-len, prompts could be empty");
  }

  std::vector<int32_t> allowed;
  allowed.reserve(vocab);
  for (int64_t id = 0; id < vocab; ++id) {
    if (tokenizer && tokenizer->IsSpecial(static_cast<int32_t>(id))) continue;
    allowed.push_back(static_cast<int32_t>(id));
  }
  if (allowed.empty()) return Error("--tokenizer: every token of the vocabulary is special");
  const int64_t n_allowed = static_cast<int64_t>(allowed.size());

  std::mt19937_64 rng(opt.seed);
  std::vector<int64_t> in_lens(opt.num_prompts), out_lens(opt.num_prompts),
      offsets(opt.num_prompts);
  for (auto& v : in_lens) v = UniformInt(rng, in_lo, in_hi);
  for (auto& v : out_lens) v = UniformInt(rng, out_lo, out_hi);
  for (auto& v : offsets) v = UniformInt(rng, 0, vocab - 1);
  std::vector<int32_t> prefix(opt.prefix_len);
  for (auto& v : prefix) v = allowed[UniformInt(rng, 0, n_allowed - 1)];

  std::vector<RequestInput> out(opt.num_prompts);
  for (int64_t i = 0; i < opt.num_prompts; ++i) {
    std::vector<int32_t> ids = prefix;
    ids.reserve(prefix.size() + in_lens[i]);
    for (int64_t j = 0; j < in_lens[i]; ++j) {
      ids.push_back(allowed[(offsets[i] + i + j) % n_allowed]);
    }
    RequestInput& req = out[i];
    req.output_len = out_lens[i];
    const int64_t target = opt.prefix_len + in_lens[i];
    if (!tokenizer) {
      req.prompt_len = target;
      req.prompt_ids = std::move(ids);
      continue;
    }
    // Decode -> re-encode -> truncate or pad, until the text has exactly `target` tokens.
    std::string text;
    for (int tries_left = 10;; --tries_left) {
      text = tokenizer->Decode(ids);
      ids = tokenizer->Encode(text, /*parse_special=*/false);
      const int64_t n = static_cast<int64_t>(ids.size());
      if (n == target || tries_left == 0) break;
      if (n > target) {
        ids.resize(target);
      } else {
        while (static_cast<int64_t>(ids.size()) < target) {
          ids.push_back(allowed[UniformInt(rng, 0, n_allowed - 1)]);
        }
      }
    }
    req.prompt_text = std::move(text);
    req.prompt_len = static_cast<int64_t>(ids.size());
  }
  return out;
}

}  // namespace c8::bench
