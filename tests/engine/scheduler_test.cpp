// Scheduler unit tests: exact admissions, budgets, chunk boundaries, prefix hits,
// preemption and resume, abort; no model or backend.
#include "c8/engine/scheduler.h"

#include <gtest/gtest.h>

namespace c8 {
namespace {

std::unique_ptr<Request> Req(const std::string& id, int32_t prompt_len, int32_t base = 1000) {
  auto r = std::make_unique<Request>();
  r->id = id;
  for (int32_t i = 0; i < prompt_len; ++i) r->prompt.push_back(base + i);
  return r;
}

struct Sim {
  KvCacheManager kv;
  Scheduler s;
  Sim(int32_t blocks, int32_t block_size, SchedulerConfig c, bool prefix = true)
      : kv(blocks, block_size, prefix), s(c, kv) {}
  // One step: schedule, pretend the forward ran, append token 7 to every ready sequence.
  SchedulerOutput Step() {
    SchedulerOutput out = s.Schedule();
    for (Request* r : s.OnStepDone(out)) r->output.push_back(7);
    return out;
  }
};

std::vector<std::pair<std::string, int32_t>> Summary(const SchedulerOutput& o) {
  std::vector<std::pair<std::string, int32_t>> v;
  for (auto& s : o.seqs) v.emplace_back(s.request->id, s.num_new);
  return v;
}

using P = std::vector<std::pair<std::string, int32_t>>;

TEST(Scheduler, ChunkedPrefillUnderTokenBudgetThenDecodeTogether) {
  SchedulerConfig c;
  c.max_num_batched_tokens = 8;
  c.max_num_seqs = 4;
  Sim sim(64, 4, c);
  sim.s.Add(Req("a", 10));
  sim.s.Add(Req("b", 3));
  EXPECT_EQ(Summary(sim.Step()), (P{{"a", 8}}));            // a's first chunk fills the budget
  EXPECT_EQ(Summary(sim.Step()), (P{{"a", 2}, {"b", 3}}));  // a finishes prefill, b joins
  EXPECT_EQ(Summary(sim.Step()), (P{{"a", 1}, {"b", 1}}));  // both decode
  EXPECT_EQ(sim.s.num_running(), 2);
}

TEST(Scheduler, MaxNumSeqsLimitsAdmission) {
  SchedulerConfig c;
  c.max_num_batched_tokens = 100;
  c.max_num_seqs = 2;
  Sim sim(64, 4, c);
  for (const char* id : {"a", "b", "c"}) sim.s.Add(Req(id, 4));
  EXPECT_EQ(Summary(sim.Step()), (P{{"a", 4}, {"b", 4}}));
  EXPECT_EQ(sim.s.num_waiting(), 1);
  Request* a = sim.Step().seqs[0].request;
  sim.s.Finish(a, RequestStatus::kFinished);
  EXPECT_EQ(Summary(sim.Step()), (P{{"b", 1}, {"c", 4}}));
}

TEST(Scheduler, PrefixCacheHitSkipsComputedBlocks) {
  SchedulerConfig c;
  c.max_num_batched_tokens = 100;
  Sim sim(64, 4, c);
  sim.s.Add(Req("a", 10));
  sim.Step();
  sim.s.Add(Req("b", 10));  // same prompt tokens
  auto out = sim.Step();
  EXPECT_EQ(Summary(out), (P{{"a", 1}, {"b", 2}}));  // 8 of b's tokens are cached
  EXPECT_EQ(out.seqs[1].num_cached, 8);
  EXPECT_EQ(out.seqs[1].request->num_prefix_hit_tokens, 8);
  EXPECT_EQ(out.seqs[1].request->blocks[0], out.seqs[0].request->blocks[0]);
  EXPECT_EQ(sim.kv.prefix_queries(), 20);
  EXPECT_EQ(sim.kv.prefix_hits(), 8);
}

TEST(Scheduler, PreemptsNewestWhenBlocksRunOutAndResumesByRecompute) {
  SchedulerConfig c;
  c.max_num_batched_tokens = 100;
  Sim sim(5, 4, c, /*prefix=*/false);  // 4 usable blocks of 4 tokens
  sim.s.Add(Req("a", 7, 100));
  sim.s.Add(Req("b", 7, 200));
  EXPECT_EQ(Summary(sim.Step()), (P{{"a", 7}, {"b", 7}}));  // 2 blocks each, all used
  // Both now need an 8th slot: fine (blocks hold 8). Next step needs a 3rd block for a.
  EXPECT_EQ(Summary(sim.Step()), (P{{"a", 1}, {"b", 1}}));
  auto out = sim.Step();  // a needs a new block: b (newest) is preempted
  EXPECT_EQ(Summary(out), (P{{"a", 1}}));
  ASSERT_EQ(out.preempted.size(), 1u);
  Request* b = out.preempted[0];
  EXPECT_EQ(b->id, "b");
  EXPECT_EQ(b->num_computed, 0);
  EXPECT_TRUE(b->blocks.empty());
  EXPECT_EQ(b->output.size(), 2u);  // generated tokens are kept and recomputed later
  EXPECT_EQ(sim.s.num_preemptions(), 1);
  // a finishes: b resumes with prompt + its 2 output tokens recomputed in one chunk.
  sim.s.Finish(out.seqs[0].request, RequestStatus::kFinished);
  auto resumed = sim.Step();
  EXPECT_EQ(Summary(resumed), (P{{"b", 9}}));
  EXPECT_EQ(b->output.size(), 3u);
}

TEST(Scheduler, AbortFreesBlocksFromWaitingOrRunning) {
  SchedulerConfig c;
  c.max_num_batched_tokens = 4;
  Sim sim(9, 4, c);
  sim.s.Add(Req("a", 10));
  sim.s.Add(Req("b", 4));
  sim.Step();
  // Blocks are allocated as chunks need them: a's first 4-token chunk took one block.
  EXPECT_EQ(sim.kv.pool().num_free_blocks(), 8 - 1);
  EXPECT_TRUE(sim.s.Abort("a"));
  EXPECT_EQ(sim.kv.pool().num_free_blocks(), 8);
  EXPECT_TRUE(sim.s.Abort("b"));
  EXPECT_FALSE(sim.s.Abort("zzz"));
  EXPECT_FALSE(sim.s.HasWork());
  EXPECT_EQ(sim.s.TakeFinished().size(), 2u);
}

TEST(Scheduler, NoChunkingWaitsForBudget) {
  SchedulerConfig c;
  c.max_num_batched_tokens = 8;
  c.enable_chunked_prefill = false;
  Sim sim(64, 4, c);
  sim.s.Add(Req("a", 6, 100));
  sim.s.Add(Req("b", 6, 200));
  EXPECT_EQ(Summary(sim.Step()), (P{{"a", 6}}));  // b does not fit in the remaining 2
  EXPECT_EQ(Summary(sim.Step()), (P{{"a", 1}, {"b", 6}}));
}

}  // namespace
}  // namespace c8
