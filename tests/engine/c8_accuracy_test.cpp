// C8 on the real SmolLM2: calibrate on one text, evaluate on another (teacher-forced decode
// from the cache), and serve greedy text with an int8 cache through the batching engine.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "c8/engine/kv_calibration.h"
#include "c8/engine/kv_eval.h"
#include "c8/engine/llm_engine.h"
#include "c8/formats/c8_writer.h"

namespace c8 {
namespace {
namespace fs = std::filesystem;

std::string SmolDir() {
  if (const char* e = std::getenv("C8_SMOLLM2_DIR")) return e;
  return std::string(C8_SOURCE_DIR) + "/models/smollm2-135m-instruct";
}

std::string ReadText(const std::string& name) {
  std::ifstream in(std::string(C8_SOURCE_DIR) + "/data/text/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class C8Accuracy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(SmolDir() + "/config.json")) return;
    c8_dir_ = (fs::temp_directory_path() / ("c8_smol_c8_" + std::to_string(::getpid()))).string();
    fs::remove_all(c8_dir_);
    EngineOptions o;
    o.model_dir = SmolDir();
    o.backend.device = "cpu";
    o.kv_cache_dtype = "bf16";
    o.max_model_len = 512;
    auto b = ModelBundle::Load(o);
    ASSERT_TRUE(b.ok()) << b.message();
    auto tokens = (*b)->tokenizer->Encode(ReadText("gpl-3.txt"), false);
    CalibrationOptions co;
    co.seq_len = 512;
    co.max_tokens = 4096;
    auto scales = CalibrateKv(**b, tokens, co);
    ASSERT_TRUE(scales.ok()) << scales.message();
    auto ws = WeightStore::Open(SmolDir());
    ASSERT_TRUE(ws.ok());
    ASSERT_TRUE(WriteC8ModelDir(SmolDir(), c8_dir_, *ws, *scales, {}).ok());
  }
  static void TearDownTestSuite() {
    if (!c8_dir_.empty()) fs::remove_all(c8_dir_);
  }
  void SetUp() override {
    if (!fs::exists(SmolDir() + "/config.json")) GTEST_SKIP() << "converted SmolLM2 not found";
  }
  static std::string c8_dir_;
};
std::string C8Accuracy::c8_dir_;

TEST_F(C8Accuracy, PerplexityAndTop1AgreementOnHeldOutText) {
  EngineOptions o;
  o.model_dir = c8_dir_;
  o.backend.device = "cpu";
  o.max_model_len = 512;
  auto b = ModelBundle::Load(o);
  ASSERT_TRUE(b.ok()) << b.message();
  ASSERT_EQ((*b)->executor->layer_dtype(0), KvDType::kInt8);  // auto = the checkpoint's C8
  const ModelConfig& c = (*b)->executor->config();
  auto ref = ResolveKvLayers(c8_dir_, c, "bf16");
  auto test = ResolveKvLayers(c8_dir_, c, "auto");
  ASSERT_TRUE(ref.ok() && test.ok());
  auto tokens = (*b)->tokenizer->Encode(ReadText("mpl-2.0.txt"), false);
  KvEvalOptions ko;
  ko.window = 256;
  ko.max_tokens = 1536;
  auto r = EvaluateKv(*(*b)->executor, *ref, *test, tokens, ko);
  ASSERT_TRUE(r.ok()) << r.message();
  std::printf(
      "C8 vs bf16 KV on SmolLM2: %lld tokens, ppl %.4f vs %.4f (+%.3f%%), KL %.5f, top-1 "
      "agreement %.4f\n",
      static_cast<long long>(r->tokens_scored), r->ppl_test, r->ppl_ref, r->ppl_increase_pct,
      r->mean_kl, r->top1_agreement);
  EXPECT_EQ(r->tokens_scored, 1530);
  EXPECT_LE(r->ppl_increase_pct, 0.5);
  EXPECT_GE(r->top1_agreement, 0.97);
  EXPECT_GT(r->mean_kl, 0.0);  // the int8 cache really was read
  EXPECT_LT(r->mean_kl, 0.01);
}

TEST_F(C8Accuracy, Int8EngineBatchedEqualsSingleAndPrefixHitEqualsCold) {
  EngineOptions o;
  o.model_dir = c8_dir_;
  o.backend.device = "cpu";
  o.max_model_len = 512;
  auto b = ModelBundle::Load(o);
  ASSERT_TRUE(b.ok()) << b.message();
  ModelBundle& m = **b;
  const std::vector<std::string> prompts = {
      "The quick brown fox jumps over the lazy dog. The quick brown fox",
      "In mathematics, a prime number is a natural number greater than 1 that",
      "The quick brown fox jumps over the lazy dog. Then the dog"};
  auto run = [&](const std::vector<size_t>& which, bool prefix) {
    EngineConfig ec;
    ec.scheduler.max_model_len = 512;
    ec.enable_prefix_caching = prefix;
    LlmEngine engine(m, ec);
    SamplingParams sp;
    sp.temperature = 0;
    sp.max_tokens = 16;
    sp.ignore_eos = true;
    for (size_t i : which) {
      EngineRequest r;
      r.id = std::to_string(i);
      r.prompt = m.EncodePrompt(prompts[i]);
      r.params = sp;
      EXPECT_TRUE(engine.AddRequest(std::move(r)).ok());
    }
    std::map<size_t, std::vector<int32_t>> out;
    while (engine.HasWork()) {
      for (auto& o : engine.Step()) {
        for (auto& t : o.new_tokens) out[std::stoul(o.id)].push_back(t.token_id);
      }
    }
    return out;
  };
  auto batched = run({0, 1, 2}, false);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(batched[i], run({i}, false)[i]) << "prompt " << i;
  }
  // Prefix caching on: prompts 0 and 2 share their first block (16 tokens, int8 cached).
  auto cached = run({0, 1, 2}, true);
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(cached[i].size(), 16u);
}

}  // namespace
}  // namespace c8
