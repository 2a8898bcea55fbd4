// GGUF reader, dequantizer, safetensors writer and GGUF -> HF conversion.
// Fixtures: tests/data/gguf/ (regenerate with tools/make_gguf_fixtures.py).
#include "c8/formats/gguf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "c8/formats/gguf_convert.h"
#include "c8/formats/gguf_dequant.h"
#include "c8/formats/safetensors_writer.h"
#include "c8/util/bf16.h"

namespace c8 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kDataDir = std::string(C8_SOURCE_DIR) + "/tests/data/gguf";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A fresh scratch directory per test (named after it) under the build tree.
std::string ScratchDir(const std::string& name) {
  fs::path p = fs::path(C8_BINARY_DIR) / "test_tmp" / "gguf" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

#define EXPECT_ERROR_HAS(status_or_result, ...)                           \
  do {                                                                    \
    const auto& _r = (status_or_result);                                  \
    ASSERT_FALSE(_r.ok()) << "expected an error";                         \
    for (const std::string& _n : std::vector<std::string>{__VA_ARGS__}) { \
      EXPECT_TRUE(Contains(_r.message(), _n))                             \
          << "message '" << _r.message() << "' lacks '" << _n << "'";     \
    }                                                                     \
  } while (0)

// ---------------------------------------------------------------------------------------------
// Minimal GGUF writer for crafted (including broken) files.
class GgufBuilder {
 public:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    std::string data;
    std::optional<uint64_t> offset;  // override the computed relative offset
  };

  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  uint64_t alignment = 32;

  void U32(const std::string& key, uint32_t v) { Kv(key, 4, Raw(v)); }
  void I32(const std::string& key, int32_t v) { Kv(key, 5, Raw(v)); }
  void F32(const std::string& key, float v) { Kv(key, 6, Raw(v)); }
  void Bool(const std::string& key, bool v) { Kv(key, 7, std::string(1, v ? 1 : 0)); }
  void Str(const std::string& key, const std::string& v) { Kv(key, 8, S(v)); }
  void StrArr(const std::string& key, const std::vector<std::string>& v) {
    std::string b = Raw(uint32_t{8}) + Raw(uint64_t{v.size()});
    for (const auto& s : v) b += S(s);
    Kv(key, 9, b);
  }
  void I32Arr(const std::string& key, const std::vector<int32_t>& v) {
    std::string b = Raw(uint32_t{5}) + Raw(uint64_t{v.size()});
    for (int32_t x : v) b += Raw(x);
    Kv(key, 9, b);
  }
  // A string whose declared length differs from its bytes.
  void StrWithLength(const std::string& key, const std::string& v, uint64_t declared) {
    Kv(key, 8, Raw(declared) + v);
  }
  void AddTensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, std::string data,
                 std::optional<uint64_t> offset = std::nullopt) {
    tensors_.push_back({name, std::move(ne), type, std::move(data), offset});
  }
  void AddF32(const std::string& name, std::vector<uint64_t> ne, const std::vector<float>& v) {
    std::string d(v.size() * 4, '\0');
    std::memcpy(d.data(), v.data(), d.size());
    AddTensor(name, std::move(ne), 0, std::move(d));
  }

  std::string Build() const {
    std::string out =
        Raw(magic) + Raw(version) + Raw(uint64_t{tensors_.size()}) + Raw(kv_count_) + kv_;
    uint64_t off = 0;
    std::vector<uint64_t> offs;
    for (const Tensor& t : tensors_) {
      out += S(t.name) + Raw(uint32_t(t.ne.size()));
      for (uint64_t d : t.ne) out += Raw(d);
      out += Raw(t.type) + Raw(t.offset.value_or(off));
      offs.push_back(off);
      off = (off + t.data.size() + alignment - 1) / alignment * alignment;
    }
    while (out.size() % alignment) out.push_back('\0');
    const size_t base = out.size();
    for (size_t k = 0; k < tensors_.size(); ++k) {
      out.resize(base + offs[k], '\0');
      out += tensors_[k].data;
    }
    while (out.size() % alignment) out.push_back('\0');
    return out;
  }

  template <class T>
  static std::string Raw(T v) {
    std::string s(sizeof(T), '\0');
    std::memcpy(s.data(), &v, sizeof(T));
    return s;
  }
  static std::string S(const std::string& v) { return Raw(uint64_t{v.size()}) + v; }

 private:
  void Kv(const std::string& key, uint32_t type, const std::string& value) {
    kv_ += S(key) + Raw(type) + value;
    ++kv_count_;
  }
  std::string kv_;
  uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
};

std::string WriteGguf(const std::string& dir, const std::string& name, const GgufBuilder& b) {
  const std::string path = dir + "/" + name;
  WriteAll(path, b.Build());
  return path;
}

// ---------------------------------------------------------------------------------------------
// Reader on the python-written fixture.

TEST(GgufReader, ReadsEveryMetadataType) {
  auto f = GgufFile::Open(kDataDir + "/types.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->GetString("general.architecture").value(), "test");
  EXPECT_EQ(f->GetUint("test.u8").value(), 200u);
  EXPECT_EQ(f->GetInt("test.i8").value(), -100);
  EXPECT_EQ(f->GetUint("test.u16").value(), 60000u);
  EXPECT_EQ(f->GetInt("test.i16").value(), -30000);
  EXPECT_EQ(f->GetUint("test.u32").value(), 4000000000u);
  EXPECT_EQ(f->GetInt("test.i32").value(), -2000000000);
  EXPECT_EQ(f->GetFloat("test.f32").value(), 0.15625);
  EXPECT_EQ(f->GetUint("test.u64").value(), (uint64_t{1} << 63) + 5);
  EXPECT_EQ(f->GetInt("test.i64").value(), -(int64_t{1} << 62));
  EXPECT_EQ(f->GetFloat("test.f64").value(), 3.141592653589793);
  EXPECT_TRUE(f->GetBool("test.bool").value());
  EXPECT_EQ(f->GetString("test.string").value(), "h\xc3\xa9llo w\xc3\xb6rld");
  EXPECT_EQ(f->GetStringArray("test.arr_str").value(),
            (std::vector<std::string>{"a", "bc", "", "\xc4\xa0Hello"}));
  EXPECT_EQ(f->GetIntArray("test.arr_i32").value(), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f->GetFloatArray("test.arr_f32").value(), (std::vector<double>{0.5, -1.25}));
  EXPECT_EQ(f->GetIntArray("test.arr_bool").value(), (std::vector<int64_t>{1, 0, 1}));
  const GgufValue* nested = f->Find("test.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->elem_type, GgufValueType::kArray);
  ASSERT_EQ(nested->items.size(), 2u);
  EXPECT_EQ(nested->items[0].ints, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(nested->items[1].ints, (std::vector<int64_t>{3}));
  EXPECT_EQ(f->keys().front(), "general.architecture");

  // Typed getters name the file and key on mismatch / absence.
  EXPECT_ERROR_HAS(f->GetString("test.u8"), "types.gguf", "test.u8", "uint8", "string");
  EXPECT_ERROR_HAS(f->GetUint("test.i8"), "test.i8", "negative");
  EXPECT_ERROR_HAS(f->GetInt("test.u64"), "test.u64", "out of range");
  EXPECT_ERROR_HAS(f->GetUint("no.such.key"), "types.gguf", "missing", "no.such.key");
  EXPECT_ERROR_HAS(f->GetStringArray("test.arr_i32"), "test.arr_i32", "array of int32");
}

TEST(GgufReader, TensorDirectory) {
  auto f = GgufFile::Open(kDataDir + "/types.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  ASSERT_EQ(f->tensors().size(), 13u);
  const GgufTensorInfo* q4k = f->FindTensor("t.Q4_K");
  ASSERT_NE(q4k, nullptr);
  EXPECT_EQ(q4k->ggml_type(), GgmlType::kQ4_K);
  EXPECT_EQ(q4k->ne, (std::vector<int64_t>{256, 2}));
  EXPECT_EQ(q4k->TorchShape(), (std::vector<int64_t>{2, 256}));
  EXPECT_EQ(q4k->nbytes, 2u * 144u);
  EXPECT_EQ(q4k->offset % 64, 0u);
  EXPECT_NE(q4k->data, nullptr);
  const GgufTensorInfo* f32 = f->FindTensor("t.F32");
  ASSERT_NE(f32, nullptr);
  EXPECT_EQ(f32->nbytes, 2u * 32u * 4u);
  EXPECT_EQ(f->FindTensor("nope"), nullptr);
  EXPECT_STREQ(GetGgmlTypeInfo(14)->name, "Q6_K");
  EXPECT_EQ(GetGgmlTypeInfo(99), nullptr);
  EXPECT_EQ(GgmlTypeName(99), "type 99");
}

// ---------------------------------------------------------------------------------------------
// Dequantization against gguf.quants.dequantize reference values.

TEST(GgufDequant, MatchesPythonReferenceForEveryType) {
  auto f = GgufFile::Open(kDataDir + "/types.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  const json expected = json::parse(ReadAll(kDataDir + "/types_expected.json"));
  ASSERT_EQ(expected.size(), 13u);
  for (const auto& [name, e] : expected.items()) {
    SCOPED_TRACE(name);
    const GgufTensorInfo* t = f->FindTensor(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->type, e["type"].get<uint32_t>());
    EXPECT_EQ(t->ne, e["ne"].get<std::vector<int64_t>>());
    auto values = DequantizeTensor(*f, *t);
    ASSERT_TRUE(values.ok()) << values.message();
    const auto want = e["values"].get<std::vector<double>>();
    ASSERT_EQ(values->size(), want.size());
    int bad = 0;
    for (size_t k = 0; k < want.size(); ++k) {
      const float w = static_cast<float>(want[k]);
      const float got = (*values)[k];
      // Same float32 operations as numpy; allow one rounding step of slack for FMA contraction.
      if (std::fabs(got - w) > 1e-6f * std::fabs(w) + 1e-7f && bad++ < 5) {
        ADD_FAILURE() << name << "[" << k << "] = " << got << ", python: " << w;
      }
    }
    EXPECT_EQ(bad, 0);
  }
}

TEST(GgufDequant, SpotValues) {
  // Q8_0 block by hand: d = 0.5 (f16 0x3800), q = -3, 0, 7, ...
  std::string block = GgufBuilder::Raw(uint16_t{0x3800});
  for (int j = 0; j < 32; ++j) block.push_back(static_cast<char>(j == 0 ? -3 : (j == 2 ? 7 : 0)));
  float y[32];
  ASSERT_TRUE(DequantizeRow(8, block.data(), 32, y).ok());
  EXPECT_EQ(y[0], -1.5f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 3.5f);
  // Q4_1 block: d = 0.5, m = -1 (0xBC00), qs[0] = 0x3A -> x[0] = 10*0.5-1 = 4, x[16] = 3*0.5-1.
  std::string q41 = GgufBuilder::Raw(uint16_t{0x3800}) + GgufBuilder::Raw(uint16_t{0xBC00});
  q41 += std::string(1, '\x3A') + std::string(15, '\0');
  ASSERT_TRUE(DequantizeRow(3, q41.data(), 32, y).ok());
  EXPECT_EQ(y[0], 4.0f);
  EXPECT_EQ(y[16], 0.5f);
  EXPECT_EQ(y[1], -1.0f);
}

TEST(GgufDequant, UnsupportedTypesAreErrors) {
  float y[256];
  char buf[512] = {};
  EXPECT_ERROR_HAS(DequantizeRow(99, buf, 32, y), "unknown GGML type 99");
  EXPECT_ERROR_HAS(DequantizeRow(static_cast<uint32_t>(GgmlType::kIQ4_NL), buf, 32, y), "IQ4_NL",
                   "not supported");
  EXPECT_ERROR_HAS(DequantizeRow(2, buf, 33, y), "33", "block size 32");
  EXPECT_FALSE(CanDequantize(static_cast<uint32_t>(GgmlType::kIQ2_XXS)));
  EXPECT_TRUE(CanDequantize(static_cast<uint32_t>(GgmlType::kQ5_K)));
}

// ---------------------------------------------------------------------------------------------
// Bad inputs: each error names the file and the field/tensor at fault.

class GgufBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ScratchDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  std::string dir_;
};

TEST_F(GgufBadInput, BadMagic) {
  GgufBuilder b;
  b.magic = 0x4C4C4747;  // "GGLL"
  const std::string p = WriteGguf(dir_, "badmagic.gguf", b);
  EXPECT_ERROR_HAS(GgufFile::Open(p), "badmagic.gguf", "not a GGUF file", "bad magic 'GGLL'");
  WriteAll(dir_ + "/tiny.gguf", "GG");
  EXPECT_ERROR_HAS(GgufFile::Open(dir_ + "/tiny.gguf"), "tiny.gguf", "not a GGUF file");
  WriteAll(dir_ + "/empty.gguf", "");
  EXPECT_ERROR_HAS(GgufFile::Open(dir_ + "/empty.gguf"), "empty.gguf", "not a GGUF file");
  EXPECT_ERROR_HAS(GgufFile::Open(dir_ + "/missing.gguf"), "missing.gguf", "cannot open");
}

TEST_F(GgufBadInput, UnsupportedVersion) {
  GgufBuilder b;
  b.version = 1;
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "v1.gguf", b)), "v1.gguf", "version 1");
  b.version = 7;
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "v7.gguf", b)), "v7.gguf", "version 7");
  b.version = 3;
  EXPECT_TRUE(GgufFile::Open(WriteGguf(dir_, "v3.gguf", b)).ok());
  b.version = 2;
  EXPECT_TRUE(GgufFile::Open(WriteGguf(dir_, "v2.gguf", b)).ok());
}

TEST_F(GgufBadInput, TruncatedFile) {
  const std::string full = ReadAll(kDataDir + "/types.gguf");
  auto ok = GgufFile::Open(kDataDir + "/types.gguf");
  ASSERT_TRUE(ok.ok());
  uint64_t data_end = 0;
  for (const GgufTensorInfo& t : ok->tensors()) data_end = std::max(data_end, t.offset + t.nbytes);
  // Cut inside the header, inside the metadata, inside the tensor infos and inside the data.
  const uint64_t cuts[] = {10, 100, ok->data_offset() - 40, ok->data_offset() + 100, data_end - 1};
  for (uint64_t cut : cuts) {
    SCOPED_TRACE(cut);
    const std::string p = dir_ + "/cut" + std::to_string(cut) + ".gguf";
    WriteAll(p, full.substr(0, cut));
    auto f = GgufFile::Open(p);
    ASSERT_FALSE(f.ok());
    EXPECT_TRUE(Contains(f.message(), p)) << f.message();
    EXPECT_TRUE(Contains(f.message(), "truncated") || Contains(f.message(), "beyond the end") ||
                Contains(f.message(), "impossible") || Contains(f.message(), "cannot fit"))
        << f.message();
  }
  // The cut inside the tensor data names the tensor whose bytes are missing.
  WriteAll(dir_ + "/data.gguf", full.substr(0, data_end - 1));
  EXPECT_ERROR_HAS(GgufFile::Open(dir_ + "/data.gguf"), "data.gguf", "tensor 't.Q6_K'",
                   "outside the file");
}

TEST_F(GgufBadInput, LyingTensorOffset) {
  GgufBuilder b;
  b.AddF32("good", {4}, {1, 2, 3, 4});
  b.AddTensor("liar", {8}, 0, std::string(32, '\0'), uint64_t{1} << 20);
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "offset.gguf", b)), "offset.gguf",
                   "tensor 'liar'", "outside the file");
  GgufBuilder c;
  c.AddTensor("unaligned", {4}, 0, std::string(16, '\0'), uint64_t{4});
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "unaligned.gguf", c)), "unaligned.gguf",
                   "tensor 'unaligned'", "alignment");
  GgufBuilder d;  // offset near 2^64: must not wrap around
  d.AddTensor("wrap", {4}, 0, std::string(16, '\0'), ~uint64_t{0} - 31);
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "wrap.gguf", d)), "tensor 'wrap'",
                   "outside the file");
}

TEST_F(GgufBadInput, StringLengthBeyondFile) {
  GgufBuilder b;
  b.StrWithLength("general.name", "abc", 1000000);
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "strlen.gguf", b)), "strlen.gguf", "general.name",
                   "string length 1000000");
  GgufBuilder c;
  c.AddTensor("x", {4}, 0, std::string(16, '\0'));
  std::string bytes = c.Build();
  // Corrupt the tensor name length (right after the 24-byte header).
  const uint64_t huge = uint64_t{1} << 40;
  std::memcpy(bytes.data() + 24, &huge, 8);
  WriteAll(dir_ + "/namelen.gguf", bytes);
  EXPECT_ERROR_HAS(GgufFile::Open(dir_ + "/namelen.gguf"), "namelen.gguf", "tensor #0 name",
                   "string length");
}

TEST_F(GgufBadInput, UnknownTensorType) {
  GgufBuilder b;
  b.AddTensor("blk.0.attn_q.weight", {32}, 99, std::string(64, '\0'));
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "type.gguf", b)), "type.gguf",
                   "tensor 'blk.0.attn_q.weight'", "unknown GGML type 99");
}

TEST_F(GgufBadInput, LyingCountsAndOtherFields) {
  GgufBuilder b;
  std::string bytes = b.Build();
  const uint64_t many = uint64_t{1} << 50;
  std::memcpy(bytes.data() + 16, &many, 8);  // kv_count
  WriteAll(dir_ + "/kvcount.gguf", bytes);
  EXPECT_ERROR_HAS(GgufFile::Open(dir_ + "/kvcount.gguf"), "kvcount.gguf", "kv_count");
  bytes = b.Build();
  std::memcpy(bytes.data() + 8, &many, 8);  // tensor_count
  WriteAll(dir_ + "/tcount.gguf", bytes);
  EXPECT_ERROR_HAS(GgufFile::Open(dir_ + "/tcount.gguf"), "tcount.gguf", "tensor_count");

  GgufBuilder arr;  // array count lies
  arr.I32Arr("tokenizer.ggml.token_type", {1, 2, 3});
  bytes = arr.Build();
  const size_t pos = bytes.find("token_type") + 10 + 4 + 4;  // key, value type, element type
  std::memcpy(bytes.data() + pos, &many, 8);
  WriteAll(dir_ + "/arr.gguf", bytes);
  EXPECT_ERROR_HAS(GgufFile::Open(dir_ + "/arr.gguf"), "arr.gguf", "tokenizer.ggml.token_type",
                   "cannot fit");

  GgufBuilder dup;
  dup.U32("a.b", 1);
  dup.U32("a.b", 2);
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "dup.gguf", dup)), "dup.gguf", "'a.b'",
                   "duplicate");

  GgufBuilder al;
  al.U32("general.alignment", 48);
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "align.gguf", al)), "align.gguf",
                   "general.alignment", "power of two");

  GgufBuilder vt;
  vt.U32("x", 0);
  bytes = vt.Build();
  const uint32_t bad_type = 77;
  std::memcpy(bytes.data() + 24 + 8 + 1, &bad_type, 4);
  WriteAll(dir_ + "/vtype.gguf", bytes);
  EXPECT_ERROR_HAS(GgufFile::Open(dir_ + "/vtype.gguf"), "vtype.gguf", "'x'",
                   "unknown value type 77");

  GgufBuilder blk;
  blk.AddTensor("w", {33}, 2, std::string(64, '\0'));
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "blk.gguf", blk)), "tensor 'w'",
                   "not a multiple of the Q4_0 block size 32");

  GgufBuilder dims;
  dims.AddTensor("w", {1, 1, 1, 1, 1}, 0, std::string(4, '\0'));
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "dims.gguf", dims)), "tensor 'w'",
                   "dimensions 5");

  GgufBuilder dupt;
  dupt.AddF32("w", {1}, {1});
  dupt.AddF32("w", {1}, {2});
  EXPECT_ERROR_HAS(GgufFile::Open(WriteGguf(dir_, "dupt.gguf", dupt)), "tensor 'w'", "duplicate");
}

// ---------------------------------------------------------------------------------------------
// Safetensors writer.

struct StTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;
  size_t nbytes;
};

// Parses a .safetensors file (test-local reader; checks the framing rules on the way).
struct StFile {
  std::string bytes;
  json header;
  std::map<std::string, StTensor> tensors;
};

StFile ParseSafetensors(const std::string& path) {
  StFile st;
  st.bytes = ReadAll(path);
  EXPECT_GE(st.bytes.size(), 8u);
  uint64_t n = 0;
  std::memcpy(&n, st.bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "header not padded to 8 bytes";
  st.header = json::parse(st.bytes.substr(8, n));
  const auto* base = reinterpret_cast<const uint8_t*>(st.bytes.data()) + 8 + n;
  uint64_t expect_begin = 0;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, t] : st.header.items()) {
    if (name == "__metadata__") continue;
    const auto off = t["data_offsets"].get<std::vector<uint64_t>>();
    ranges.push_back({off[0], off[1]});
    st.tensors[name] = {t["dtype"].get<std::string>(), t["shape"].get<std::vector<int64_t>>(),
                        base + off[0], off[1] - off[0]};
  }
  std::sort(ranges.begin(), ranges.end());
  for (auto [b, e] : ranges) {
    EXPECT_EQ(b, expect_begin) << "hole or overlap in data";
    expect_begin = e;
  }
  EXPECT_EQ(8 + n + expect_begin, st.bytes.size());
  return st;
}

TEST(SafetensorsWriter, WritesHeaderAndStreamsData) {
  const std::string dir = ScratchDir("st_write");
  const std::string path = dir + "/x.safetensors";
  std::vector<SafetensorsTensorSpec> specs = {
      {"a.weight", SafetensorsDtype::kBF16, {2, 3}},
      {"b", SafetensorsDtype::kF32, {3}},
      {"empty", SafetensorsDtype::kF32, {0, 4}},
  };
  auto w = SafetensorsWriter::Create(path, specs, {{"source", "test"}});
  ASSERT_TRUE(w.ok()) << w.message();
  EXPECT_EQ(w->data_start() % 8, 0u);
  EXPECT_EQ(w->current_tensor(), "a.weight");
  const uint16_t a[6] = {F32ToBf16(1), F32ToBf16(-2), F32ToBf16(0.5f), 0, 0, F32ToBf16(3)};
  ASSERT_TRUE(w->Append(a, 4).ok());  // in pieces
  EXPECT_ERROR_HAS(w->Append(a, 10), "a.weight", "only 8 remain");
  ASSERT_TRUE(w->Append(reinterpret_cast<const uint8_t*>(a) + 4, 8).ok());
  EXPECT_EQ(w->current_tensor(), "b");
  EXPECT_ERROR_HAS(w->WriteTensor("a.weight", a, 12), "out of order");
  EXPECT_ERROR_HAS(w->Finish(), "tensor 'b' is incomplete");
  // Finish failed: not renamed.
  EXPECT_FALSE(fs::exists(path));
}

TEST(SafetensorsWriter, RoundTrip) {
  const std::string dir = ScratchDir("st_roundtrip");
  const std::string path = dir + "/x.safetensors";
  std::vector<SafetensorsTensorSpec> specs = {
      {"a.weight", SafetensorsDtype::kBF16, {2, 3}},
      {"b", SafetensorsDtype::kF32, {3}},
      {"empty", SafetensorsDtype::kF32, {0, 4}},
  };
  {
    auto w = SafetensorsWriter::Create(path, specs);
    ASSERT_TRUE(w.ok()) << w.message();
    const uint16_t a[6] = {F32ToBf16(1), F32ToBf16(-2), F32ToBf16(0.5f), 0, 0, F32ToBf16(3)};
    const float bv[3] = {1.25f, -7.0f, 1e-3f};
    ASSERT_TRUE(w->WriteTensor("a.weight", a, sizeof(a)).ok());
    ASSERT_TRUE(w->WriteTensor("b", bv, sizeof(bv)).ok());
    EXPECT_EQ(w->current_tensor(), "");
    ASSERT_TRUE(w->Finish().ok());
  }
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  StFile st = ParseSafetensors(path);
  EXPECT_EQ(st.header["__metadata__"], json({{"format", "pt"}}));
  ASSERT_EQ(st.tensors.size(), 3u);
  EXPECT_EQ(st.tensors["a.weight"].dtype, "BF16");
  EXPECT_EQ(st.tensors["a.weight"].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(st.header["a.weight"]["data_offsets"], json({0, 12}));
  EXPECT_EQ(st.header["b"]["data_offsets"], json({12, 24}));
  EXPECT_EQ(st.header["empty"]["data_offsets"], json({24, 24}));
  uint16_t h;
  std::memcpy(&h, st.tensors["a.weight"].data + 2, 2);
  EXPECT_EQ(Bf16ToF32(h), -2.0f);
  float b1;
  std::memcpy(&b1, st.tensors["b"].data + 4, 4);
  EXPECT_EQ(b1, -7.0f);
}

TEST(SafetensorsWriter, AbandonedWriterRemovesTempFile) {
  const std::string dir = ScratchDir("st_abandon");
  const std::string path = dir + "/x.safetensors";
  {
    auto w = SafetensorsWriter::Create(path, {{"a", SafetensorsDtype::kF32, {4}}});
    ASSERT_TRUE(w.ok());
    EXPECT_TRUE(fs::exists(path + ".tmp"));
  }
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_FALSE(fs::exists(path));
  EXPECT_ERROR_HAS(SafetensorsWriter::Create(path, {{"a", SafetensorsDtype::kF32, {4}},
                                                    {"a", SafetensorsDtype::kF32, {4}}}),
                   "x.safetensors", "'a'", "duplicate");
  EXPECT_ERROR_HAS(SafetensorsWriter::Create(dir + "/no/such/dir/x.safetensors",
                                             {{"a", SafetensorsDtype::kF32, {4}}}),
                   "cannot create");
}

// ---------------------------------------------------------------------------------------------
// Conversion of a tiny crafted llama GGUF: exact values, Q/K row un-permutation, files.

constexpr int kHidden = 32, kHeads = 2, kKvHeads = 1, kHeadDim = 16, kFfn = 64, kVocab = 10;

std::vector<float> RowValues(int rows, int cols, float scale) {
  // value(r, c) = scale * (r + 1) * (c % 2 ? -1 : 1): every row distinguishable, bf16-exact.
  std::vector<float> v(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c)
      v[r * cols + c] = scale * static_cast<float>(r + 1) * (c % 2 ? -1.f : 1.f);
  }
  return v;
}

GgufBuilder TinyLlama(bool with_output = true) {
  GgufBuilder b;
  b.Str("general.architecture", "llama");
  b.U32("llama.block_count", 1);
  b.U32("llama.context_length", 256);
  b.U32("llama.embedding_length", kHidden);
  b.U32("llama.feed_forward_length", kFfn);
  b.U32("llama.attention.head_count", kHeads);
  b.U32("llama.attention.head_count_kv", kKvHeads);
  b.F32("llama.rope.freq_base", 10000.0f);
  b.F32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  b.U32("llama.rope.dimension_count", kHeadDim);
  b.U32("llama.vocab_size", kVocab);
  b.Str("tokenizer.ggml.model", "gpt2");
  b.Str("tokenizer.ggml.pre", "smollm");
  b.StrArr("tokenizer.ggml.tokens",
           {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "ab", "\xc4\xa0",
            "\xc4\xa0"
            "ab",
            "1", "<tool>"});
  b.I32Arr("tokenizer.ggml.token_type", {3, 3, 3, 1, 1, 1, 1, 1, 1, 4});
  b.StrArr("tokenizer.ggml.merges", {"a b", "\xc4\xa0 ab"});
  b.U32("tokenizer.ggml.bos_token_id", 1);
  b.U32("tokenizer.ggml.eos_token_id", 2);
  b.U32("tokenizer.ggml.unknown_token_id", 0);
  b.U32("tokenizer.ggml.padding_token_id", 2);
  b.Bool("tokenizer.ggml.add_bos_token", false);
  b.Str("tokenizer.chat_template", "{{ messages[0]['content'] }}");

  // token_embd as Q8_0: one block per row, d = 1/8 (f16 0x3000), q[c] = c - 16.
  std::string embd;
  for (int r = 0; r < kVocab; ++r) {
    embd += GgufBuilder::Raw(uint16_t{0x3000});
    for (int c = 0; c < 32; ++c) embd.push_back(static_cast<char>(c - 16 + r));
  }
  b.AddTensor("token_embd.weight", {kHidden, kVocab}, 8, embd);
  b.AddF32("blk.0.attn_norm.weight", {kHidden}, RowValues(1, kHidden, 1.0f));
  b.AddF32("blk.0.attn_q.weight", {kHidden, kHeads * kHeadDim},
           RowValues(kHeads * kHeadDim, kHidden, 1.0f));
  b.AddF32("blk.0.attn_k.weight", {kHidden, kKvHeads * kHeadDim},
           RowValues(kKvHeads * kHeadDim, kHidden, 2.0f));
  b.AddF32("blk.0.attn_v.weight", {kHidden, kKvHeads * kHeadDim},
           RowValues(kKvHeads * kHeadDim, kHidden, 4.0f));
  b.AddF32("blk.0.attn_output.weight", {kHeads * kHeadDim, kHidden},
           RowValues(kHidden, kHeads * kHeadDim, 0.5f));
  b.AddF32("blk.0.ffn_gate.weight", {kHidden, kFfn}, RowValues(kFfn, kHidden, 0.25f));
  b.AddF32("blk.0.ffn_up.weight", {kHidden, kFfn}, RowValues(kFfn, kHidden, 0.125f));
  b.AddF32("blk.0.ffn_down.weight", {kFfn, kHidden}, RowValues(kHidden, kFfn, 1.0f));
  b.AddF32("blk.0.ffn_norm.weight", {kHidden}, RowValues(1, kHidden, 2.0f));
  b.AddF32("output_norm.weight", {kHidden}, RowValues(1, kHidden, 3.0f));
  if (with_output) b.AddF32("output.weight", {kHidden, kVocab}, RowValues(kVocab, kHidden, 1.0f));
  return b;
}

float Bf16At(const StTensor& t, size_t index) {
  uint16_t h;
  std::memcpy(&h, t.data + 2 * index, 2);
  return Bf16ToF32(h);
}

TEST(GgufConvert, PermutationIndexMap) {
  // hf row h*hd + i*hd/2 + j <- gguf row h*hd + 2j + i (hd = 16)
  EXPECT_EQ(LlamaGgufRowForHfRow(0, 16), 0);
  EXPECT_EQ(LlamaGgufRowForHfRow(1, 16), 2);
  EXPECT_EQ(LlamaGgufRowForHfRow(7, 16), 14);
  EXPECT_EQ(LlamaGgufRowForHfRow(8, 16), 1);
  EXPECT_EQ(LlamaGgufRowForHfRow(9, 16), 3);
  EXPECT_EQ(LlamaGgufRowForHfRow(15, 16), 15);
  EXPECT_EQ(LlamaGgufRowForHfRow(17, 16), 18);
  EXPECT_EQ(LlamaGgufRowForHfRow(24, 16), 17);
  // It is a bijection on every head.
  std::vector<int> seen(64, 0);
  for (int r = 0; r < 64; ++r) seen[LlamaGgufRowForHfRow(r, 16)]++;
  for (int s : seen) EXPECT_EQ(s, 1);
}

TEST(GgufConvert, TensorNames) {
  EXPECT_EQ(GgufToHfTensorName("blk.12.ffn_down.weight").value(),
            "model.layers.12.mlp.down_proj.weight");
  EXPECT_EQ(GgufToHfTensorName("blk.0.attn_output.weight").value(),
            "model.layers.0.self_attn.o_proj.weight");
  EXPECT_EQ(GgufToHfTensorName("blk.3.ffn_norm.weight").value(),
            "model.layers.3.post_attention_layernorm.weight");
  EXPECT_EQ(GgufToHfTensorName("output.weight").value(), "lm_head.weight");
  EXPECT_ERROR_HAS(GgufToHfTensorName("blk.0.attn_q.bias"), "blk.0.attn_q.bias");
  EXPECT_ERROR_HAS(GgufToHfTensorName("rope_freqs.weight"), "rope_freqs.weight");
  EXPECT_ERROR_HAS(GgufToHfTensorName("blk.x.attn_q.weight"), "blk.x.attn_q.weight");
}

TEST(GgufConvert, TinyModelEndToEnd) {
  const std::string dir = ScratchDir("tiny");
  const std::string gguf = WriteGguf(dir, "tiny.gguf", TinyLlama());
  const std::string out = dir + "/hf";
  std::vector<std::string> labels;
  int64_t last_total = 0;
  Status st = ConvertGgufToHf(gguf, out, [&](int64_t done, int64_t total, const std::string& l) {
    if (done > 0) labels.push_back(l);
    last_total = total;
  });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(last_total, 12);
  ASSERT_EQ(labels.size(), 12u);
  EXPECT_EQ(labels[0], "model.embed_tokens.weight");

  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json",
                        "tokenizer_config.json", "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
    EXPECT_FALSE(fs::exists(out + "/" + f + ".tmp")) << f;
  }

  const json cfg = json::parse(ReadAll(out + "/config.json"));
  EXPECT_EQ(cfg["architectures"], json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(cfg["hidden_size"], kHidden);
  EXPECT_EQ(cfg["num_key_value_heads"], kKvHeads);
  EXPECT_EQ(cfg["head_dim"], kHeadDim);
  EXPECT_EQ(cfg["rms_norm_eps"].get<double>(), 1e-5);  // shortest float repr, not 9.99999974e-06
  EXPECT_EQ(cfg["rope_theta"].get<double>(), 10000.0);
  EXPECT_EQ(cfg["tie_word_embeddings"], false);
  EXPECT_TRUE(cfg["rope_scaling"].is_null());

  StFile stf = ParseSafetensors(out + "/model.safetensors");
  ASSERT_EQ(stf.tensors.size(), 12u);
  EXPECT_EQ(stf.tensors.count("lm_head.weight"), 1u);
  const StTensor& embd = stf.tensors["model.embed_tokens.weight"];
  EXPECT_EQ(embd.dtype, "BF16");
  EXPECT_EQ(embd.shape, (std::vector<int64_t>{kVocab, kHidden}));
  EXPECT_EQ(Bf16At(embd, 3 * kHidden + 5), (5 - 16 + 3) / 8.0f);  // row 3, col 5: q * d

  // Q: HF row r holds GGUF row LlamaGgufRowForHfRow(r); GGUF row g has values +-(g + 1).
  const StTensor& q = stf.tensors["model.layers.0.self_attn.q_proj.weight"];
  EXPECT_EQ(q.shape, (std::vector<int64_t>{kHeads * kHeadDim, kHidden}));
  const std::pair<int, int> q_rows[] = {{0, 0},   {1, 2},   {8, 1},   {9, 3},  {15, 15},
                                        {16, 16}, {17, 18}, {24, 17}, {31, 31}};
  for (auto [hf, g] : q_rows) {
    EXPECT_EQ(Bf16At(q, hf * kHidden + 0), static_cast<float>(g + 1)) << "q row " << hf;
    EXPECT_EQ(Bf16At(q, hf * kHidden + 1), -static_cast<float>(g + 1)) << "q row " << hf;
  }
  const StTensor& k = stf.tensors["model.layers.0.self_attn.k_proj.weight"];
  EXPECT_EQ(k.shape, (std::vector<int64_t>{kKvHeads * kHeadDim, kHidden}));
  EXPECT_EQ(Bf16At(k, 1 * kHidden), 2.0f * 3);  // hf 1 <- gguf 2
  EXPECT_EQ(Bf16At(k, 8 * kHidden), 2.0f * 2);  // hf 8 <- gguf 1
  // V and O are not permuted.
  const StTensor& v = stf.tensors["model.layers.0.self_attn.v_proj.weight"];
  EXPECT_EQ(Bf16At(v, 1 * kHidden), 4.0f * 2);
  const StTensor& o = stf.tensors["model.layers.0.self_attn.o_proj.weight"];
  EXPECT_EQ(o.shape, (std::vector<int64_t>{kHidden, kHeads * kHeadDim}));
  EXPECT_EQ(Bf16At(o, 5 * kHeads * kHeadDim), 0.5f * 6);
  const StTensor& down = stf.tensors["model.layers.0.mlp.down_proj.weight"];
  EXPECT_EQ(down.shape, (std::vector<int64_t>{kHidden, kFfn}));
  EXPECT_EQ(stf.tensors["model.norm.weight"].shape, (std::vector<int64_t>{kHidden}));
  EXPECT_EQ(Bf16At(stf.tensors["model.norm.weight"], 1), -3.0f);

  const json tok = json::parse(ReadAll(out + "/tokenizer.json"));
  EXPECT_EQ(tok["version"], "1.0");
  EXPECT_EQ(tok["model"]["type"], "BPE");
  EXPECT_EQ(tok["model"]["vocab"].size(), static_cast<size_t>(kVocab));
  EXPECT_EQ(tok["model"]["vocab"]["\xc4\xa0"
                                  "ab"],
            7);
  EXPECT_EQ(tok["model"]["merges"], json::parse(R"([["a","b"],["\u0120","ab"]])"));
  ASSERT_EQ(tok["added_tokens"].size(), 4u);
  EXPECT_EQ(tok["added_tokens"][1]["content"], "<|im_start|>");
  EXPECT_EQ(tok["added_tokens"][1]["special"], true);
  EXPECT_EQ(tok["added_tokens"][3]["id"], 9);
  EXPECT_EQ(tok["added_tokens"][3]["special"], false);  // USER_DEFINED
  EXPECT_EQ(tok["pre_tokenizer"]["pretokenizers"][0]["type"], "Digits");
  EXPECT_EQ(tok["decoder"]["type"], "ByteLevel");

  const json tc = json::parse(ReadAll(out + "/tokenizer_config.json"));
  EXPECT_EQ(tc["bos_token"], "<|im_start|>");
  EXPECT_EQ(tc["eos_token"], "<|im_end|>");
  EXPECT_EQ(tc["pad_token"], "<|im_end|>");
  EXPECT_EQ(tc["unk_token"], "<|endoftext|>");
  EXPECT_EQ(tc["add_bos_token"], false);
  EXPECT_EQ(tc["model_max_length"], 256);
  EXPECT_EQ(tc["chat_template"], "{{ messages[0]['content'] }}");
  const json gc = json::parse(ReadAll(out + "/generation_config.json"));
  EXPECT_EQ(gc["bos_token_id"], 1);
  EXPECT_EQ(gc["eos_token_id"], 2);
  EXPECT_EQ(gc["pad_token_id"], 2);

  // Converting again into the same directory replaces our files.
  ASSERT_TRUE(ConvertGgufToHf(gguf, out, nullptr).ok());
}

TEST(GgufConvert, TiedEmbeddingsHaveNoLmHead) {
  const std::string dir = ScratchDir("tied");
  const std::string gguf = WriteGguf(dir, "tied.gguf", TinyLlama(false));
  ASSERT_TRUE(ConvertGgufToHf(gguf, dir + "/hf", nullptr).ok());
  const json cfg = json::parse(ReadAll(dir + "/hf/config.json"));
  EXPECT_EQ(cfg["tie_word_embeddings"], true);
  StFile stf = ParseSafetensors(dir + "/hf/model.safetensors");
  EXPECT_EQ(stf.tensors.size(), 11u);
  EXPECT_EQ(stf.tensors.count("lm_head.weight"), 0u);
}

TEST(GgufConvert, RefusesForeignOutputDirectory) {
  const std::string dir = ScratchDir("foreign");
  const std::string gguf = WriteGguf(dir, "m.gguf", TinyLlama());
  fs::create_directories(dir + "/hf");
  WriteAll(dir + "/hf/notes.txt", "mine");
  EXPECT_ERROR_HAS(ConvertGgufToHf(gguf, dir + "/hf", nullptr), "notes.txt", "refusing");
  EXPECT_FALSE(fs::exists(dir + "/hf/model.safetensors"));
  EXPECT_ERROR_HAS(ConvertGgufToHf(gguf, gguf, nullptr), "not a directory");
}

TEST(GgufConvert, BadModelsAreClearErrors) {
  const std::string dir = ScratchDir("badmodels");
  auto convert = [&](GgufBuilder b, const std::string& name) {
    const std::string p = WriteGguf(dir, name, b);
    return ConvertGgufToHf(p, dir + "/out_" + name, nullptr);
  };
  {
    // Unknown pre-tokenizer.
    std::string bytes = TinyLlama().Build();
    const size_t at = bytes.find("smollm");
    ASSERT_NE(at, std::string::npos);
    bytes.replace(at, 6, "martia");
    WriteAll(dir + "/pre.gguf", bytes);
    EXPECT_ERROR_HAS(ConvertGgufToHf(dir + "/pre.gguf", dir + "/out_pre", nullptr), "pre.gguf",
                     "tokenizer.ggml.pre", "martia");
    EXPECT_FALSE(fs::exists(dir + "/out_pre/model.safetensors"));
  }
  {
    std::string bytes = TinyLlama().Build();
    const size_t at = bytes.find("llama");
    bytes.replace(at, 5, "gemma");
    WriteAll(dir + "/arch.gguf", bytes);
    EXPECT_ERROR_HAS(ConvertGgufToHf(dir + "/arch.gguf", dir + "/out_arch", nullptr),
                     "general.architecture", "gemma");
  }
  {
    GgufBuilder b = TinyLlama();
    b.AddF32("blk.0.attn_q.bias", {32}, RowValues(1, 32, 1));
    EXPECT_ERROR_HAS(convert(b, "bias.gguf"), "bias.gguf", "blk.0.attn_q.bias");
  }
  {
    GgufBuilder b = TinyLlama();
    b.AddTensor("blk.0.extra.weight", {32}, 20, std::string(18, '\0'));  // IQ4_NL
    EXPECT_ERROR_HAS(convert(b, "extra.gguf"), "blk.0.extra.weight");
  }
  {
    // Wrong shape for attn_k (heads mismatch).
    std::string bytes = TinyLlama().Build();
    const std::string key = "llama.attention.head_count_kv";
    const size_t at = bytes.find(key) + key.size() + 4;
    const uint32_t two = 2;
    std::memcpy(bytes.data() + at, &two, 4);
    WriteAll(dir + "/shape.gguf", bytes);
    EXPECT_ERROR_HAS(ConvertGgufToHf(dir + "/shape.gguf", dir + "/out_shape", nullptr),
                     "shape.gguf", "blk.0.attn_k.weight", "[16, 32]", "[32, 32]");
  }
  {
    // A merge producing a token outside the vocabulary.
    std::string bytes = TinyLlama().Build();
    const size_t at = bytes.find("a b");
    bytes.replace(at, 3, "b a");
    WriteAll(dir + "/merge.gguf", bytes);
    EXPECT_ERROR_HAS(ConvertGgufToHf(dir + "/merge.gguf", dir + "/out_merge", nullptr),
                     "tokenizer.ggml.merges", "merge 0", "\"ba\"");
  }
}

// ---------------------------------------------------------------------------------------------
// The real SmolLM2-135M-Instruct Q4_1 GGUF (skipped when absent).

std::string SmolGgufPath() {
  if (const char* p = std::getenv("C8_SMOLLM2_GGUF")) return p;
  return std::string(C8_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

TEST(GgufSmolLM2, DequantMatchesPythonReference) {
  const std::string path = SmolGgufPath();
  if (!fs::exists(path)) GTEST_SKIP() << path << " not found (set C8_SMOLLM2_GGUF)";
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->tensors().size(), 272u);
  EXPECT_EQ(f->GetString("tokenizer.ggml.pre").value(), "smollm");
  const json ref = json::parse(ReadAll(kDataDir + "/smollm2_reference.json"));
  // Rows of unpermuted tensors straight from the dequantizer.
  for (const char* name : {"token_embd.weight", "blk.0.attn_v.weight", "blk.5.ffn_down.weight"}) {
    SCOPED_TRACE(name);
    const GgufTensorInfo* t = f->FindTensor(name);
    ASSERT_NE(t, nullptr);
    auto values = DequantizeTensor(*f, *t);
    ASSERT_TRUE(values.ok()) << values.message();
    const int64_t ne0 = t->ne[0];
    for (const auto& [row, e] : ref["tensors"][name]["rows"].items()) {
      const int64_t r = std::stoll(row);
      const auto first = e["first_f32"].get<std::vector<double>>();
      double sum = 0;
      for (int64_t c = 0; c < ne0; ++c) sum += (*values)[r * ne0 + c];
      for (size_t c = 0; c < first.size(); ++c) {
        EXPECT_NEAR((*values)[r * ne0 + c], first[c], 1e-6 * std::fabs(first[c]) + 1e-9)
            << "row " << r << " col " << c;
      }
      EXPECT_NEAR(sum, e["sum"].get<double>(), 1e-4) << "row " << r;
    }
  }
}

TEST(GgufSmolLM2, ConvertsToHfDirectory) {
  const std::string path = SmolGgufPath();
  if (!fs::exists(path)) GTEST_SKIP() << path << " not found (set C8_SMOLLM2_GGUF)";
  const std::string out = ScratchDir("smollm2") + "/hf";
  int64_t calls = 0;
  Status st = ConvertGgufToHf(path, out, [&](int64_t, int64_t, const std::string&) { ++calls; });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(calls, 273);  // 0/272 + one per tensor

  const json cfg = json::parse(ReadAll(out + "/config.json"));
  EXPECT_EQ(cfg["model_type"], "llama");
  EXPECT_EQ(cfg["hidden_size"], 576);
  EXPECT_EQ(cfg["intermediate_size"], 1536);
  EXPECT_EQ(cfg["num_hidden_layers"], 30);
  EXPECT_EQ(cfg["num_attention_heads"], 9);
  EXPECT_EQ(cfg["num_key_value_heads"], 3);
  EXPECT_EQ(cfg["head_dim"], 64);
  EXPECT_EQ(cfg["vocab_size"], 49152);
  EXPECT_EQ(cfg["max_position_embeddings"], 8192);
  EXPECT_EQ(cfg["rms_norm_eps"].get<double>(), 1e-5);
  EXPECT_EQ(cfg["rope_theta"].get<double>(), 100000.0);
  EXPECT_EQ(cfg["tie_word_embeddings"], true);
  EXPECT_EQ(cfg["bos_token_id"], 1);
  EXPECT_EQ(cfg["eos_token_id"], 2);
  EXPECT_EQ(cfg["torch_dtype"], "bfloat16");
  EXPECT_EQ(cfg["hidden_act"], "silu");

  StFile stf = ParseSafetensors(out + "/model.safetensors");
  EXPECT_EQ(stf.tensors.size(), 272u);  // no output.weight -> no lm_head
  EXPECT_EQ(stf.tensors.count("lm_head.weight"), 0u);
  EXPECT_EQ(stf.tensors["model.embed_tokens.weight"].shape, (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(stf.tensors["model.layers.29.self_attn.q_proj.weight"].shape,
            (std::vector<int64_t>{576, 576}));
  EXPECT_EQ(stf.tensors["model.layers.7.self_attn.k_proj.weight"].shape,
            (std::vector<int64_t>{192, 576}));
  EXPECT_EQ(stf.tensors["model.layers.0.mlp.down_proj.weight"].shape,
            (std::vector<int64_t>{576, 1536}));
  EXPECT_EQ(stf.tensors["model.layers.0.mlp.gate_proj.weight"].shape,
            (std::vector<int64_t>{1536, 576}));
  EXPECT_EQ(stf.tensors["model.norm.weight"].shape, (std::vector<int64_t>{576}));
  for (const auto& [name, t] : stf.tensors) EXPECT_EQ(t.dtype, "BF16") << name;

  const json ref = json::parse(ReadAll(kDataDir + "/smollm2_reference.json"));
  const std::map<std::string, std::string> hf_names = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"},
      {"blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight"},
      {"blk.0.attn_v.weight", "model.layers.0.self_attn.v_proj.weight"},
      {"blk.29.attn_k.weight", "model.layers.29.self_attn.k_proj.weight"},
      {"blk.5.ffn_down.weight", "model.layers.5.mlp.down_proj.weight"},
      {"blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"},
      {"output_norm.weight", "model.norm.weight"},
  };
  for (const auto& [gname, e] : ref["tensors"].items()) {
    SCOPED_TRACE(gname);
    ASSERT_EQ(hf_names.count(gname), 1u);
    const StTensor& t = stf.tensors[hf_names.at(gname)];
    const int64_t cols = t.shape.size() == 2 ? t.shape[1] : t.shape[0];
    const int64_t rows = t.shape.size() == 2 ? t.shape[0] : 1;
    for (const auto& [row, re] : e["rows"].items()) {
      const int64_t r = std::stoll(row);
      const auto first = re["first_bf16"].get<std::vector<double>>();
      for (size_t c = 0; c < first.size(); ++c) {
        EXPECT_EQ(Bf16At(t, r * cols + c), static_cast<float>(first[c]))
            << "row " << r << " col " << c;
      }
      double sum = 0;
      for (int64_t c = 0; c < cols; ++c) sum += Bf16At(t, r * cols + c);
      // bf16 rounding: relative error <= 2^-9 per element.
      EXPECT_NEAR(sum, re["sum"].get<double>(), re["abs_sum"].get<double>() / 256 + 1e-6)
          << "row " << r;
    }
    // Row-order-sensitive checksum over the whole tensor (catches a wrong permutation anywhere).
    double weighted = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c) s += Bf16At(t, r * cols + c);
      weighted += static_cast<double>(r + 1) * s;
    }
    const double abs_sum = e["abs_sum"].get<double>();
    EXPECT_NEAR(weighted, e["weighted_row_sum"].get<double>(), abs_sum * rows / 256 + 1e-6);
  }

  const json tok = json::parse(ReadAll(out + "/tokenizer.json"));
  EXPECT_EQ(tok["model"]["vocab"].size(), 49152u);
  EXPECT_EQ(tok["model"]["merges"].size(), 48900u);
  EXPECT_EQ(tok["model"]["merges"][0], json::array({"\xc4\xa0", "t"}));
  EXPECT_EQ(tok["added_tokens"].size(), 17u);
  EXPECT_EQ(tok["added_tokens"][2]["content"], "<|im_end|>");
  EXPECT_EQ(tok["pre_tokenizer"]["type"], "Sequence");
  EXPECT_EQ(tok["pre_tokenizer"]["pretokenizers"][0]["individual_digits"], true);
  EXPECT_EQ(tok["pre_tokenizer"]["pretokenizers"][1]["type"], "ByteLevel");
  const json tc = json::parse(ReadAll(out + "/tokenizer_config.json"));
  EXPECT_EQ(tc["eos_token"], "<|im_end|>");
  EXPECT_EQ(tc["bos_token"], "<|im_start|>");
  EXPECT_TRUE(Contains(tc["chat_template"].get<std::string>(), "<|im_start|>"));
  EXPECT_EQ(tc["add_bos_token"], false);
  EXPECT_EQ(tc["tokenizer_class"], "GPT2Tokenizer");
  fs::remove_all(out);  // ~270 MB
}

}  // namespace
}  // namespace c8
