// `c8 quantize`'s pieces on the tiny Qwen2 fixture (it has q/k/v biases): activation ranges
// from calibration, the ModelSlim checkpoint written by the published formulas (checked tensor
// by tensor), the result loading back in c8 (static, dynamic, and W8A8C8) with logits close to
// the 16-bit model's, and the weight-scheme evaluation against the 16-bit model.
#include "c8/engine/weight_quantization.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "c8/engine/kv_eval.h"
#include "c8/runner/kv_layers.h"

namespace c8 {
namespace {
namespace fs = std::filesystem;

const std::string kSrc = std::string(C8_SOURCE_DIR) + "/tests/data/models/qwen2-tiny-yarn";

std::unique_ptr<ModelBundle> Load(const std::string& dir, const std::string& kv = "fp32") {
  EngineOptions o;
  o.model_dir = dir;
  o.backend.device = "cpu";
  o.backend.num_threads = 2;
  o.kv_cache_dtype = kv;
  o.max_model_len = 256;
  o.kv_cache_gib = 0.02;
  auto ex = Executor::Create(o);
  EXPECT_TRUE(ex.ok()) << dir << ": " << ex.message();
  if (!ex.ok()) return nullptr;
  auto b = std::make_unique<ModelBundle>();
  b->executor = std::move(ex).value();
  return b;
}

std::vector<int32_t> Tokens(int64_t vocab, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(vocab) - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

class WeightQuantization : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = fs::temp_directory_path() /
           ("c8_quant_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(out_);
  }
  void TearDown() override { fs::remove_all(out_); }
  // The 16-bit source, its weights and its activation statistics over random tokens.
  void Calibrate() {
    src_ = Load(kSrc);
    ASSERT_TRUE(src_);
    c_ = src_->executor->config();
    CalibrationOptions co;
    co.seq_len = 64;
    auto stats = CalibrateActivations(*src_, Tokens(c_.vocab_size, 256, 1), co);
    ASSERT_TRUE(stats.ok()) << stats.message();
    stats_ = std::move(stats).value();
    auto ws = WeightStore::Open(kSrc);
    ASSERT_TRUE(ws.ok()) << ws.message();
    ws_.emplace(std::move(ws).value());
  }
  // The checkpoint in out_ against the source on random tokens (fp32 caches).
  KvEvalResult CompareWithSource(const ModelBundle& m) {
    auto layers_ref = ResolveKvLayers(kSrc, c_, "fp32");
    auto layers_q = ResolveKvLayers(out_.string(), c_, "fp32");
    EXPECT_TRUE(layers_ref.ok() && layers_q.ok());
    KvEvalOptions eo;
    eo.window = 64;
    eo.parallel = 4;
    auto r = EvaluateModels(*src_->executor, *layers_ref, *m.executor, *layers_q,
                            Tokens(c_.vocab_size, 256, 2), eo);
    EXPECT_TRUE(r.ok()) << r.message();
    return r.ok() ? *r : KvEvalResult{};
  }
  fs::path out_;
  std::unique_ptr<ModelBundle> src_;
  ModelConfig c_;
  ActivationStats stats_;
  std::optional<WeightStore> ws_;
};

TEST_F(WeightQuantization, StaticCheckpointFollowsTheFormulasAndLoads) {
  ASSERT_NO_FATAL_FAILURE(Calibrate());
  const ModelConfig& c = c_;
  auto& ws = ws_;
  ASSERT_EQ(stats_.layers.size(), static_cast<size_t>(c.num_layers));
  ModelSlimWriteOptions wo;
  wo.scheme = "W8A8";
  ASSERT_TRUE(PlanQuantization(stats_, *ws, c, /*alpha=*/0.0f, &wo).ok());  // no smoothing here
  ASSERT_EQ(wo.ranges.size(), static_cast<size_t>(7 * c.num_layers));
  const ActivationRange rq = wo.ranges["model.layers.0.self_attn.q_proj"];
  const ActivationRange rk = wo.ranges["model.layers.0.self_attn.k_proj"];
  EXPECT_EQ(rq.lo, rk.lo);  // q, k, v read the same activation
  EXPECT_LT(rq.lo, 0.0f);
  EXPECT_GT(rq.hi, 0.0f);
  ASSERT_TRUE(WriteModelSlimCheckpoint(kSrc, out_.string(), c, *ws, wo).ok());

  // Layout and formulas.
  ASSERT_TRUE(fs::exists(out_ / "quant_model_weights.safetensors"));
  ASSERT_TRUE(fs::exists(out_ / "config.json"));
  nlohmann::json desc = nlohmann::json::parse(std::ifstream(out_ / "quant_model_description.json"));
  EXPECT_EQ(desc["model_quant_type"], "W8A8");
  EXPECT_EQ(desc["model.embed_tokens.weight"], "FLOAT");
  EXPECT_EQ(desc["model.layers.0.self_attn.q_proj.bias"], "FLOAT");
  EXPECT_EQ(desc["model.layers.1.mlp.down_proj.quant_bias"], "W8A8");
  auto q = WeightStore::Open(out_.string());
  ASSERT_TRUE(q.ok()) << q.message();
  const std::string p = "model.layers.0.self_attn.q_proj";
  const TensorView* w = *q->Get(p + ".weight");
  const TensorView* fw = *ws->Get(p + ".weight");
  ASSERT_EQ(w->dtype, DType::kI8);
  ASSERT_EQ(w->shape, fw->shape);
  std::vector<float> wf, bias, in_s, in_o, deq;
  ASSERT_TRUE(TensorToF32(*fw, wf).ok());
  ASSERT_TRUE(TensorToF32(**ws->Get(p + ".bias"), bias).ok());
  ASSERT_TRUE(TensorToF32(**q->Get(p + ".input_scale"), in_s).ok());
  ASSERT_TRUE(TensorToF32(**q->Get(p + ".input_offset"), in_o).ok());
  ASSERT_TRUE(TensorToF32(**q->Get(p + ".deq_scale"), deq).ok());
  const TensorView* qb = *q->Get(p + ".quant_bias");
  ASSERT_EQ(qb->dtype, DType::kI32);
  const double lo = std::min(0.0f, rq.lo), hi = std::max(0.0f, rq.hi);
  EXPECT_FLOAT_EQ(in_s[0], static_cast<float>((hi - lo) / 255.0));
  EXPECT_EQ(in_o[0], static_cast<float>(-128.0 - std::nearbyint(lo / in_s[0])));
  const int64_t N = fw->shape[0], K = fw->shape[1];
  const auto* wq = reinterpret_cast<const int8_t*>(w->data);
  const auto* qbias = reinterpret_cast<const int32_t*>(qb->data);
  for (int64_t n = 0; n < N; ++n) {
    float amax = 0;
    int64_t rowsum = 0;
    for (int64_t k = 0; k < K; ++k) {
      amax = std::max(amax, std::fabs(wf[n * K + k]));
      rowsum += wq[n * K + k];
    }
    const float s_w = amax / 127.0f;
    for (int64_t k = 0; k < K; ++k) {
      EXPECT_EQ(wq[n * K + k], static_cast<int8_t>(std::nearbyint(wf[n * K + k] / s_w)));
    }
    EXPECT_FLOAT_EQ(deq[n], in_s[0] * s_w);
    EXPECT_EQ(qbias[n], static_cast<int32_t>(std::nearbyint(static_cast<double>(bias[n]) / deq[n] -
                                                            in_o[0] * rowsum)));
  }

  // It loads, and its logits stay near the 16-bit model's.
  auto m = Load(out_.string());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->executor->worker(0).model().quant_summary(),
            "W8A8 x" + std::to_string(7 * c.num_layers));
  const KvEvalResult r = CompareWithSource(*m);
  std::printf("qwen2-tiny W8A8 vs 16-bit: ppl %.4f vs %.4f, mean KL %.3g, top-1 %.3f\n", r.ppl_test,
              r.ppl_ref, r.mean_kl, r.top1_agreement);
  EXPECT_LT(r.mean_kl, 0.05);
  EXPECT_GT(r.top1_agreement, 0.8);
}

TEST_F(WeightQuantization, SmoothingIsFoldedWithoutChangingTheFunction) {
  // With smoothing (alpha 0.5) the float function is unchanged: the scales divide the norm
  // weights and v_proj / up_proj rows and multiply the reading columns. A W8A8 checkpoint of it
  // still tracks the 16-bit model, and no worse than without smoothing.
  ASSERT_NO_FATAL_FAILURE(Calibrate());
  const ModelConfig& c = c_;
  double kl[2];
  for (int smooth = 0; smooth < 2; ++smooth) {
    ModelSlimWriteOptions wo;
    wo.scheme = "W8A8";
    wo.overwrite = true;
    ASSERT_TRUE(PlanQuantization(stats_, *ws_, c, smooth ? 0.5f : 0.0f, &wo).ok());
    if (smooth) {
      EXPECT_EQ(wo.overrides.count("model.layers.0.input_layernorm.weight"), 1u);
      EXPECT_EQ(wo.row_scale["model.layers.1.self_attn.v_proj"].size(),
                static_cast<size_t>(c.num_kv_heads * c.head_dim));
    }
    fs::remove_all(out_);
    ASSERT_TRUE(WriteModelSlimCheckpoint(kSrc, out_.string(), c, *ws_, wo).ok());
    auto m = Load(out_.string());
    ASSERT_TRUE(m);
    const KvEvalResult r = CompareWithSource(*m);
    kl[smooth] = r.mean_kl;
    std::printf("qwen2-tiny W8A8 %s smoothing: mean KL %.3g, top-1 %.3f\n",
                smooth ? "with" : "without", r.mean_kl, r.top1_agreement);
  }
  EXPECT_LT(kl[1], 0.05);
}

TEST_F(WeightQuantization, MixedSchemeAttentionStaticMlpDynamic) {
  ASSERT_NO_FATAL_FAILURE(Calibrate());
  const ModelConfig& c = c_;
  ModelSlimWriteOptions wo;
  wo.scheme = "W8A8_MIX";
  ASSERT_TRUE(PlanQuantization(stats_, *ws_, c, 0.8f, &wo).ok());
  ASSERT_TRUE(WriteModelSlimCheckpoint(kSrc, out_.string(), c, *ws_, wo).ok());
  nlohmann::json desc = nlohmann::json::parse(std::ifstream(out_ / "quant_model_description.json"));
  EXPECT_EQ(desc["model_quant_type"], "W8A8_DYNAMIC");
  EXPECT_EQ(desc["model.layers.0.self_attn.o_proj.deq_scale"], "W8A8");
  EXPECT_EQ(desc["model.layers.0.mlp.down_proj.weight_scale"], "W8A8_DYNAMIC");
  EXPECT_EQ(desc.count("model.layers.0.mlp.down_proj.deq_scale"), 0u);
  auto m = Load(out_.string());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->executor->worker(0).model().quant_summary(),
            "W8A8 x" + std::to_string(4 * c.num_layers) + ", W8A8_DYNAMIC x" +
                std::to_string(3 * c.num_layers));
}

TEST_F(WeightQuantization, DynamicAndC8CheckpointsLoad) {
  auto ws = WeightStore::Open(kSrc);
  ASSERT_TRUE(ws.ok());
  auto src = Load(kSrc);
  ASSERT_TRUE(src);
  const ModelConfig c = src->executor->config();
  ModelSlimWriteOptions wo;
  wo.scheme = "W8A8_DYNAMIC";
  ASSERT_TRUE(WriteModelSlimCheckpoint(kSrc, out_.string(), c, *ws, wo).ok());
  std::vector<C8LayerScales> kv;
  {
    auto m = Load(out_.string());
    ASSERT_TRUE(m);
    EXPECT_EQ(m->executor->worker(0).model().quant_summary(),
              "W8A8_DYNAMIC x" + std::to_string(7 * c.num_layers));
    CalibrationOptions co;
    co.seq_len = 64;
    auto s = CalibrateKv(*m, Tokens(c.vocab_size, 256, 3), co);
    ASSERT_TRUE(s.ok()) << s.message();
    kv = *s;
  }
  // Rewritten in place with the C8 tensors: a W8A8_DYNAMIC + C8 checkpoint.
  wo.kv_scales = kv;
  wo.overwrite = true;
  ASSERT_TRUE(WriteModelSlimCheckpoint(kSrc, out_.string(), c, *ws, wo).ok());
  nlohmann::json desc = nlohmann::json::parse(std::ifstream(out_ / "quant_model_description.json"));
  EXPECT_EQ(desc["kv_cache_type"], "C8");
  EXPECT_EQ(desc["model.layers.0.self_attn.k_proj.kv_cache_scale"], "C8");
  EXPECT_EQ(desc["model.layers.0.self_attn.q_proj.weight_offset"], "W8A8_DYNAMIC");
  auto m = Load(out_.string(), "auto");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->executor->layer_dtype(0), KvDType::kInt8);
  // A quantized checkpoint is no source for quantization.
  auto qws = WeightStore::Open(out_.string());
  ASSERT_TRUE(qws.ok());
  Status st = WriteModelSlimCheckpoint(out_.string(), (out_ / "again").string(), c, *qws, wo);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("16-bit"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace c8
