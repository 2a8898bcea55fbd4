// Bad ModelSlim W8A8 / W8A8_DYNAMIC checkpoints: each case is one clear error naming the file
// and the tensor (missing companion, wrong dtype or shape, non-finite or zero scale, unknown
// quant type, a fused layer of mixed types, non-zero dynamic weight_offset), never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "c8/backend/cpu/cpu_backend.h"
#include "c8/formats/safetensors.h"
#include "c8/model/decoder_model.h"

namespace c8 {
namespace {
namespace fs = std::filesystem;

struct RawTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// Every tensor of a checkpoint directory, as raw bytes (editable), and a writer for them.
std::map<std::string, RawTensor> ReadAll(const fs::path& dir) {
  auto ws = WeightStore::Open(dir.string());
  EXPECT_TRUE(ws.ok()) << ws.message();
  std::map<std::string, RawTensor> out;
  for (const auto& [name, t] : ws->tensors()) {
    out[name] = {std::string(DTypeName(t.dtype)), t.shape,
                 std::string(reinterpret_cast<const char*>(t.data), t.nbytes)};
  }
  return out;
}

void WriteAll(const fs::path& file, const std::map<std::string, RawTensor>& tensors) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  size_t off = 0;
  for (const auto& [name, t] : tensors) {
    h[name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string header = h.dump();
  while (header.size() % 8) header += ' ';
  std::ofstream o(file, std::ios::binary);
  const uint64_t n = header.size();
  o.write(reinterpret_cast<const char*>(&n), 8);
  o << header;
  for (const auto& [name, t] : tensors) o << t.bytes;
}

class W8A8LoadErrors : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    src_ = fs::path(C8_SOURCE_DIR) / "tests/data/models" / GetParam();
    dir_ = fs::temp_directory_path() /
           ("c8_w8a8_bad_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (auto& e : fs::directory_iterator(src_))
      fs::copy_file(e.path(), dir_ / e.path().filename());
  }
  void TearDown() override { fs::remove_all(dir_); }
  bool dynamic() const { return std::string(GetParam()).find("dynamic") != std::string::npos; }
  // Applies `edit` to the tensors and rewrites the weights file.
  void Edit(const std::function<void(std::map<std::string, RawTensor>&)>& edit) {
    auto t = ReadAll(dir_);
    edit(t);
    WriteAll(dir_ / "quant_model_weights.safetensors", t);
  }
  void EditDesc(const std::function<void(nlohmann::json&)>& f) {
    nlohmann::json j = nlohmann::json::parse(std::ifstream(dir_ / "quant_model_description.json"));
    f(j);
    std::ofstream(dir_ / "quant_model_description.json") << j.dump();
  }
  std::string LoadError() {
    CpuBackend backend(1);
    auto m = DecoderModel::Load(dir_.string(), backend, {});
    EXPECT_FALSE(m.ok());
    return m.ok() ? "" : m.message();
  }
  fs::path src_, dir_;
};

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

const std::string kQ = "model.layers.1.self_attn.q_proj";

TEST_P(W8A8LoadErrors, TheUneditedCheckpointLoads) {
  CpuBackend backend(1);
  auto m = DecoderModel::Load(dir_.string(), backend, {});
  ASSERT_TRUE(m.ok()) << m.message();
}

TEST_P(W8A8LoadErrors, MissingCompanionTensor) {
  const std::string companion = kQ + (dynamic() ? ".weight_scale" : ".deq_scale");
  Edit([&](auto& t) { t.erase(companion); });
  const std::string e = LoadError();
  EXPECT_HAS(e, companion);
}

TEST_P(W8A8LoadErrors, FloatWeightWhereInt8IsDeclared) {
  Edit([&](auto& t) {
    RawTensor& w = t[kQ + ".weight"];
    w.dtype = "F32";
    w.bytes = std::string(w.bytes.size() * 4, '\0');
  });
  const std::string e = LoadError();
  EXPECT_HAS(e, kQ + ".weight");
  EXPECT_HAS(e, "I8");
  EXPECT_HAS(e, "quant_model_weights.safetensors");
}

TEST_P(W8A8LoadErrors, WrongScaleShape) {
  const std::string name = kQ + (dynamic() ? ".weight_scale" : ".deq_scale");
  Edit([&](auto& t) {
    RawTensor& s = t[name];
    s.shape = {3};
    s.bytes.resize(3 * (s.dtype == "I64" ? 8 : 4));
  });
  EXPECT_HAS(LoadError(), name);
}

TEST_P(W8A8LoadErrors, NonFiniteAndZeroScales) {
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), 0.0f, std::numeric_limits<float>::infinity()}) {
    const std::string name = kQ + (dynamic() ? ".weight_scale" : ".input_scale");
    Edit([&](auto& t) {
      RawTensor& s = t[name];
      std::memcpy(s.bytes.data(), &bad, 4);
    });
    const std::string e = LoadError();
    EXPECT_HAS(e, name);
    EXPECT_HAS(e, "finite and non-zero");
  }
}

TEST_P(W8A8LoadErrors, UnknownQuantTypeAndMixedFusedLayer) {
  EditDesc([&](nlohmann::json& j) { j[kQ + ".weight"] = "W4A16"; });
  std::string e = LoadError();
  EXPECT_HAS(e, kQ + ".weight");
  EXPECT_HAS(e, "W4A16");
  EXPECT_HAS(e, "quant_model_description.json");
  EditDesc([&](nlohmann::json& j) {
    j[kQ + ".weight"] = dynamic() ? "W8A8" : "W8A8_DYNAMIC";  // q differs from k and v
  });
  e = LoadError();
  EXPECT_HAS(e, "fused layer");
  EditDesc([&](nlohmann::json& j) { j["model_quant_type"] = "W4A8_DYNAMIC"; });
  EXPECT_HAS(LoadError(), "model_quant_type");
}

TEST_P(W8A8LoadErrors, SchemeSpecificCompanions) {
  if (dynamic()) {
    const std::string name = kQ + ".weight_offset";
    Edit([&](auto& t) {
      const float one = 1.0f;
      std::memcpy(t[name].bytes.data(), &one, 4);
    });
    const std::string e = LoadError();
    EXPECT_HAS(e, name);
    EXPECT_HAS(e, "non-zero");
  } else {
    const std::string name = kQ + ".quant_bias";
    Edit([&](auto& t) { t[name].dtype = "F32"; });
    const std::string e = LoadError();
    EXPECT_HAS(e, name);
    EXPECT_HAS(e, "I32");
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, W8A8LoadErrors,
                         ::testing::Values("qwen3-tiny-w8a8", "qwen3-tiny-w8a8-dynamic"),
                         [](const auto& i) {
                           return std::string(i.param).find("dynamic") != std::string::npos
                                      ? std::string("dynamic")
                                      : std::string("static");
                         });

}  // namespace
}  // namespace c8
