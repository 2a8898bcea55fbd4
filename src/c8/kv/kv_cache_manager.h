// Assigns cache blocks to sequences: prefix-cache lookups for new prompts, slot
// allocation for the tokens of a step, caching of blocks as they fill, and freeing.
// Works on plain token vectors so it is testable without an engine or a backend.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "c8/kv/block_pool.h"

namespace c8 {

// The view of a sequence the manager needs.
struct SeqBlocks {
  std::vector<int32_t>& blocks;
  std::vector<uint64_t>& block_hashes;
};

class KvCacheManager {
 public:
  KvCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching)
      : pool_(num_blocks, block_size, enable_prefix_caching) {}

  BlockPool& pool() { return pool_; }
  const BlockPool& pool() const { return pool_; }
  int32_t block_size() const { return pool_.block_size(); }

  struct PrefixHit {
    std::vector<int32_t> blocks;
    std::vector<uint64_t> hashes;
    int32_t num_tokens = 0;  // blocks.size() * block_size
  };
  // Longest run of full prompt blocks already cached, leaving at least one prompt token to
  // compute (its logits are needed). Does not take references.
  PrefixHit FindPrefix(std::span<const int32_t> prompt) const;

  // Makes room for tokens [0, num_computed + num_new) of seq: takes references on `hit`
  // blocks (first allocation only) and allocates the missing blocks. False (and no change)
  // when not enough blocks are free.
  bool Allocate(SeqBlocks seq, int32_t num_computed, int32_t num_new, const PrefixHit* hit);

  // Number of blocks Allocate would take from the free list.
  int32_t BlocksNeeded(const SeqBlocks& seq, int32_t num_computed, int32_t num_new,
                       const PrefixHit* hit) const;

  // Records hashes of blocks that became full with `tokens` (the sequence's tokens whose
  // K/V is now written: the first num_computed of them).
  void CacheFullBlocks(SeqBlocks seq, std::span<const int32_t> tokens, int32_t num_computed);

  // Releases all blocks of seq (tail first, so tails are evicted before shared heads).
  void Free(SeqBlocks seq);

  // Prefix-cache statistics (queried and hit prompt tokens).
  int64_t prefix_queries() const { return queries_; }
  int64_t prefix_hits() const { return hits_; }
  void RecordPrefixQuery(int64_t queried, int64_t hit) {
    queries_ += queried;
    hits_ += hit;
  }

 private:
  BlockPool pool_;
  int64_t queries_ = 0, hits_ = 0;
};

}  // namespace c8
