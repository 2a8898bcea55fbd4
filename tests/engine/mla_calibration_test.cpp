// `c8 calibrate` for an MLA model (tiny DeepSeek V2 / V3): per-layer latent scales and per-head
// absorbed-query scales written in ModelSlim's FAKQuant layout, loaded back as an int8 latent
// cache (16-bit rope part) by --kv-cache-dtype auto.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "c8/engine/kv_calibration.h"
#include "c8/engine/model_bundle.h"
#include "c8/formats/c8_writer.h"
#include "c8/formats/safetensors.h"

namespace c8 {
namespace {
namespace fs = std::filesystem;

class MlaCalibration : public ::testing::TestWithParam<std::string> {};

TEST_P(MlaCalibration, WritesFaKQuantScalesThatLoadAsAnInt8Latent) {
  const std::string src = std::string(C8_SOURCE_DIR) + "/tests/data/models/" + GetParam();
  const std::string out =
      (fs::temp_directory_path() / ("c8_mla_c8_" + GetParam() + std::to_string(::getpid())))
          .string();
  fs::remove_all(out);
  EngineOptions o;
  o.model_dir = src;
  o.backend.device = "cpu";
  o.backend.num_threads = 2;
  o.kv_cache_dtype = "bf16";
  o.max_model_len = 256;
  // No tokenizer in the fixtures: the bundle holds the executor alone (token ids in).
  auto ex = Executor::Create(o);
  ASSERT_TRUE(ex.ok()) << ex.message();
  auto b = std::make_unique<ModelBundle>();
  b->executor = std::move(ex).value();
  const ModelConfig& c = b->executor->config();
  std::mt19937 rng(3);
  std::vector<int32_t> tokens(300);
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % c.vocab_size);
  CalibrationOptions co;
  co.seq_len = 128;
  auto scales = CalibrateKv(*b, tokens, co);
  ASSERT_TRUE(scales.ok()) << scales.message();
  ASSERT_EQ(scales->size(), static_cast<size_t>(c.num_layers));
  for (const C8LayerScales& s : *scales) {
    ASSERT_EQ(s.q_scale.size(), static_cast<size_t>(c.num_heads));
    ASSERT_EQ(s.k_scale.size(), static_cast<size_t>(c.mla.kv_lora_rank));
    EXPECT_GT(s.k_scale[0], 0.0f);
    for (float v : s.k_scale) EXPECT_EQ(v, s.k_scale[0]);  // one scale per layer
    for (float v : s.k_offset) EXPECT_EQ(v, 0.0f);
  }
  auto ws = WeightStore::Open(src);
  ASSERT_TRUE(ws.ok());
  ASSERT_TRUE(WriteC8ModelDir(src, out, *ws, *scales, {}).ok());

  // The ModelSlim layout.
  std::ifstream in(out + "/quant_model_description.json");
  nlohmann::json desc = nlohmann::json::parse(in);
  EXPECT_EQ(desc.value("fa_quant_type", ""), "FAKQuant");
  EXPECT_FALSE(desc.contains("kv_cache_type"));
  EXPECT_EQ(desc.value("model.layers.1.self_attn.fa_k.scale", ""), "FAQuant");
  auto c8ws = WeightStore::Open(out);
  ASSERT_TRUE(c8ws.ok()) << c8ws.message();
  auto fk = c8ws->Get("model.layers.1.self_attn.fa_k.scale", {1, 1});
  ASSERT_TRUE(fk.ok()) << fk.message();
  EXPECT_EQ((*fk)->dtype, DType::kF32);
  auto fo = c8ws->Get("model.layers.1.self_attn.fa_k.offset", {1, 1});
  ASSERT_TRUE(fo.ok()) << fo.message();
  EXPECT_EQ((*fo)->dtype, DType::kI8);
  EXPECT_TRUE(c8ws->Get("model.layers.0.self_attn.fa_q.scale", {c.num_heads, 1}).ok());
  EXPECT_TRUE(c8ws->Get("model.layers.0.self_attn.fa_v.scale", {1, 1}).ok());

  // Loaded back: every layer's latent int8 with the calibrated scale, the rope part 16-bit.
  EngineOptions o2 = o;
  o2.model_dir = out;
  o2.kv_cache_dtype = "auto";
  auto b2 = Executor::Create(o2);
  ASSERT_TRUE(b2.ok()) << b2.message();
  const auto& layers = (*b2)->kv_layers();
  for (int64_t l = 0; l < c.num_layers; ++l) {
    EXPECT_EQ(layers[l].dtype, KvDType::kInt8) << "layer " << l;
    ASSERT_EQ(layers[l].c8.k_scale.size(), static_cast<size_t>(c.mla.kv_lora_rank));
    EXPECT_EQ(layers[l].c8.k_scale[5], (*scales)[l].k_scale[0]);
  }
  EXPECT_EQ((*b2)->KvBytesPerToken(),
            c.num_layers * (c.mla.kv_lora_rank + 2 * c.mla.qk_rope_head_dim));
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(Models, MlaCalibration,
                         ::testing::Values("deepseek-v2-tiny", "deepseek-v3-tiny"));

}  // namespace
}  // namespace c8
