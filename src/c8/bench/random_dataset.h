// vLLM's "random" benchmark dataset (vllm/benchmarks/datasets RandomDataset, 2025 version):
//   input_len_i  ~ uniform integers in [floor(L_in*(1-r)), ceil(L_in*(1+r))]
//   output_len_i ~ uniform integers in [max(1, floor(L_out*(1-r))), max(1, ceil(L_out*(1+r)))]
//   offset_i     ~ uniform integers in [0, vocab_size)
//   allowed      = the ids in [0, vocab_size) that are not special tokens (all ids without a
//                  tokenizer)
//   prefix       = prefix_len ids drawn uniformly from `allowed`, shared by every prompt
//   prompt_i     = prefix ++ [allowed[(offset_i + i + j) % |allowed|] for j < input_len_i]
// With a tokenizer the ids are decoded to text and re-encoded; the sequence is truncated (or
// padded with random allowed ids) and decoded again, up to 10 times, until the text encodes to
// exactly prefix_len + input_len_i tokens (vLLM's gen_prompt_decode_to_target_len); prompt_len
// is the final count. Without one, prompts stay token-id lists of exactly that length.
// The random generator is std::mt19937_64 seeded with --seed, with c8's own unbiased
// bounded draws, so the same seed gives the same prompts on every platform, but not the same
// prompts as numpy's PCG64.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "c8/bench/request.h"
#include "c8/tokenizer/tokenizer.h"
#include "c8/util/status.h"

namespace c8::bench {

struct RandomDatasetOptions {
  int64_t num_prompts = 1000;
  int64_t input_len = 1024;
  int64_t output_len = 128;
  double range_ratio = 0.0;  // in [0, 1)
  int64_t prefix_len = 0;
  int64_t vocab_size = 49152;  // ignored when a tokenizer is given (its vocab_size is used)
  uint64_t seed = 0;
};

// Samples the requests. `tokenizer` may be null (token-id prompts). Errors name the flag at
// fault (e.g. "--random-range-ratio 1.5: must be in [0, 1)").
Result<std::vector<RequestInput>> SampleRandomDataset(const RandomDatasetOptions& opt,
                                                      const Tokenizer* tokenizer);

}  // namespace c8::bench
