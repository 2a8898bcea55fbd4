// Decode steps through CUDA graphs (Worker::EnableGraphs) against the same steps run
// eagerly, on seeded dummy SmolLM2 weights with 16-bit and C8 caches: a ragged batch of six
// sequences is prefilled, then decoded teacher-forced for 24 steps (crossing a block-table
// width bucket, so more than one graph is captured), and a replayed graph must reproduce the
// step it was captured from bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "c8/runner/worker.h"
#include "cuda_test_util.h"

namespace c8 {
namespace {

constexpr int32_t kBs = 16, kBlocksPerSeq = 32;

std::vector<KvLayerConfig> Layers(const ModelConfig& c, KvDType kv) {
  std::vector<KvLayerConfig> layers(c.num_layers);
  const int64_t n = c.num_kv_heads * c.head_dim;
  for (auto& l : layers) {
    l.dtype = kv;
    if (kv == KvDType::kInt8) {
      l.c8.k_scale.assign(n, 0.1f);
      l.c8.v_scale.assign(n, 0.1f);
      l.c8.k_offset.assign(n, 0.0f);
      l.c8.v_offset.assign(n, 0.0f);
    }
  }
  return layers;
}

// Sequences s = 0..S-1 own blocks 1 + s * kBlocksPerSeq ...; tokens[s] holds every token so far.
struct Seqs {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<int32_t> cached;
};

// One step: sequence s feeds tokens [cached[s], cached[s] + n[s]); every sequence is sampled.
ForwardBatch Step(const Seqs& q, const std::vector<int32_t>& which, const std::vector<int32_t>& n) {
  ForwardBatch b;
  b.query_start.push_back(0);
  int32_t max_blocks = 1;
  for (size_t i = 0; i < which.size(); ++i) {
    const int32_t s = which[i];
    max_blocks = std::max(max_blocks, (q.cached[s] + n[i] + kBs - 1) / kBs);
  }
  b.max_blocks_per_seq = max_blocks;
  for (size_t i = 0; i < which.size(); ++i) {
    const int32_t s = which[i];
    for (int32_t k = 0; k < n[i]; ++k) {
      const int32_t pos = q.cached[s] + k;
      b.token_ids.push_back(q.tokens[s][pos]);
      b.positions.push_back(pos);
      b.slot_mapping.push_back((1 + s * kBlocksPerSeq + pos / kBs) * kBs + pos % kBs);
    }
    b.logits_rows.push_back(b.num_tokens() - 1);
    b.query_start.push_back(b.num_tokens());
    b.num_cached.push_back(q.cached[s]);
    for (int32_t k = 0; k < max_blocks; ++k) b.block_tables.push_back(1 + s * kBlocksPerSeq + k);
  }
  return b;
}

double RelErr(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0, r = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    r += double(b[i]) * b[i];
  }
  return std::sqrt(e / r);
}

class CudaGraphs : public ::testing::TestWithParam<KvDType> {};

TEST_P(CudaGraphs, DecodeMatchesEagerAndReplaysExactly) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  ModelLoadOptions o;
  o.load_format = "dummy";
  o.seed = 3;
  o.max_model_len = 1024;
  WorkerConfig wc;
  wc.model_dir = std::string(C8_SOURCE_DIR) + "/configs/smollm2-135m";
  wc.load = o;
  CudaBackend* g = gpu.get();
  auto mr = Worker::Create(wc, std::move(gpu), nullptr);
  ASSERT_TRUE(mr.ok()) << mr.message();
  Worker& m = **mr;
  ASSERT_EQ(m.graphs().max_batch(), 0);  // off unless asked for
  const ModelConfig& c = m.model().config();
  const int64_t V = c.vocab_size;
  KvCacheSpec spec{c.num_layers, c.num_kv_heads, c.head_dim, kBs, 1 + 6 * kBlocksPerSeq};

  const std::vector<int32_t> prompt_len = {20, 100, 250, 37, 5, 180};
  const int S = static_cast<int>(prompt_len.size()), steps = 24;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(V) - 1);
  Seqs init;
  for (int s = 0; s < S; ++s) {
    init.tokens.emplace_back(prompt_len[s] + steps + 4);
    for (auto& t : init.tokens.back()) t = tok(rng);
    init.cached.push_back(0);
  }
  std::vector<int32_t> all(S);
  for (int s = 0; s < S; ++s) all[s] = s;

  // Runs prefill + `steps` decode steps; returns the logits of every decode step.
  auto run = [&](KvCache& cache) {
    Seqs q = init;
    std::vector<float> logits;
    Status st = m.ForwardHost(Step(q, all, prompt_len), cache, &logits);
    EXPECT_TRUE(st.ok()) << st.message();
    for (int s = 0; s < S; ++s) q.cached[s] = prompt_len[s];
    std::vector<std::vector<float>> out;
    for (int k = 0; k < steps; ++k) {
      st = m.ForwardHost(Step(q, all, std::vector<int32_t>(S, 1)), cache, &logits);
      EXPECT_TRUE(st.ok()) << st.message();
      out.push_back(logits);
      for (int s = 0; s < S; ++s) ++q.cached[s];
    }
    return std::make_pair(out, q);
  };

  auto eager_cache = KvCache::Create(m.backend(), spec, Layers(c, GetParam()));
  auto graph_cache = KvCache::Create(m.backend(), spec, Layers(c, GetParam()));
  ASSERT_TRUE(eager_cache.ok() && graph_cache.ok());
  auto [eager, q_eager] = run(**eager_cache);
  m.EnableGraphs(64);
  auto [graphed, q_graph] = run(**graph_cache);
  ASSERT_TRUE(g->status().ok()) << g->status().message();
  EXPECT_TRUE(m.graphs().error().empty()) << m.graphs().error();
  EXPECT_EQ(m.graphs().max_batch(), 64);
  // Contexts 251..274 cross 256 tokens: widths of 16 and 32 blocks, two graphs.
  EXPECT_GE(m.graphs().size(), 2u);

  double worst = 0;
  int agree = 0, rows = 0;
  for (int k = 0; k < steps; ++k) {
    ASSERT_EQ(graphed[k].size(), size_t(S) * V);
    worst = std::max(worst, RelErr(graphed[k], eager[k]));
    for (int s = 0; s < S; ++s) {
      auto e0 = eager[k].begin() + s * V, g0 = graphed[k].begin() + s * V;
      agree += (std::max_element(e0, e0 + V) - e0) == (std::max_element(g0, g0 + V) - g0);
      ++rows;
    }
  }
  std::printf(
      "kv=%s graphs vs eager: worst step logits rel err %.2e, argmax agree %d/%d, "
      "%zu graphs\n",
      std::string(KvDTypeName(GetParam())).c_str(), worst, agree, rows, m.graphs().size());
  EXPECT_LT(worst, 2e-2);
  EXPECT_GE(agree, rows * 95 / 100);

  // A new batch bucket (3 sequences -> 4): the first call captures (its result comes from the
  // eager warm-up run of the padded batch), the second replays; the same inputs (rewriting the
  // same cache slots with the same values) must give identical logits.
  const size_t before = m.graphs().size();
  const std::vector<int32_t> three = {0, 2, 5};
  std::vector<float> first, second;
  ASSERT_TRUE(m.ForwardHost(Step(q_graph, three, {1, 1, 1}), **graph_cache, &first).ok());
  ASSERT_TRUE(m.ForwardHost(Step(q_graph, three, {1, 1, 1}), **graph_cache, &second).ok());
  EXPECT_EQ(m.graphs().size(), before + 1);
  ASSERT_EQ(first.size(), 3u * V);
  EXPECT_EQ(first, second);

  // Prefill steps and steps with unsampled rows stay eager and still work with graphs on.
  std::vector<float> pre;
  Seqs q2 = q_graph;
  ASSERT_TRUE(m.ForwardHost(Step(q2, {1, 4}, {2, 3}), **graph_cache, &pre).ok());
  EXPECT_EQ(pre.size(), 2u * V);
  EXPECT_EQ(m.graphs().size(), before + 1);
  ASSERT_TRUE(g->status().ok()) << g->status().message();
}

INSTANTIATE_TEST_SUITE_P(Kv, CudaGraphs, ::testing::Values(KvDType::kBF16, KvDType::kInt8),
                         [](const ::testing::TestParamInfo<KvDType>& i) {
                           return std::string(KvDTypeName(i.param));
                         });

}  // namespace
}  // namespace c8
