// GGUF (v2/v3, little-endian) reader: metadata key/values and the tensor directory of a
// memory-mapped .gguf file. Every count, length, offset and size in the file is validated
// against the file size before use; errors name the file and the key/tensor at fault.
//
// File layout (all integers little-endian):
//   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | tensor data (offsets relative to here)
// string = u64 length + bytes (no terminator); array = u32 elem_type + u64 count + elements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "c8/util/status.h"

namespace c8 {

// ggml tensor element types (numbering fixed by the GGUF spec; gaps are retired types).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

// Storage geometry of a ggml type: `block_size` elements are stored in `type_size` bytes.
struct GgmlTypeInfo {
  const char* name;
  int64_t block_size;
  int64_t type_size;
};

// Returns nullptr for a type number this reader does not know.
const GgmlTypeInfo* GetGgmlTypeInfo(uint32_t type);
// "Q4_K", or "type 99" for unknown numbers.
std::string GgmlTypeName(uint32_t type);

// Metadata value types (GGUF spec numbering).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* GgufValueTypeName(GgufValueType type);

// One metadata value. Scalars live in the member matching their type class; arrays hold their
// element type in `elem_type` and their elements in exactly one of the vectors:
//   integer and bool elements -> ints (uint64 elements are stored bit-cast to int64),
//   float elements -> floats, string elements -> strings, nested arrays -> items.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  GgufValueType elem_type = GgufValueType::kUint8;  // arrays only
  int64_t i = 0;                                    // signed integers and bool (0/1)
  uint64_t u = 0;   // unsigned integers (also set for non-negative signed ones)
  double f = 0.0;   // float32/float64
  std::string str;  // string
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
  std::vector<GgufValue> items;

  bool IsInteger() const;
  bool IsFloat() const {
    return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64;
  }
  // Number of array elements (0 for scalars).
  size_t ArraySize() const;
};

// One entry of the tensor directory.
struct GgufTensorInfo {
  std::string name;
  uint32_t type = 0;              // GgmlType number (validated: known to GetGgmlTypeInfo)
  std::vector<int64_t> ne;        // ggml order: ne[0] is the contiguous (fastest) dimension
  uint64_t offset = 0;            // absolute offset of the data in the file
  uint64_t nbytes = 0;            // byte size of the data
  const uint8_t* data = nullptr;  // points into the mapping (valid while the GgufFile lives)

  GgmlType ggml_type() const { return static_cast<GgmlType>(type); }
  int64_t NumElements() const;
  // Row-major shape as PyTorch/HF see it: ne reversed ([ne[n-1], ..., ne[0]]).
  std::vector<int64_t> TorchShape() const;
};

// A memory-mapped GGUF file. Move-only; tensor data pointers stay valid while it lives.
class GgufFile {
 public:
  static Result<GgufFile> Open(const std::string& path);

  GgufFile(GgufFile&& other) noexcept;
  GgufFile& operator=(GgufFile&& other) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t file_size() const { return size_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  // Keys in file order.
  const std::vector<std::string>& keys() const { return key_order_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  // nullptr when absent.
  const GgufValue* Find(const std::string& key) const;
  const GgufTensorInfo* FindTensor(const std::string& name) const;
  bool Has(const std::string& key) const { return Find(key) != nullptr; }

  // Typed getters: error (naming file and key) when the key is missing or has the wrong type.
  Result<std::string> GetString(const std::string& key) const;
  // Any integer type; error if negative.
  Result<uint64_t> GetUint(const std::string& key) const;
  // Any integer type; error if an unsigned value exceeds int64.
  Result<int64_t> GetInt(const std::string& key) const;
  // Float or integer types.
  Result<double> GetFloat(const std::string& key) const;
  Result<bool> GetBool(const std::string& key) const;
  // Arrays: element type must match (strings / any integer / any float).
  Result<std::vector<std::string>> GetStringArray(const std::string& key) const;
  Result<std::vector<int64_t>> GetIntArray(const std::string& key) const;
  Result<std::vector<double>> GetFloatArray(const std::string& key) const;

 private:
  GgufFile() = default;
  void Unmap();

  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<std::string> key_order_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;

  friend class GgufParser;
};

}  // namespace c8
