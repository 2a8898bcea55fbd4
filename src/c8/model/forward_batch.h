// One model step as plain host data, built by the runner from scheduled sequences.
#pragma once

#include <cstdint>
#include <vector>

namespace c8 {

struct ForwardBatch {
  std::vector<int32_t> token_ids;     // (T) new tokens of every sequence, sequence-major
  std::vector<int32_t> positions;     // (T) absolute position of each new token
  std::vector<int32_t> query_start;   // (S + 1) prefix sums of new tokens per sequence
  std::vector<int32_t> num_cached;    // (S) tokens of each sequence already in the cache
  std::vector<int32_t> block_tables;  // (S, max_blocks_per_seq) cache block ids, -1 padded
  int32_t max_blocks_per_seq = 0;
  std::vector<int32_t> slot_mapping;  // (T) cache slot of each new token, -1 = do not write
  std::vector<int32_t> logits_rows;   // (R) rows of T whose logits are wanted

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_seqs() const { return static_cast<int32_t>(num_cached.size()); }
};

}  // namespace c8
