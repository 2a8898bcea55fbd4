#include "c8/kv/block_pool.h"

#include <xxhash.h>

#include <algorithm>

namespace c8 {

uint64_t HashBlockTokens(uint64_t parent_hash, std::span<const int32_t> tokens) {
  XXH64_state_t* st = XXH64_createState();
  XXH64_reset(st, 0x6338u);  // "c8"
  XXH64_update(st, &parent_hash, sizeof(parent_hash));
  XXH64_update(st, tokens.data(), tokens.size_bytes());
  uint64_t h = XXH64_digest(st);
  XXH64_freeState(st);
  return h;
}

BlockPool::BlockPool(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching)
    : block_size_(block_size), prefix_caching_(enable_prefix_caching), blocks_(num_blocks) {
  for (int32_t i = 1; i < num_blocks; ++i) PushTail(i);  // block 0: null block
}

double BlockPool::Usage() const {
  const int32_t usable = num_blocks() - 1;
  return usable <= 0 ? 0.0 : 1.0 - static_cast<double>(num_free_) / usable;
}

void BlockPool::PushTail(int32_t id) {
  Block& b = blocks_[id];
  b.prev = tail_;
  b.next = -1;
  if (tail_ >= 0) blocks_[tail_].next = id;
  tail_ = id;
  if (head_ < 0) head_ = id;
  b.in_free_list = true;
  ++num_free_;
}

void BlockPool::Unlink(int32_t id) {
  Block& b = blocks_[id];
  if (b.prev >= 0)
    blocks_[b.prev].next = b.next;
  else
    head_ = b.next;
  if (b.next >= 0)
    blocks_[b.next].prev = b.prev;
  else
    tail_ = b.prev;
  b.prev = b.next = -1;
  b.in_free_list = false;
  --num_free_;
}

void BlockPool::Uncache(int32_t id) {
  Block& b = blocks_[id];
  if (!b.cached) return;
  auto range = by_hash_.equal_range(b.hash);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == id) {
      by_hash_.erase(it);
      break;
    }
  }
  b.cached = false;
  b.tokens.clear();
}

std::vector<int32_t> BlockPool::Allocate(int32_t n) {
  if (n > num_free_) return {};
  std::vector<int32_t> out;
  out.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    int32_t id = head_;
    Unlink(id);
    Uncache(id);
    blocks_[id].ref = 1;
    out.push_back(id);
  }
  return out;
}

void BlockPool::Touch(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    Block& b = blocks_[id];
    if (b.ref == 0 && b.in_free_list) Unlink(id);
    ++b.ref;
  }
}

void BlockPool::Free(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    if (id == kNullBlock) continue;
    Block& b = blocks_[id];
    if (b.ref <= 0) continue;  // defensive: double free is ignored
    if (--b.ref == 0) PushTail(id);
  }
}

std::optional<int32_t> BlockPool::Lookup(uint64_t hash, uint64_t parent_hash,
                                         std::span<const int32_t> tokens) const {
  if (!prefix_caching_) return std::nullopt;
  auto range = by_hash_.equal_range(hash);
  for (auto it = range.first; it != range.second; ++it) {
    const Block& b = blocks_[it->second];
    if (b.parent_hash == parent_hash && b.tokens.size() == tokens.size() &&
        std::equal(tokens.begin(), tokens.end(), b.tokens.begin())) {
      return it->second;
    }
  }
  return std::nullopt;
}

void BlockPool::Cache(int32_t id, uint64_t hash, uint64_t parent_hash,
                      std::span<const int32_t> tokens) {
  if (!prefix_caching_ || id == kNullBlock) return;
  Block& b = blocks_[id];
  if (b.cached) return;
  // An identical block cached elsewhere stays the canonical one; this copy is not indexed.
  if (Lookup(hash, parent_hash, tokens)) return;
  b.cached = true;
  b.hash = hash;
  b.parent_hash = parent_hash;
  b.tokens.assign(tokens.begin(), tokens.end());
  by_hash_.emplace(hash, id);
}

void BlockPool::ResetPrefixCache() {
  for (int32_t i = 0; i < num_blocks(); ++i) Uncache(i);
}

std::vector<int32_t> BlockPool::FreeListOrder() const {
  std::vector<int32_t> out;
  for (int32_t id = head_; id >= 0; id = blocks_[id].next) out.push_back(id);
  return out;
}

}  // namespace c8
