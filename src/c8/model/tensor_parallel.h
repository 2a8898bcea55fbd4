// What one tensor-parallel rank holds of a Llama/Qwen decoder (Megatron-style sharding, as
// vLLM does it):
//   - attention: column-parallel QKV (whole GQA groups: this rank's KV heads and the query heads
//     that read them), row-parallel O with an all-reduce;
//   - MLP: column-parallel gate/up, row-parallel down with an all-reduce;
//   - embedding and LM head: vocab-parallel, rows [vocab_begin, vocab_begin + vocab_rows)
//     padded to vocab_block rows (the embedding lookup is all-reduced, the logits are gathered);
//   - KV cache: this rank's KV heads and its slice of the C8 scales.
// When there are more ranks than KV heads, each KV head is replicated on size / num_kv_heads
// ranks (the query heads are still split). Partitions need not be even: KV heads split into
// contiguous groups (ranks may hold different numbers of whole groups), the intermediate size in
// units of 64 (or 8) columns where it allows.
#pragma once

#include <cstdint>
#include <vector>

#include "c8/formats/model_config.h"
#include "c8/util/status.h"

namespace c8 {

struct ShardSpec {
  int rank = 0, size = 1;
  int64_t kv_head_begin = 0, num_kv_heads = 0;  // of the model's KV heads
  int64_t q_head_begin = 0, num_heads = 0;      // of the model's query heads
  int64_t inter_begin = 0, intermediate = 0;    // of intermediate_size
  int64_t vocab_begin = 0, vocab_rows = 0;      // embedding / LM-head rows held
  int64_t vocab_block = 0;                      // rows per rank incl. padding (>= vocab_rows)
  std::vector<int64_t> vocab_cols;              // vocab_rows of every rank (logit gather)

  int64_t q_size(int64_t head_dim) const { return num_heads * head_dim; }
  int64_t kv_size(int64_t head_dim) const { return num_kv_heads * head_dim; }
};

// Rank `rank` of `size`; errors name the config key that does not split and suggest sizes.
Result<ShardSpec> MakeShardSpec(const ModelConfig& config, int rank, int size);

}  // namespace c8
