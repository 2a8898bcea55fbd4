// C8 checkpoint round trip (c8 writer -> loader), per-layer selection, per-tensor values,
// and the validation errors, on the tiny Qwen3 fixture model.
#include "c8/formats/c8_checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "c8/formats/c8_writer.h"
#include "c8/formats/safetensors_writer.h"

namespace c8 {
namespace {
namespace fs = std::filesystem;

const std::string kTiny = std::string(C8_SOURCE_DIR) + "/tests/data/models/qwen3-tiny";

class C8CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = fs::temp_directory_path() /
           ("c8ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(tmp_);
    auto cfg = LoadModelConfig(kTiny);
    ASSERT_TRUE(cfg.ok()) << cfg.message();
    cfg_ = *cfg;
    channels_ = cfg_.num_kv_heads * cfg_.head_dim;
  }
  void TearDown() override { fs::remove_all(tmp_); }

  std::vector<C8LayerScales> MakeScales() {
    std::vector<C8LayerScales> v(cfg_.num_layers);
    for (int64_t l = 0; l < cfg_.num_layers; ++l) {
      for (int64_t c = 0; c < channels_; ++c) {
        v[l].k_scale.push_back(0.01f * (l + 1) + 0.001f * c);
        v[l].k_offset.push_back(static_cast<float>(c % 7) - 3);
        v[l].v_scale.push_back(0.02f + 0.0001f * c);
        v[l].v_offset.push_back(0.5f);
      }
    }
    return v;
  }
  std::string WriteDir() {
    auto ws = WeightStore::Open(kTiny);
    EXPECT_TRUE(ws.ok());
    Status st = WriteC8ModelDir(kTiny, tmp_.string(), *ws, MakeScales(), {{"k", "v"}});
    EXPECT_TRUE(st.ok()) << st.message();
    return tmp_.string();
  }
  Result<C8Checkpoint> Load(const std::string& dir) {
    auto ws = WeightStore::Open(dir);
    if (!ws.ok()) return ws.status();
    return LoadC8Checkpoint(dir, cfg_, *ws);
  }
  void EditDescription(const std::function<void(nlohmann::json&)>& f) {
    fs::path p = tmp_ / "quant_model_description.json";
    nlohmann::json j = nlohmann::json::parse(std::ifstream(p));
    f(j);
    std::ofstream(p) << j.dump();
  }
  // Replaces the scales file with one whose tensor `bad` has the given values.
  void WriteScalesWith(const std::string& bad, std::vector<float> values) {
    std::vector<SafetensorsTensorSpec> specs;
    std::vector<std::vector<float>> data;
    auto scales = MakeScales();
    for (int64_t l = 0; l < cfg_.num_layers; ++l) {
      for (auto [kv, what, vec] : {std::tuple{'k', "scale", &scales[l].k_scale},
                                   std::tuple{'k', "offset", &scales[l].k_offset},
                                   std::tuple{'v', "scale", &scales[l].v_scale},
                                   std::tuple{'v', "offset", &scales[l].v_offset}}) {
        std::string name = C8TensorName(l, kv, what);
        if (name == bad && values.empty()) continue;  // leave it out
        data.push_back(name == bad ? values : *vec);
        specs.push_back({name, SafetensorsDtype::kF32, {static_cast<int64_t>(data.back().size())}});
      }
    }
    fs::remove(tmp_ / "kv_cache_scales.safetensors");
    auto w = SafetensorsWriter::Create((tmp_ / "kv_cache_scales.safetensors").string(), specs);
    ASSERT_TRUE(w.ok());
    for (size_t i = 0; i < specs.size(); ++i) {
      ASSERT_TRUE(w->WriteTensor(specs[i].name, data[i].data(), data[i].size() * 4).ok());
    }
    ASSERT_TRUE(w->Finish().ok());
  }

  fs::path tmp_;
  ModelConfig cfg_;
  int64_t channels_ = 0;
};

TEST_F(C8CheckpointTest, NoDescriptionMeansNoC8) {
  auto c = Load(kTiny);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_FALSE(c->present);
  EXPECT_EQ(c->num_c8_layers(), 0);
}

TEST_F(C8CheckpointTest, WriterRoundTripsEveryLayerAndLinksWeights) {
  std::string dir = WriteDir();
  EXPECT_TRUE(fs::is_symlink(fs::path(dir) / "model.safetensors"));
  auto c = Load(dir);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_TRUE(c->present);
  EXPECT_EQ(c->num_c8_layers(), cfg_.num_layers);
  auto ref = MakeScales();
  EXPECT_EQ(c->layers[1]->k_scale, ref[1].k_scale);
  EXPECT_EQ(c->layers[2]->v_offset, ref[2].v_offset);
  nlohmann::json d =
      nlohmann::json::parse(std::ifstream(fs::path(dir) / "quant_model_description.json"));
  EXPECT_EQ(d["kv_cache_type"], "C8");
  EXPECT_EQ(d["model.layers.0.self_attn.k_proj.kv_cache_scale"], "C8");
  EXPECT_EQ(d["model.norm.weight"], "FLOAT");
  // The model weights still load through the new index.
  auto ws = WeightStore::Open(dir);
  ASSERT_TRUE(ws.ok());
  EXPECT_TRUE(ws->Has("model.embed_tokens.weight"));
}

TEST_F(C8CheckpointTest, PerLayerEntriesSelectOnlyThoseLayers) {
  WriteDir();
  EditDescription([](nlohmann::json& j) {
    j.erase("kv_cache_type");  // only the per-layer entries decide
    j.erase("model.layers.1.self_attn.k_proj.kv_cache_scale");
  });
  auto c = Load(tmp_.string());
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_TRUE(c->layers[0].has_value());
  EXPECT_FALSE(c->layers[1].has_value());
  EXPECT_TRUE(c->layers[2].has_value());
}

TEST_F(C8CheckpointTest, OlderKvQuantTypeKeyAndPerTensorScale) {
  WriteDir();
  EditDescription([](nlohmann::json& j) {
    for (auto it = j.begin(); it != j.end();) {
      it = it.value() == "C8" ? j.erase(it) : std::next(it);
    }
    j.erase("kv_cache_type");
    j["kv_quant_type"] = "C8";
  });
  WriteScalesWith(C8TensorName(1, 'v', "scale"), {0.25f});
  auto c = Load(tmp_.string());
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->num_c8_layers(), cfg_.num_layers);
  EXPECT_EQ(c->layers[1]->v_scale, std::vector<float>(channels_, 0.25f));
}

TEST_F(C8CheckpointTest, BadTensorsAreErrorsNamingThem) {
  WriteDir();
  const std::string name = C8TensorName(2, 'k', "scale");
  WriteScalesWith(name, std::vector<float>(channels_, -1.0f));
  auto c = Load(tmp_.string());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.message().find(name), std::string::npos) << c.message();
  EXPECT_NE(c.message().find("must be > 0"), std::string::npos) << c.message();

  WriteScalesWith(name, std::vector<float>(channels_ + 1, 1.0f));
  c = Load(tmp_.string());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.message().find("num_key_value_heads * head_dim"), std::string::npos) << c.message();

  std::vector<float> nan(channels_, 1.0f);
  nan[3] = NAN;
  WriteScalesWith(C8TensorName(0, 'v', "offset"), nan);
  c = Load(tmp_.string());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.message().find("not finite"), std::string::npos) << c.message();
}

TEST_F(C8CheckpointTest, MissingTensorIsAnErrorNamingIt) {
  WriteDir();
  const std::string name = C8TensorName(1, 'v', "offset");
  WriteScalesWith(name, {});
  auto c = Load(tmp_.string());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.message().find("missing tensor '" + name + "'"), std::string::npos) << c.message();
}

TEST_F(C8CheckpointTest, DescriptionNamingALayerBeyondTheModelIsAnError) {
  WriteDir();
  EditDescription(
      [](nlohmann::json& d) { d["model.layers.99.self_attn.k_proj.kv_cache_scale"] = "C8"; });
  auto c = Load(tmp_.string());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.message().find("layer 99"), std::string::npos) << c.message();
}

}  // namespace
}  // namespace c8
