#include "c8/kv/kv_cache_manager.h"

#include <algorithm>

namespace c8 {

KvCacheManager::PrefixHit KvCacheManager::FindPrefix(std::span<const int32_t> prompt) const {
  PrefixHit hit;
  if (!pool_.prefix_caching()) return hit;
  const int32_t bs = block_size();
  const int32_t max_blocks = (static_cast<int32_t>(prompt.size()) - 1) / bs;
  uint64_t parent = 0;
  for (int32_t b = 0; b < max_blocks; ++b) {
    auto toks = prompt.subspan(static_cast<size_t>(b) * bs, bs);
    uint64_t h = HashBlockTokens(parent, toks);
    auto id = pool_.Lookup(h, parent, toks);
    if (!id) break;
    hit.blocks.push_back(*id);
    hit.hashes.push_back(h);
    parent = h;
  }
  hit.num_tokens = static_cast<int32_t>(hit.blocks.size()) * bs;
  return hit;
}

int32_t KvCacheManager::BlocksNeeded(const SeqBlocks& seq, int32_t num_computed, int32_t num_new,
                                     const PrefixHit* hit) const {
  const int32_t bs = block_size();
  const int32_t total = (num_computed + num_new + bs - 1) / bs;
  int32_t have = static_cast<int32_t>(seq.blocks.size());
  int32_t from_free = 0;
  if (hit && seq.blocks.empty()) {
    have = static_cast<int32_t>(hit->blocks.size());
    // Hit blocks with no references are in the free list: touching them uses free capacity.
    for (int32_t id : hit->blocks) from_free += pool_.ref_count(id) == 0;
  }
  return std::max(0, total - have) + from_free;
}

bool KvCacheManager::Allocate(SeqBlocks seq, int32_t num_computed, int32_t num_new,
                              const PrefixHit* hit) {
  if (BlocksNeeded(seq, num_computed, num_new, hit) > pool_.num_free_blocks()) return false;
  if (hit && seq.blocks.empty() && !hit->blocks.empty()) {
    pool_.Touch(hit->blocks);
    seq.blocks = hit->blocks;
    seq.block_hashes = hit->hashes;
  }
  const int32_t bs = block_size();
  const int32_t total = (num_computed + num_new + bs - 1) / bs;
  const int32_t missing = total - static_cast<int32_t>(seq.blocks.size());
  if (missing > 0) {
    std::vector<int32_t> fresh = pool_.Allocate(missing);
    seq.blocks.insert(seq.blocks.end(), fresh.begin(), fresh.end());
  }
  return true;
}

void KvCacheManager::CacheFullBlocks(SeqBlocks seq, std::span<const int32_t> tokens,
                                     int32_t num_computed) {
  const int32_t bs = block_size();
  const int32_t full =
      std::min<int32_t>(num_computed / bs, static_cast<int32_t>(seq.blocks.size()));
  while (static_cast<int32_t>(seq.block_hashes.size()) < full) {
    const int32_t b = static_cast<int32_t>(seq.block_hashes.size());
    const uint64_t parent = b == 0 ? 0 : seq.block_hashes[b - 1];
    auto toks = tokens.subspan(static_cast<size_t>(b) * bs, bs);
    const uint64_t h = HashBlockTokens(parent, toks);
    pool_.Cache(seq.blocks[b], h, parent, toks);
    seq.block_hashes.push_back(h);
  }
}

void KvCacheManager::Free(SeqBlocks seq) {
  std::vector<int32_t> reversed(seq.blocks.rbegin(), seq.blocks.rend());
  pool_.Free(reversed);
  seq.blocks.clear();
  seq.block_hashes.clear();
}

}  // namespace c8
