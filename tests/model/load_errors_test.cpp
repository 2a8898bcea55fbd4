// Bad checkpoints give one clear error naming the file and the key or tensor, never a crash;
// the CLI turns them into a message and a non-zero exit.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "c8/backend/cpu/cpu_backend.h"
#include "c8/model/decoder_model.h"

namespace c8 {
namespace {
namespace fs = std::filesystem;

const fs::path kTiny = fs::path(C8_SOURCE_DIR) / "tests/data/models/qwen3-tiny";

class LoadErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("c8_bad_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (auto& e : fs::directory_iterator(kTiny))
      fs::copy_file(e.path(), dir_ / e.path().filename());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string LoadError() {
    CpuBackend backend(1);
    auto m = DecoderModel::Load(dir_.string(), backend, {});
    EXPECT_FALSE(m.ok());
    return m.ok() ? "" : m.message();
  }
  void EditConfig(const std::function<void(nlohmann::json&)>& f) {
    nlohmann::json j = nlohmann::json::parse(std::ifstream(dir_ / "config.json"));
    f(j);
    std::ofstream(dir_ / "config.json") << j.dump();
  }
  void WriteRaw(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }
  fs::path dir_;
};

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

TEST_F(LoadErrors, MissingConfig) {
  fs::remove(dir_ / "config.json");
  std::string m = LoadError();
  EXPECT_HAS(m, "config.json");
  EXPECT_HAS(m, "cannot open");
}

TEST_F(LoadErrors, MalformedConfig) {
  WriteRaw(dir_ / "config.json", "{\"architectures\": [\"Qwen3ForCausalLM\"], ");
  std::string m = LoadError();
  EXPECT_HAS(m, "config.json");
  EXPECT_HAS(m, "malformed JSON");
}

TEST_F(LoadErrors, MissingAndWrongTypedKeys) {
  EditConfig([](nlohmann::json& j) { j.erase("hidden_size"); });
  EXPECT_HAS(LoadError(), "missing key 'hidden_size'");
  EditConfig([](nlohmann::json& j) {
    j["hidden_size"] = 64;
    j["num_attention_heads"] = "four";
  });
  EXPECT_HAS(LoadError(), "'num_attention_heads' must be an integer");
  EditConfig([](nlohmann::json& j) {
    j["num_attention_heads"] = 4;
    j["num_key_value_heads"] = 3;
  });
  EXPECT_HAS(LoadError(), "must be a multiple of 'num_key_value_heads'");
}

TEST_F(LoadErrors, UnsupportedArchitectureAndRopeScaling) {
  EditConfig([](nlohmann::json& j) { j["architectures"] = {"GPT2LMHeadModel"}; });
  std::string m = LoadError();
  EXPECT_HAS(m, "config.json");
  EXPECT_HAS(m, "architecture 'GPT2LMHeadModel' is not supported");
  EditConfig([](nlohmann::json& j) {
    j["architectures"] = {"Qwen3ForCausalLM"};
    j.erase("rope_parameters");
    j["rope_scaling"] = {{"rope_type", "longrope"}, {"factor", 2.0}};
  });
  EXPECT_HAS(LoadError(), "rope_scaling type 'longrope' is not supported");
}

TEST_F(LoadErrors, TensorShapeMismatchNamesTensorAndShapes) {
  EditConfig([](nlohmann::json& j) { j["intermediate_size"] = 100; });
  std::string m = LoadError();
  EXPECT_HAS(m, "model.safetensors");
  EXPECT_HAS(
      m, "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [128, 64], expected [100, 64]");
}

TEST_F(LoadErrors, MissingTensorNamesIt) {
  EditConfig([](nlohmann::json& j) { j["num_hidden_layers"] = 4; });
  EXPECT_HAS(LoadError(), "missing tensor 'model.layers.3.input_layernorm.weight'");
}

TEST_F(LoadErrors, TruncatedSafetensors) {
  const auto p = dir_ / "model.safetensors";
  fs::resize_file(p, fs::file_size(p) - 100);
  std::string m = LoadError();
  EXPECT_HAS(m, "model.safetensors");
  EXPECT_HAS(m, "outside the data section");
}

TEST_F(LoadErrors, LyingSafetensorsHeaders) {
  const auto p = dir_ / "model.safetensors";
  auto write_with_header = [&](const std::string& header, size_t data_bytes, uint64_t claimed) {
    std::string bytes(8, '\0');
    std::memcpy(bytes.data(), &claimed, 8);
    bytes += header;
    bytes += std::string(data_bytes, '\x01');
    WriteRaw(p, bytes);
  };
  const std::string h = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  write_with_header(h, 16, 1ull << 40);  // header length beyond the file
  EXPECT_HAS(LoadError(), "header length");
  write_with_header(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 16, 57);
  EXPECT_HAS(LoadError(),
             "tensor 'a': data_offsets span 12 bytes but shape [2, 2] of F32 needs 16");
  write_with_header(R"({"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8, 53);
  EXPECT_HAS(LoadError(), "unsupported dtype 'Q9'");
  write_with_header("not json at all!", 8, 16);
  EXPECT_HAS(LoadError(), "header is not a JSON object");
  WriteRaw(p, "abc");
  EXPECT_HAS(LoadError(), "too small for a safetensors file");
}

TEST_F(LoadErrors, CliReportsErrorAndExitsNonZero) {
  const fs::path bin = fs::path(C8_BINARY_DIR) / "c8";
  if (!fs::exists(bin)) GTEST_SKIP() << "c8 binary not built";
  EditConfig([](nlohmann::json& j) { j["architectures"] = {"FalconForCausalLM"}; });
  std::string cmd =
      bin.string() + " generate -q --device cpu --model " + dir_.string() + " --prompt hi 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  int rc = pclose(f);
  EXPECT_NE(rc, 0);
  EXPECT_HAS(out, "c8 generate: error:");
  EXPECT_HAS(out, "architecture 'FalconForCausalLM' is not supported");
  // A GGUF that is not a GGUF.
  WriteRaw(dir_ / "bad.gguf", "GGUX0000000000000000000000000000");
  cmd = bin.string() + " convert --gguf " + (dir_ / "bad.gguf").string() + " --out " +
        (dir_ / "out").string() + " 2>&1";
  f = popen(cmd.c_str(), "r");
  out.clear();
  while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  rc = pclose(f);
  EXPECT_NE(rc, 0);
  EXPECT_HAS(out, "bad.gguf");
}

}  // namespace
}  // namespace c8
