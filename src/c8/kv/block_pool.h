// Fixed-size KV blocks: ref counts, a free list in eviction order, and the prefix cache
// (chained block hash -> block, with a token check on every hit). Host-only; never looks
// inside a block's bytes.
//
// Block 0 is the null block: never allocated, used to pad block tables.
// Free list: head = next to be reused (least recently freed), tail = most recently freed.
// A freed block keeps its hash (still a prefix-cache hit) until it is reused.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace c8 {

inline constexpr int32_t kNullBlock = 0;

// Hash of a full block chained with its parent's hash (0 for the first block).
uint64_t HashBlockTokens(uint64_t parent_hash, std::span<const int32_t> tokens);

class BlockPool {
 public:
  BlockPool(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching);

  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  int32_t block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  // Blocks that Allocate can hand out (free, including cached-but-unreferenced ones).
  int32_t num_free_blocks() const { return num_free_; }
  // Fraction of usable blocks in use (referenced), 0..1.
  double Usage() const;

  // Takes n blocks from the head of the free list (evicting their cached hashes); each gets
  // ref count 1. Returns an empty vector if fewer than n are free.
  std::vector<int32_t> Allocate(int32_t n);
  // Adds a reference to each block (prefix-cache hits); a block with ref 0 leaves the free list.
  void Touch(std::span<const int32_t> ids);
  // Drops one reference from each block, in the given order; blocks reaching 0 go to the
  // free list tail in that order (so the first given is evicted first).
  void Free(std::span<const int32_t> ids);

  // Prefix cache. Lookup returns the block holding exactly `tokens` after `parent_hash`.
  std::optional<int32_t> Lookup(uint64_t hash, uint64_t parent_hash,
                                std::span<const int32_t> tokens) const;
  // Marks a full, referenced block as holding `tokens` (no-op if caching is off or the
  // block is already cached).
  void Cache(int32_t id, uint64_t hash, uint64_t parent_hash, std::span<const int32_t> tokens);
  // Drops every cached hash (e.g. after the weights or scales changed).
  void ResetPrefixCache();

  int32_t ref_count(int32_t id) const { return blocks_[id].ref; }
  std::optional<uint64_t> block_hash(int32_t id) const {
    return blocks_[id].cached ? std::optional<uint64_t>(blocks_[id].hash) : std::nullopt;
  }
  // Free list from head to tail (for tests and debugging).
  std::vector<int32_t> FreeListOrder() const;
  int64_t num_cached_blocks() const { return static_cast<int64_t>(by_hash_.size()); }

 private:
  struct Block {
    int32_t ref = 0;
    bool cached = false;
    uint64_t hash = 0, parent_hash = 0;
    std::vector<int32_t> tokens;
    int32_t prev = -1, next = -1;  // free-list links
    bool in_free_list = false;
  };
  void PushTail(int32_t id);
  void Unlink(int32_t id);
  void Uncache(int32_t id);

  int32_t block_size_;
  bool prefix_caching_;
  std::vector<Block> blocks_;
  int32_t head_ = -1, tail_ = -1, num_free_ = 0;
  std::unordered_multimap<uint64_t, int32_t> by_hash_;
};

}  // namespace c8
