// c8's CPU forward pass against transformers' float32 reference logits (fixtures made by
// tools/make_model_fixtures.py): tiny random-weight Qwen3 / Qwen2 (yarn, sharded bf16) /
// Llama (llama3 rope, fp16) models, and the real SmolLM2 as converted by `c8 convert`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "c8/backend/cpu/cpu_backend.h"
#include "c8/runner/kv_layers.h"
#include "c8/runner/worker.h"

namespace c8 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kData = std::string(C8_SOURCE_DIR) + "/tests/data/models/";

std::string SmolDir() {
  if (const char* e = std::getenv("C8_SMOLLM2_DIR")) return e;
  return std::string(C8_SOURCE_DIR) + "/models/smollm2-135m-instruct";
}

struct Fixture {
  json meta;
  std::vector<char> bin;
};

Fixture LoadFixture(const std::string& name) {
  Fixture f;
  std::ifstream j(kData + name + ".ref.json");
  f.meta = json::parse(j);
  std::ifstream b(kData + name + ".ref.bin", std::ios::binary);
  f.bin.assign(std::istreambuf_iterator<char>(b), {});
  return f;
}

// Runs one sequence through the paged cache: prefill `prompt` in chunks of `chunk`
// tokens, returning logits of every prompt position; then greedy-decodes `steps` tokens.
struct RunResult {
  std::vector<std::vector<float>> prompt_logits;  // (P, V)
  std::vector<int32_t> greedy;
};

RunResult RunSequence(Worker& model, KvCache& cache, const std::vector<int32_t>& prompt, int chunk,
                      int steps) {
  const int64_t V = model.model().config().vocab_size;
  const int32_t bs = static_cast<int32_t>(cache.spec().block_size);
  const int32_t max_blocks = static_cast<int32_t>(cache.spec().num_blocks);
  RunResult r;
  std::vector<int32_t> tokens = prompt;
  int32_t cached = 0;
  auto step = [&](int32_t n_new, bool all_logits) {
    ForwardBatch b;
    for (int32_t i = 0; i < n_new; ++i) {
      int32_t pos = cached + i;
      b.token_ids.push_back(tokens[pos]);
      b.positions.push_back(pos);
      b.slot_mapping.push_back(pos);  // blocks 0, 1, 2, ... in order: slot == position
      if (all_logits || i == n_new - 1) b.logits_rows.push_back(i);
    }
    b.query_start = {0, n_new};
    b.num_cached = {cached};
    b.max_blocks_per_seq = max_blocks;
    // A scrambled block table would be more paged: reverse order exercises indexing.
    for (int32_t i = 0; i < max_blocks; ++i) b.block_tables.push_back(i);
    for (auto& s : b.slot_mapping) s = b.block_tables[s / bs] * bs + s % bs;
    std::vector<float> logits;
    Status st = model.ForwardHost(b, cache, &logits);
    EXPECT_TRUE(st.ok()) << st.message();
    cached += n_new;
    return logits;
  };
  for (int32_t done = 0; done < static_cast<int32_t>(prompt.size());) {
    int32_t n = std::min<int32_t>(chunk, static_cast<int32_t>(prompt.size()) - done);
    auto logits = step(n, true);
    for (int32_t i = 0; i < n; ++i) {
      r.prompt_logits.emplace_back(logits.begin() + i * V, logits.begin() + (i + 1) * V);
    }
    done += n;
  }
  std::vector<float> last = r.prompt_logits.back();
  for (int s = 0; s < steps; ++s) {
    int32_t next = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    r.greedy.push_back(next);
    tokens.push_back(next);
    if (s + 1 < steps) last = step(1, false);
  }
  return r;
}

// A one-rank worker on its own CPU backend.
Result<std::unique_ptr<Worker>> LoadWorker(const std::string& dir, int threads,
                                           const ModelLoadOptions& o = {}) {
  WorkerConfig wc;
  wc.model_dir = dir;
  wc.load = o;
  return Worker::Create(wc, std::make_unique<CpuBackend>(threads), nullptr);
}

std::unique_ptr<KvCache> MakeCache(Backend& backend, const ModelConfig& c, KvDType dtype,
                                   int64_t tokens) {
  const KvCacheSpec spec = MakeKvCacheSpec(c, c.num_kv_heads, 16, (tokens + 15) / 16 + 1);
  std::vector<KvLayerConfig> layers(c.num_layers);
  for (auto& l : layers) l.dtype = dtype;
  auto cache = KvCache::Create(backend, spec, layers);
  EXPECT_TRUE(cache.ok()) << cache.message();
  return std::move(cache).value();
}

// max |a - b| / max |b| over a row.
double RelErr(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a[i] - b[i])));
    den = std::max(den, static_cast<double>(std::fabs(b[i])));
  }
  return num / den;
}

class TinyModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TinyModelTest, LogitsAndGreedyMatchTransformers) {
  const std::string name = GetParam();
  Fixture fx = LoadFixture(name);
  auto model = LoadWorker(kData + name, 2);
  ASSERT_TRUE(model.ok()) << model.message();
  Backend& backend = (*model)->backend();
  const ModelConfig& c = (*model)->model().config();
  const auto& prompts = fx.meta["prompts"];
  double worst = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    std::vector<int32_t> prompt = prompts[p].get<std::vector<int32_t>>();
    auto expected_greedy = fx.meta["greedy"][p].get<std::vector<int32_t>>();
    const auto& lm = fx.meta["logits"][p];
    const float* ref = reinterpret_cast<const float*>(fx.bin.data() + lm["offset"].get<size_t>());
    ASSERT_EQ(lm["vocab"].get<int64_t>(), c.vocab_size);
    for (int chunk : {1000, 7}) {  // one-shot prefill, then chunked prefill through the cache
      auto cache = MakeCache(backend, c, KvDType::kF32, prompt.size() + 64);
      RunResult r = RunSequence(**model, *cache, prompt, chunk, 64);
      ASSERT_EQ(r.prompt_logits.size(), prompt.size());
      for (size_t i = 0; i < prompt.size(); ++i) {
        double e = RelErr(r.prompt_logits[i].data(), ref + i * c.vocab_size, c.vocab_size);
        worst = std::max(worst, e);
        EXPECT_LT(e, 1e-4) << name << " prompt " << p << " position " << i << " chunk " << chunk;
      }
      EXPECT_EQ(r.greedy, expected_greedy) << name << " prompt " << p << " chunk " << chunk;
    }
  }
  std::printf("%s: worst max-abs/max-ref logit error %.3g\n", name.c_str(), worst);
}

INSTANTIATE_TEST_SUITE_P(Models, TinyModelTest,
                         ::testing::Values("qwen3-tiny", "qwen2-tiny-yarn", "llama-tiny-llama3",
                                           "deepseek-v2-tiny", "deepseek-v3-tiny"));

// C8 for MLA: the latent stored int8 with one static scale per layer (ModelSlim's fa_k.scale:
// absmax / 127 of the latent, observed here on the prompt through the model's KV observer), the
// roped key 16-bit. Regression figures on the random-weight models: logits against the fp32
// cache and greedy agreement.
class MlaC8Test : public ::testing::TestWithParam<std::string> {};

TEST_P(MlaC8Test, Int8LatentStaysCloseToFp32) {
  const std::string name = GetParam();
  Fixture fx = LoadFixture(name);
  auto model = LoadWorker(kData + name, 2);
  ASSERT_TRUE(model.ok()) << model.message();
  Backend& backend = (*model)->backend();
  const ModelConfig& c = (*model)->model().config();
  ASSERT_TRUE(c.is_mla());
  const std::vector<int32_t> prompt = fx.meta["prompts"][4].get<std::vector<int32_t>>();
  std::vector<float> absmax(static_cast<size_t>(c.num_layers), 0.0f);
  (*model)->model().SetKvObserver([&](int64_t l, const float* k, const float*, int64_t T) {
    for (int64_t i = 0; i < T * c.mla.kv_lora_rank; ++i) {
      absmax[l] = std::max(absmax[l], std::fabs(k[i]));
    }
  });
  auto ref_cache = MakeCache(backend, c, KvDType::kF32, prompt.size() + 64);
  RunResult ref = RunSequence(**model, *ref_cache, prompt, 1000, 32);
  (*model)->model().SetKvObserver(nullptr);
  std::vector<KvLayerConfig> layers(c.num_layers);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    ASSERT_GT(absmax[l], 0.0f);
    layers[l].dtype = KvDType::kInt8;
    layers[l].c8.k_scale.assign(c.mla.kv_lora_rank, absmax[l] / 127.0f);
    layers[l].c8.k_offset.assign(c.mla.kv_lora_rank, 0.0f);
  }
  const KvCacheSpec spec = MakeKvCacheSpec(c, 1, 16, (prompt.size() + 64 + 15) / 16 + 1);
  auto c8 = KvCache::Create(backend, spec, layers);
  ASSERT_TRUE(c8.ok()) << c8.message();
  EXPECT_EQ((*c8)->BytesPerToken(),
            c.num_layers * (c.mla.kv_lora_rank + 2 * c.mla.qk_rope_head_dim));
  for (int chunk : {1000, 7}) {
    RunResult got = RunSequence(**model, **c8, prompt, chunk, 32);
    // Mean over positions: a single position can jump where the perturbed latent flips an
    // expert choice of the router (discrete), which the worst case would make the figure.
    double worst = 0, mean = 0;
    for (size_t i = 0; i < prompt.size(); ++i) {
      const double e =
          RelErr(got.prompt_logits[i].data(), ref.prompt_logits[i].data(), c.vocab_size);
      worst = std::max(worst, e);
      mean += e / static_cast<double>(prompt.size());
    }
    int same = 0;
    for (size_t i = 0; i < got.greedy.size(); ++i) same += got.greedy[i] == ref.greedy[i];
    std::printf(
        "%s C8 latent (chunk %d): logit error vs fp32 cache mean %.3g, worst %.3g; greedy %d/32\n",
        name.c_str(), chunk, mean, worst, same);
    EXPECT_LT(mean, 0.05);
    EXPECT_GE(same, 16);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, MlaC8Test,
                         ::testing::Values("deepseek-v2-tiny", "deepseek-v3-tiny"));

// A ModelSlim W8A8_DYNAMIC DeepSeek V2 (tools/make_deepseek_w8a8_fixture.py: attention and
// every expert's linears int8, kv_b_proj and the router float) against transformers running
// the same quantized model exactly (dequantized weights, per-token fake-quantized activations,
// fp64). Activations that land on the other side of a rounding boundary (fp32 here, fp64
// there), and the router decisions of this random model that flip with them, keep positions
// from agreeing to the last bit; the float model itself is ~5e-2 away (mean).
TEST(DeepseekW8A8, DynamicCheckpointMatchesTheQuantizedReference) {
  const std::string name = "deepseek-v2-tiny-w8a8-dynamic";
  Fixture fx = LoadFixture(name);
  auto model = LoadWorker(kData + name, 2);
  ASSERT_TRUE(model.ok()) << model.message();
  // 66 linears; kv_a_proj_with_mqa loads as two parts (latent rows, rope rows).
  EXPECT_EQ((*model)->model().quant_summary(), "W8A8_DYNAMIC x69");
  const ModelConfig& c = (*model)->model().config();
  const auto& prompts = fx.meta["prompts"];
  double worst = 0, mean = 0;
  int64_t n = 0, close = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    std::vector<int32_t> prompt = prompts[p].get<std::vector<int32_t>>();
    const auto& lm = fx.meta["logits"][p];
    const float* ref = reinterpret_cast<const float*>(fx.bin.data() + lm["offset"].get<size_t>());
    for (int chunk : {1000, 7}) {
      auto cache = MakeCache((*model)->backend(), c, KvDType::kF32, prompt.size() + 4);
      RunResult r = RunSequence(**model, *cache, prompt, chunk, 1);
      for (size_t i = 0; i < prompt.size(); ++i) {
        const double e = RelErr(r.prompt_logits[i].data(), ref + i * c.vocab_size, c.vocab_size);
        worst = std::max(worst, e);
        mean += e;
        close += e < 1e-3;
        ++n;
      }
    }
  }
  mean /= static_cast<double>(n);
  std::printf("%s: logit error vs the quantized reference: worst %.3g mean %.3g, %lld/%lld "
              "positions within 1e-3\n",
              name.c_str(), worst, mean, static_cast<long long>(close), static_cast<long long>(n));
  EXPECT_LT(mean, 5e-3);
  EXPECT_LT(worst, 5e-2);
  EXPECT_GE(close, n * 6 / 10);
}

// ModelSlim W8A8 / W8A8_DYNAMIC checkpoints of the tiny Qwen3 (tools/make_w8a8_fixtures.py:
// numpy, the published formulas, an fp64 forward of the quantized model as the reference):
// c8 quantizes its fp32 activations exactly as the formulas say, so the logits agree up to
// the rare activation that lands on the other side of a rounding boundary. Layer 0 carries a
// norm bias (anti-outlier smoothing), a statically folded bias and one int64-encoded deq_scale.
class W8A8ModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(W8A8ModelTest, LogitsMatchTheQuantizedReference) {
  const std::string name = GetParam();
  Fixture fx = LoadFixture(name);
  auto model = LoadWorker(kData + name, 2);
  ASSERT_TRUE(model.ok()) << model.message();
  EXPECT_NE((*model)->model().quant_summary().find(
                name.find("dynamic") != std::string::npos ? "W8A8_DYNAMIC x21" : "W8A8 x21"),
            std::string::npos)
      << (*model)->model().quant_summary();
  const ModelConfig& c = (*model)->model().config();
  const auto& prompts = fx.meta["prompts"];
  double worst = 0, mean = 0;
  int64_t n = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    std::vector<int32_t> prompt = prompts[p].get<std::vector<int32_t>>();
    const auto& lm = fx.meta["logits"][p];
    const float* ref = reinterpret_cast<const float*>(fx.bin.data() + lm["offset"].get<size_t>());
    for (int chunk : {1000, 5}) {
      auto cache = MakeCache((*model)->backend(), c, KvDType::kF32, prompt.size() + 4);
      RunResult r = RunSequence(**model, *cache, prompt, chunk, 1);
      for (size_t i = 0; i < prompt.size(); ++i) {
        const double e = RelErr(r.prompt_logits[i].data(), ref + i * c.vocab_size, c.vocab_size);
        worst = std::max(worst, e);
        mean += e;
        ++n;
        EXPECT_LT(e, 2e-2) << name << " prompt " << p << " position " << i << " chunk " << chunk;
      }
    }
  }
  mean /= static_cast<double>(n);
  EXPECT_LT(mean, 2e-3) << name;
  std::printf("%s: max-abs/max-ref logit error vs the fp64 reference: worst %.3g mean %.3g\n",
              name.c_str(), worst, mean);
}

INSTANTIATE_TEST_SUITE_P(Models, W8A8ModelTest,
                         ::testing::Values("qwen3-tiny-w8a8", "qwen3-tiny-w8a8-dynamic"));

TEST(SmolLM2, LogitsAndGreedyMatchTransformers) {
  if (!fs::exists(SmolDir() + "/config.json")) {
    GTEST_SKIP() << "converted SmolLM2 not found at " << SmolDir()
                 << " (run scripts/setup.sh, or set C8_SMOLLM2_DIR)";
  }
  Fixture fx = LoadFixture("smollm2");
  auto model = LoadWorker(SmolDir(), 0);
  ASSERT_TRUE(model.ok()) << model.message();
  Backend& backend = (*model)->backend();
  const ModelConfig& c = (*model)->model().config();
  const auto& prompts = fx.meta["prompts"];
  int identical = 0;
  double worst = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    std::vector<int32_t> prompt = prompts[p].get<std::vector<int32_t>>();
    const auto& lm = fx.meta["logits"][p];
    const int64_t P = lm["positions"], K = lm["topk"];
    const char* base = fx.bin.data() + lm["offset"].get<size_t>();
    const int32_t* ids = reinterpret_cast<const int32_t*>(base);
    const float* vals = reinterpret_cast<const float*>(base + P * K * 4);
    auto cache = MakeCache(backend, c, KvDType::kF32, prompt.size() + 64);
    RunResult r = RunSequence(**model, *cache, prompt, 1 << 20, 64);
    for (int64_t i = 0; i < P; ++i) {
      double num = 0, den = 0;
      for (int64_t k = 0; k < K; ++k) {
        float mine = r.prompt_logits[i][ids[i * K + k]];
        num = std::max(num, static_cast<double>(std::fabs(mine - vals[i * K + k])));
        den = std::max(den, static_cast<double>(std::fabs(vals[i * K + k])));
      }
      worst = std::max(worst, num / den);
      EXPECT_LT(num / den, 2e-3) << "prompt " << p << " position " << i;
    }
    auto expected = fx.meta["greedy"][p].get<std::vector<int32_t>>();
    identical += r.greedy == expected;
  }
  std::printf("SmolLM2: worst top-64 logit error %.3g, %d/%zu greedy continuations identical\n",
              worst, identical, prompts.size());
  EXPECT_GE(identical, 5);
}

}  // namespace
}  // namespace c8

namespace c8 {
namespace {

TEST(DummyWeights, SeededRandomWeightsAreDeterministicAndNeedNoSafetensors) {
  // A directory with only config.json (the qwen3-8b shape is too big for a test: use tiny).
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("c8_dummy_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(kData + "qwen3-tiny/config.json", dir / "config.json",
                fs::copy_options::overwrite_existing);
  auto run = [&](uint64_t seed) {
    ModelLoadOptions o;
    o.load_format = "dummy";
    o.seed = seed;
    auto m = LoadWorker(dir.string(), 1, o);
    EXPECT_TRUE(m.ok()) << m.message();
    auto cache = MakeCache((*m)->backend(), (*m)->model().config(), KvDType::kF32, 64);
    return RunSequence(**m, *cache, {1, 2, 3, 4, 5}, 1000, 4).prompt_logits.back();
  };
  auto a = run(1), b = run(1), c = run(2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double norm = 0;
  for (float x : a) norm += x * x;
  EXPECT_GT(norm, 0.0);
  ModelLoadOptions bad;
  bad.load_format = "pt";
  auto m = LoadWorker(dir.string(), 1, bad);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("--load-format"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace c8
