// Whole-model parity: the CUDA backend (bf16 activations) against the CPU backend (fp32)
// on the same (bf16-exact) seeded dummy weights of SmolLM2-135M and Qwen3-0.6B shapes,
// with 16-bit and C8 KV caches.
// Prefill (chunked) then greedy decode; the decode is teacher-forced with the CPU's tokens
// so one near-tie cannot derail the comparison, and the free-running greedy text is
// compared too.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdio>

#include "c8/backend/cpu/cpu_backend.h"
#include "c8/runner/worker.h"
#include "cuda_test_util.h"

namespace c8 {
namespace {

struct ParityCase {
  std::string dir;
  std::string load_format;
  KvDType kv;
};

std::vector<KvLayerConfig> Layers(const ModelConfig& c, KvDType kv) {
  std::vector<KvLayerConfig> layers(c.num_layers);
  const int64_t n = c.num_kv_heads * c.head_dim;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    layers[l].dtype = kv;
    if (kv == KvDType::kInt8) {
      // Wide enough for these activations: |k|, |v| up to ~12.
      layers[l].c8.k_scale.assign(n, 0.1f);
      layers[l].c8.v_scale.assign(n, 0.1f);
      layers[l].c8.k_offset.assign(n, 0.0f);
      layers[l].c8.v_offset.assign(n, 0.0f);
    }
  }
  return layers;
}

// Runs prompt + `steps` tokens (forced = tokens fed after the prompt; empty = free greedy).
struct Trace {
  std::vector<std::vector<float>> logits;  // one row per scored position
  std::vector<int32_t> greedy;
};

Trace RunModel(Worker& m, KvCache& cache, const std::vector<int32_t>& prompt,
               const std::vector<int32_t>& forced, int steps) {
  Trace tr;
  const int32_t bs = static_cast<int32_t>(cache.spec().block_size);
  std::vector<int32_t> tokens = prompt;
  int32_t cached = 0;
  auto step = [&](int32_t n, bool all) {
    ForwardBatch b;
    for (int32_t i = 0; i < n; ++i) {
      const int32_t pos = cached + i;
      b.token_ids.push_back(tokens[pos]);
      b.positions.push_back(pos);
      b.slot_mapping.push_back((1 + pos / bs) * bs + pos % bs);
      if (all || i == n - 1) b.logits_rows.push_back(i);
    }
    b.query_start = {0, n};
    b.num_cached = {cached};
    b.max_blocks_per_seq = static_cast<int32_t>(cache.spec().num_blocks - 1);
    for (int32_t i = 0; i < b.max_blocks_per_seq; ++i) b.block_tables.push_back(1 + i);
    std::vector<float> logits;
    Status st = m.ForwardHost(b, cache, &logits);
    EXPECT_TRUE(st.ok()) << st.message();
    cached += n;
    return logits;
  };
  const int64_t V = m.model().config().vocab_size;
  // Chunked prefill: 2 chunks (the second reads the first from the cache).
  const int32_t half = static_cast<int32_t>(prompt.size()) / 2;
  for (int32_t n : {half, static_cast<int32_t>(prompt.size()) - half}) {
    auto l = step(n, true);
    for (int32_t i = 0; i < n; ++i)
      tr.logits.emplace_back(l.begin() + i * V, l.begin() + (i + 1) * V);
  }
  for (int s = 0; s < steps; ++s) {
    const auto& last = tr.logits.back();
    const int32_t next =
        static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    tr.greedy.push_back(next);
    tokens.push_back(forced.empty() ? next : forced[s]);
    auto l = step(1, false);
    tr.logits.emplace_back(l.begin(), l.end());
  }
  return tr;
}

class ModelParity : public ::testing::TestWithParam<ParityCase> {};

TEST_P(ModelParity, CudaMatchesCpu) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  const ParityCase& pc = GetParam();
  const std::string dir = std::string(C8_SOURCE_DIR) + "/" + pc.dir;
  WorkerConfig wc;
  wc.model_dir = dir;
  wc.load.load_format = pc.load_format;
  wc.load.seed = 7;
  wc.load.max_model_len = 1024;
  CudaBackend* g = gpu.get();
  auto mc = Worker::Create(wc, std::make_unique<CpuBackend>(0), nullptr);
  ASSERT_TRUE(mc.ok()) << mc.message();
  auto mg = Worker::Create(wc, std::move(gpu), nullptr);
  ASSERT_TRUE(mg.ok()) << mg.message();
  Backend& cpu = (*mc)->backend();
  const ModelConfig& c = (*mc)->model().config();
  KvCacheSpec spec{c.num_layers, c.num_kv_heads, c.head_dim, 16, 1 + 256 / 16};
  // CPU reference in fp32 cache for 16-bit runs (bf16 rounding is the GPU's own error).
  auto cc = KvCache::Create(cpu, spec,
                            Layers(c, pc.kv == KvDType::kInt8 ? KvDType::kInt8 : KvDType::kF32));
  auto gc = KvCache::Create((*mg)->backend(), spec, Layers(c, pc.kv));
  ASSERT_TRUE(cc.ok() && gc.ok());
  std::mt19937 rng(11);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(c.vocab_size) - 1);
  std::vector<int32_t> prompt(100);
  for (auto& t : prompt) t = tok(rng);
  const int steps = 48;
  Trace ref = RunModel(**mc, **cc, prompt, {}, steps);
  ASSERT_TRUE(g->status().ok()) << g->status().message();
  // Free-running greedy on the GPU.
  auto gc2 = KvCache::Create((*mg)->backend(), spec, Layers(c, pc.kv));
  Trace freerun = RunModel(**mg, **gc2, prompt, {}, steps);
  // Teacher-forced with the CPU's tokens.
  Trace got = RunModel(**mg, **gc, prompt, ref.greedy, steps);
  ASSERT_TRUE(g->status().ok()) << g->status().message();
  double err2 = 0, ref2 = 0, perr2 = 0, pref2 = 0;
  int agree = 0;
  for (size_t r = 0; r < ref.logits.size(); ++r) {
    for (size_t i = 0; i < ref.logits[r].size(); ++i) {
      const double d = got.logits[r][i] - ref.logits[r][i];
      const double rr = static_cast<double>(ref.logits[r][i]) * ref.logits[r][i];
      err2 += d * d;
      ref2 += rr;
      if (r < prompt.size()) {
        perr2 += d * d;
        pref2 += rr;
      }
    }
  }
  for (int s = 0; s < steps; ++s) agree += got.greedy[s] == ref.greedy[s];
  int same_prefix = 0;
  while (same_prefix < steps && freerun.greedy[same_prefix] == ref.greedy[same_prefix])
    ++same_prefix;
  const double rel = std::sqrt(err2 / ref2);
  std::printf(
      "%-24s kv=%-4s logits rel err %.2e (prefill rows %.2e), forced top-1 agree %d/%d, free "
      "greedy identical for %d/%d tokens\n",
      pc.dir.c_str(), std::string(KvDTypeName(pc.kv)).c_str(), rel, std::sqrt(perr2 / pref2), agree,
      steps, same_prefix, steps);
  EXPECT_LT(rel, 3e-2);
  EXPECT_GE(agree, steps * 9 / 10);
}

INSTANTIATE_TEST_SUITE_P(
    All, ModelParity,
    // (The tiny transformers fixtures have head_dim 8-32; the CUDA kernels take 64 and 128.)
    ::testing::Values(ParityCase{"configs/smollm2-135m", "dummy", KvDType::kBF16},
                      ParityCase{"configs/smollm2-135m", "dummy", KvDType::kInt8},
                      ParityCase{"configs/qwen3-0.6b", "dummy", KvDType::kBF16},
                      ParityCase{"configs/qwen3-0.6b", "dummy", KvDType::kInt8}),
    [](const ::testing::TestParamInfo<ParityCase>& info) {
      std::string name = info.param.dir.substr(info.param.dir.rfind('/') + 1) + "_" +
                         std::string(KvDTypeName(info.param.kv));
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

}  // namespace
}  // namespace c8
