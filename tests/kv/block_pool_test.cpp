#include "c8/kv/block_pool.h"

#include <gtest/gtest.h>

#include "c8/kv/kv_cache_manager.h"

namespace c8 {
namespace {

using V = std::vector<int32_t>;

TEST(BlockPool, AllocatesFromHeadFreesToTailAndSkipsNullBlock) {
  BlockPool p(6, 16, true);
  EXPECT_EQ(p.num_free_blocks(), 5);
  EXPECT_EQ(p.FreeListOrder(), (V{1, 2, 3, 4, 5}));
  V a = p.Allocate(2);
  EXPECT_EQ(a, (V{1, 2}));
  EXPECT_EQ(p.ref_count(1), 1);
  V b = p.Allocate(3);
  EXPECT_EQ(b, (V{3, 4, 5}));
  EXPECT_TRUE(p.Allocate(1).empty());  // exhausted: nothing, no partial allocation
  EXPECT_DOUBLE_EQ(p.Usage(), 1.0);
  p.Free(V{2, 1});  // given order = eviction order
  EXPECT_EQ(p.FreeListOrder(), (V{2, 1}));
  p.Free(V{5});
  EXPECT_EQ(p.FreeListOrder(), (V{2, 1, 5}));
  EXPECT_EQ(p.Allocate(1), (V{2}));
  EXPECT_DOUBLE_EQ(p.Usage(), 3.0 / 5.0);
}

TEST(BlockPool, RefCountsAndTouch) {
  BlockPool p(4, 16, true);
  V a = p.Allocate(1);
  p.Touch(a);
  EXPECT_EQ(p.ref_count(a[0]), 2);
  p.Free(a);
  EXPECT_EQ(p.ref_count(a[0]), 1);
  EXPECT_EQ(p.num_free_blocks(), 2);
  p.Free(a);
  EXPECT_EQ(p.ref_count(a[0]), 0);
  EXPECT_EQ(p.num_free_blocks(), 3);
  p.Touch(a);  // a cache hit on a free block takes it off the free list
  EXPECT_EQ(p.num_free_blocks(), 2);
  EXPECT_EQ(p.FreeListOrder(), (V{2, 3}));
}

TEST(BlockPool, PrefixCacheHitMissTokenCheckAndEviction) {
  BlockPool p(4, 4, true);
  V toks{1, 2, 3, 4};
  uint64_t h = HashBlockTokens(0, toks);
  EXPECT_FALSE(p.Lookup(h, 0, toks));
  V a = p.Allocate(1);
  p.Cache(a[0], h, 0, toks);
  EXPECT_EQ(p.Lookup(h, 0, toks), a[0]);
  // Same hash but different tokens or parent: the token check refuses.
  EXPECT_FALSE(p.Lookup(h, 0, V{1, 2, 3, 5}));
  EXPECT_FALSE(p.Lookup(h, 7, toks));
  // Freed blocks stay cached until reused.
  p.Free(a);
  EXPECT_EQ(p.Lookup(h, 0, toks), a[0]);
  EXPECT_EQ(p.block_hash(a[0]), h);
  // LRU: free list is [2, 3, 1]; allocating 3 blocks reuses (evicts) block 1 last.
  EXPECT_EQ(p.FreeListOrder(), (V{2, 3, 1}));
  V b = p.Allocate(2);
  EXPECT_EQ(b, (V{2, 3}));
  EXPECT_EQ(p.Lookup(h, 0, toks), a[0]);
  V c = p.Allocate(1);
  EXPECT_EQ(c, (V{1}));
  EXPECT_FALSE(p.Lookup(h, 0, toks));  // evicted
  EXPECT_FALSE(p.block_hash(1));
}

TEST(BlockPool, CachingOffNeverHits) {
  BlockPool p(4, 4, false);
  V toks{1, 2, 3, 4};
  V a = p.Allocate(1);
  p.Cache(a[0], HashBlockTokens(0, toks), 0, toks);
  EXPECT_FALSE(p.Lookup(HashBlockTokens(0, toks), 0, toks));
}

TEST(KvCacheManager, PrefixHitLeavesOneTokenAndSharesBlocks) {
  KvCacheManager m(10, 4, true);
  V prompt{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  V blocks_a;
  std::vector<uint64_t> hashes_a;
  SeqBlocks a{blocks_a, hashes_a};
  ASSERT_TRUE(m.Allocate(a, 0, 10, nullptr));
  EXPECT_EQ(blocks_a, (V{1, 2, 3}));
  m.CacheFullBlocks(a, prompt, 10);
  EXPECT_EQ(hashes_a.size(), 2u);  // the third block is partial
  // Same prompt again: both full blocks hit.
  auto hit = m.FindPrefix(prompt);
  EXPECT_EQ(hit.blocks, (V{1, 2}));
  EXPECT_EQ(hit.num_tokens, 8);
  // A prompt that is exactly 2 blocks: the last block must be recomputed for its logits.
  auto hit8 = m.FindPrefix(V{1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_EQ(hit8.blocks, (V{1}));
  V blocks_b;
  std::vector<uint64_t> hashes_b;
  SeqBlocks b{blocks_b, hashes_b};
  ASSERT_TRUE(m.Allocate(b, hit.num_tokens, 2, &hit));
  EXPECT_EQ(blocks_b, (V{1, 2, 4}));
  EXPECT_EQ(m.pool().ref_count(1), 2);
  EXPECT_EQ(m.pool().ref_count(4), 1);
  // Freeing a returns only its private block to the free list.
  m.Free(a);
  EXPECT_EQ(m.pool().ref_count(1), 1);
  EXPECT_EQ(m.pool().num_free_blocks(), 10 - 1 - 3);
  // Divergent prompt: hit stops at the first different block.
  auto hit2 = m.FindPrefix(V{1, 2, 3, 4, 9, 9, 9, 9, 9});
  EXPECT_EQ(hit2.blocks, (V{1}));
}

TEST(KvCacheManager, AllocateFailsWithoutPartialChange) {
  KvCacheManager m(4, 4, true);  // 3 usable blocks
  V blocks;
  std::vector<uint64_t> hashes;
  SeqBlocks s{blocks, hashes};
  EXPECT_FALSE(m.Allocate(s, 0, 13, nullptr));  // needs 4
  EXPECT_TRUE(blocks.empty());
  EXPECT_EQ(m.pool().num_free_blocks(), 3);
  EXPECT_TRUE(m.Allocate(s, 0, 12, nullptr));
  EXPECT_EQ(m.BlocksNeeded(s, 12, 1, nullptr), 1);
  EXPECT_FALSE(m.Allocate(s, 12, 1, nullptr));
}

}  // namespace
}  // namespace c8
