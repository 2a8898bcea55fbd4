// End-to-end engine behaviour on the real SmolLM2 (skipped when the converted model is
// absent): batching, prefix caching and preemption never change greedy text.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "c8/engine/llm_engine.h"

namespace c8 {
namespace {

std::string SmolDir() {
  if (const char* e = std::getenv("C8_SMOLLM2_DIR")) return e;
  return std::string(C8_SOURCE_DIR) + "/models/smollm2-135m-instruct";
}

std::unique_ptr<ModelBundle> LoadBundle(const std::string& kv_dtype, double kv_gib = 0) {
  EngineOptions o;
  o.model_dir = SmolDir();
  o.backend.device = "cpu";
  o.kv_cache_dtype = kv_dtype;
  o.max_model_len = 1024;
  o.kv_cache_gib = kv_gib;
  auto b = ModelBundle::Load(o);
  EXPECT_TRUE(b.ok()) << b.message();
  return b.ok() ? std::move(b).value() : nullptr;
}

const std::vector<std::string> kPrompts = {
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Once upon a time, in a small village by the sea, there lived",
    "Water boils at 100 degrees Celsius. At high altitude,",
};

// Runs prompts through one engine; returns output token ids per prompt.
std::vector<std::vector<int32_t>> RunAll(ModelBundle& m, const std::vector<std::string>& prompts,
                                         EngineConfig ec, int max_tokens,
                                         EngineStats* stats = nullptr) {
  LlmEngine engine(m, ec);
  SamplingParams sp;
  sp.temperature = 0;
  sp.max_tokens = max_tokens;
  sp.ignore_eos = true;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EngineRequest r;
    r.id = std::to_string(i);
    r.prompt = m.EncodePrompt(prompts[i]);
    r.params = sp;
    EXPECT_TRUE(engine.AddRequest(std::move(r)).ok());
  }
  std::vector<std::vector<int32_t>> out(prompts.size());
  while (engine.HasWork()) {
    for (auto& o : engine.Step()) {
      EXPECT_TRUE(o.error.empty()) << o.error;
      for (auto& t : o.new_tokens) out[std::stoul(o.id)].push_back(t.token_id);
    }
  }
  if (stats) *stats = engine.stats();
  return out;
}

class EngineE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(SmolDir() + "/config.json")) {
      GTEST_SKIP() << "converted SmolLM2 not found at " << SmolDir();
    }
  }
};

TEST_F(EngineE2E, BatchedEqualsSingleSequenceGreedy) {
  for (const char* dt : {"fp32", "bf16"}) {
    auto m = LoadBundle(dt);
    ASSERT_TRUE(m);
    EngineConfig ec;
    ec.scheduler.max_model_len = 1024;
    auto batched = RunAll(*m, kPrompts, ec, 24);
    for (size_t i = 0; i < kPrompts.size(); ++i) {
      auto single = RunAll(*m, {kPrompts[i]}, ec, 24);
      EXPECT_EQ(batched[i], single[0]) << dt << " prompt " << i;
      EXPECT_EQ(batched[i].size(), 24u);
    }
  }
}

TEST_F(EngineE2E, ChunkedPrefillAndPrefixHitMatchColdRun) {
  auto m = LoadBundle("bf16");
  ASSERT_TRUE(m);
  EngineConfig cold;
  cold.scheduler.max_model_len = 1024;
  cold.enable_prefix_caching = false;
  const std::string shared =
      "You are a helpful assistant. Answer briefly and precisely. The following is a long "
      "shared preamble that many requests repeat word for word, so its blocks are cached. ";
  std::vector<std::string> prompts = {shared + "Question: what is the boiling point of water?",
                                      shared + "Question: name a prime number above 10."};
  auto ref0 = RunAll(*m, {prompts[0]}, cold, 20);
  auto ref1 = RunAll(*m, {prompts[1]}, cold, 20);
  // Small token budget: prompts are prefilled in chunks, mixed with decodes; the second
  // request (added together) hits the first's cached blocks once they are full.
  EngineConfig warm;
  warm.scheduler.max_model_len = 1024;
  warm.scheduler.max_num_batched_tokens = 16;
  EngineStats stats;
  auto both = RunAll(*m, prompts, warm, 20, &stats);
  EXPECT_EQ(both[0], ref0[0]);
  EXPECT_EQ(both[1], ref1[0]);
  // Again in one engine, sequentially: the second run must hit the prefix cache.
  LlmEngine engine(*m, warm);
  SamplingParams sp;
  sp.temperature = 0;
  sp.max_tokens = 20;
  sp.ignore_eos = true;
  std::vector<std::vector<int32_t>> seq(2);
  int32_t hit_tokens = 0;
  for (int i = 0; i < 2; ++i) {
    EngineRequest r;
    r.id = std::to_string(i);
    r.prompt = m->EncodePrompt(prompts[i]);
    r.params = sp;
    ASSERT_TRUE(engine.AddRequest(std::move(r)).ok());
    while (engine.HasWork()) {
      for (auto& o : engine.Step()) {
        for (auto& t : o.new_tokens) seq[i].push_back(t.token_id);
        if (i == 1) hit_tokens = o.num_cached_tokens;
      }
    }
  }
  EXPECT_GE(hit_tokens, 16);
  EXPECT_EQ(seq[0], ref0[0]);
  EXPECT_EQ(seq[1], ref1[0]);
}

TEST_F(EngineE2E, PreemptionByRecomputeLosesNothing) {
  // A KV cache of ~12 blocks of 16 tokens for 4 sequences that each need 3-4 blocks:
  // the scheduler must preempt and recompute, and still produce identical greedy text.
  auto big = LoadBundle("bf16");
  ASSERT_TRUE(big);
  EngineConfig ec;
  ec.scheduler.max_model_len = 1024;
  auto ref = RunAll(*big, kPrompts, ec, 40);
  const double bytes_per_block = 2.0 * 30 * 3 * 64 * 16 * 2;
  auto small = LoadBundle("bf16", 13 * bytes_per_block / (1 << 30));
  ASSERT_TRUE(small);
  EngineStats stats;
  auto got = RunAll(*small, kPrompts, ec, 40, &stats);
  EXPECT_GT(stats.num_preemptions, 0);
  for (size_t i = 0; i < kPrompts.size(); ++i) EXPECT_EQ(got[i], ref[i]) << "prompt " << i;
  EXPECT_EQ(stats.num_running, 0);
  EXPECT_EQ(stats.num_free_blocks, stats.num_blocks);  // every block returned
}

}  // namespace
}  // namespace c8
