// GGUF reader: see gguf.h for the layout.
#include "c8/formats/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

namespace c8 {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr int kMaxDims = 4;                  // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;            // nested arrays deeper than this are rejected

struct TypeEntry {
  uint32_t id;
  GgmlTypeInfo info;
};

// block_size / type_size per type (from the ggml type traits).
constexpr TypeEntry kTypes[] = {
    {0, {"F32", 1, 4}},         {1, {"F16", 1, 2}},         {2, {"Q4_0", 32, 18}},
    {3, {"Q4_1", 32, 20}},      {6, {"Q5_0", 32, 22}},      {7, {"Q5_1", 32, 24}},
    {8, {"Q8_0", 32, 34}},      {9, {"Q8_1", 32, 40}},      {10, {"Q2_K", 256, 84}},
    {11, {"Q3_K", 256, 110}},   {12, {"Q4_K", 256, 144}},   {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}},   {15, {"Q8_K", 256, 292}},   {16, {"IQ2_XXS", 256, 66}},
    {17, {"IQ2_XS", 256, 74}},  {18, {"IQ3_XXS", 256, 98}}, {19, {"IQ1_S", 256, 50}},
    {20, {"IQ4_NL", 32, 18}},   {21, {"IQ3_S", 256, 110}},  {22, {"IQ2_S", 256, 82}},
    {23, {"IQ4_XS", 256, 136}}, {24, {"I8", 1, 1}},         {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},        {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},
    {29, {"IQ1_M", 256, 56}},   {30, {"BF16", 1, 2}},       {34, {"TQ1_0", 256, 54}},
    {35, {"TQ2_0", 256, 66}},   {39, {"MXFP4", 32, 17}},
};

bool IsIntegerType(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool IsFloatType(GgufValueType t) {
  return t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64;
}

// Smallest encoded size of one value of type t (used to bound counts by the file size).
uint64_t MinEncodedSize(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
    case GgufValueType::kString:
      return 8;
    case GgufValueType::kArray:
      return 12;
  }
  return 1;
}

bool KnownValueType(uint32_t t) {
  return t <= 12;
}

std::string Quote(const std::string& s) {
  return "'" + s + "'";
}

}  // namespace

const GgmlTypeInfo* GetGgmlTypeInfo(uint32_t type) {
  for (const auto& e : kTypes) {
    if (e.id == type) return &e.info;
  }
  return nullptr;
}

std::string GgmlTypeName(uint32_t type) {
  const GgmlTypeInfo* info = GetGgmlTypeInfo(type);
  return info ? std::string(info->name) : "type " + std::to_string(type);
}

const char* GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

bool GgufValue::IsInteger() const {
  return IsIntegerType(type);
}

size_t GgufValue::ArraySize() const {
  if (type != GgufValueType::kArray) return 0;
  return ints.size() + floats.size() + strings.size() + items.size();
}

int64_t GgufTensorInfo::NumElements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

std::vector<int64_t> GgufTensorInfo::TorchShape() const {
  return {ne.rbegin(), ne.rend()};
}

// Sequential little-endian decoder over the mapped bytes; every read is bounds-checked.
class GgufParser {
 public:
  GgufParser(GgufFile& f) : f_(f) {}

  Status Parse();

 private:
  Status Fail(const std::string& msg) const { return Error(f_.path_ + ": " + msg); }
  Status Truncated(const std::string& what) const {
    return Fail("truncated file: " + what + " at offset " + std::to_string(pos_) +
                " runs past the end of the file (" + std::to_string(f_.size_) + " bytes)");
  }

  template <class T>
  Status Read(T* out, const std::string& what) {
    if (f_.size_ - pos_ < sizeof(T)) return Truncated(what);
    std::memcpy(out, f_.base_ + pos_, sizeof(T));  // host is little-endian (x86-64/aarch64)
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status ReadString(std::string* out, const std::string& what) {
    uint64_t len = 0;
    C8_RETURN_IF_ERROR(Read(&len, what + " length"));
    if (len > f_.size_ - pos_) {
      return Fail(what + ": string length " + std::to_string(len) + " at offset " +
                  std::to_string(pos_ - 8) + " goes beyond the end of the file (" +
                  std::to_string(f_.size_ - pos_) + " bytes left)");
    }
    out->assign(reinterpret_cast<const char*>(f_.base_ + pos_), len);
    pos_ += len;
    return Status::Ok();
  }

  Status ReadValue(GgufValueType type, GgufValue* v, const std::string& what, int depth);
  Status ReadArray(GgufValue* v, const std::string& what, int depth);

  GgufFile& f_;
  uint64_t pos_ = 0;
};

Status GgufParser::ReadValue(GgufValueType type, GgufValue* v, const std::string& what, int depth) {
  v->type = type;
  switch (type) {
    case GgufValueType::kUint8: {
      uint8_t x = 0;
      C8_RETURN_IF_ERROR(Read(&x, what));
      v->u = x, v->i = x;
      return Status::Ok();
    }
    case GgufValueType::kInt8: {
      int8_t x = 0;
      C8_RETURN_IF_ERROR(Read(&x, what));
      v->i = x, v->u = static_cast<uint64_t>(x);
      return Status::Ok();
    }
    case GgufValueType::kUint16: {
      uint16_t x = 0;
      C8_RETURN_IF_ERROR(Read(&x, what));
      v->u = x, v->i = x;
      return Status::Ok();
    }
    case GgufValueType::kInt16: {
      int16_t x = 0;
      C8_RETURN_IF_ERROR(Read(&x, what));
      v->i = x, v->u = static_cast<uint64_t>(x);
      return Status::Ok();
    }
    case GgufValueType::kUint32: {
      uint32_t x = 0;
      C8_RETURN_IF_ERROR(Read(&x, what));
      v->u = x, v->i = x;
      return Status::Ok();
    }
    case GgufValueType::kInt32: {
      int32_t x = 0;
      C8_RETURN_IF_ERROR(Read(&x, what));
      v->i = x, v->u = static_cast<uint64_t>(x);
      return Status::Ok();
    }
    case GgufValueType::kUint64: {
      uint64_t x = 0;
      C8_RETURN_IF_ERROR(Read(&x, what));
      v->u = x, v->i = static_cast<int64_t>(x);
      return Status::Ok();
    }
    case GgufValueType::kInt64: {
      int64_t x = 0;
      C8_RETURN_IF_ERROR(Read(&x, what));
      v->i = x, v->u = static_cast<uint64_t>(x);
      return Status::Ok();
    }
    case GgufValueType::kFloat32: {
      float x = 0;
      C8_RETURN_IF_ERROR(Read(&x, what));
      v->f = x;
      return Status::Ok();
    }
    case GgufValueType::kFloat64: {
      double x = 0;
      C8_RETURN_IF_ERROR(Read(&x, what));
      v->f = x;
      return Status::Ok();
    }
    case GgufValueType::kBool: {
      uint8_t x = 0;
      C8_RETURN_IF_ERROR(Read(&x, what));
      if (x > 1) return Fail(what + ": invalid bool value " + std::to_string(x));
      v->i = x, v->u = x;
      return Status::Ok();
    }
    case GgufValueType::kString:
      return ReadString(&v->str, what);
    case GgufValueType::kArray:
      return ReadArray(v, what, depth + 1);
  }
  return Fail(what + ": unknown value type " + std::to_string(static_cast<uint32_t>(type)));
}

Status GgufParser::ReadArray(GgufValue* v, const std::string& what, int depth) {
  if (depth > kMaxArrayDepth) return Fail(what + ": arrays nested too deeply");
  uint32_t et = 0;
  C8_RETURN_IF_ERROR(Read(&et, what + " element type"));
  if (!KnownValueType(et)) {
    return Fail(what + ": unknown array element type " + std::to_string(et));
  }
  uint64_t count = 0;
  C8_RETURN_IF_ERROR(Read(&count, what + " element count"));
  auto elem_type = static_cast<GgufValueType>(et);
  v->elem_type = elem_type;
  uint64_t min_size = MinEncodedSize(elem_type);
  if (count > (f_.size_ - pos_) / min_size) {
    return Fail(what + ": array of " + std::to_string(count) + " " + GgufValueTypeName(elem_type) +
                " elements cannot fit in the " + std::to_string(f_.size_ - pos_) +
                " bytes left in the file");
  }
  if (IsIntegerType(elem_type) || elem_type == GgufValueType::kBool) {
    v->ints.resize(count);
  } else if (IsFloatType(elem_type)) {
    v->floats.resize(count);
  } else if (elem_type == GgufValueType::kString) {
    v->strings.resize(count);
  } else {
    v->items.resize(count);
  }
  for (uint64_t k = 0; k < count; ++k) {
    const std::string ew = what + "[" + std::to_string(k) + "]";
    if (elem_type == GgufValueType::kString) {
      C8_RETURN_IF_ERROR(ReadString(&v->strings[k], ew));
    } else if (elem_type == GgufValueType::kArray) {
      v->items[k].type = GgufValueType::kArray;
      C8_RETURN_IF_ERROR(ReadArray(&v->items[k], ew, depth + 1));
    } else {
      GgufValue e;
      C8_RETURN_IF_ERROR(ReadValue(elem_type, &e, ew, depth));
      if (IsFloatType(elem_type)) {
        v->floats[k] = e.f;
      } else {
        v->ints[k] = e.i;
      }
    }
  }
  return Status::Ok();
}

Status GgufParser::Parse() {
  if (f_.size_ < 4) {
    return Fail("not a GGUF file (only " + std::to_string(f_.size_) + " bytes, no magic)");
  }
  uint32_t magic = 0;
  C8_RETURN_IF_ERROR(Read(&magic, "magic"));
  if (magic != kGgufMagic) {
    char m[5] = {0};
    std::memcpy(m, f_.base_, 4);
    for (int k = 0; k < 4; ++k) {
      if (m[k] < 32 || m[k] > 126) m[k] = '?';
    }
    return Fail(std::string("not a GGUF file (bad magic '") + m + "', expected 'GGUF')");
  }
  C8_RETURN_IF_ERROR(Read(&f_.version_, "header field 'version'"));
  if (f_.version_ == 1) {
    return Fail("GGUF version 1 is not supported (only versions 2 and 3)");
  }
  if (f_.version_ != 2 && f_.version_ != 3) {
    // A byte-swapped version number means a big-endian file.
    if ((f_.version_ & 0x00ffffffu) == 0 && (f_.version_ >> 24) <= 3) {
      return Fail("big-endian GGUF files are not supported");
    }
    return Fail("unsupported GGUF version " + std::to_string(f_.version_) +
                " (only versions 2 and 3)");
  }
  uint64_t tensor_count = 0, kv_count = 0;
  C8_RETURN_IF_ERROR(Read(&tensor_count, "header field 'tensor_count'"));
  C8_RETURN_IF_ERROR(Read(&kv_count, "header field 'kv_count'"));
  // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at
  // least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
  const uint64_t left = f_.size_ - pos_;
  if (kv_count > left / 13) {
    return Fail("header field 'kv_count' = " + std::to_string(kv_count) +
                " is impossible for a file of " + std::to_string(f_.size_) + " bytes");
  }
  if (tensor_count > left / 24) {
    return Fail("header field 'tensor_count' = " + std::to_string(tensor_count) +
                " is impossible for a file of " + std::to_string(f_.size_) + " bytes");
  }

  for (uint64_t k = 0; k < kv_count; ++k) {
    std::string key;
    C8_RETURN_IF_ERROR(ReadString(&key, "metadata key #" + std::to_string(k)));
    const std::string what = "metadata key " + Quote(key);
    uint32_t type = 0;
    C8_RETURN_IF_ERROR(Read(&type, what + " value type"));
    if (!KnownValueType(type)) {
      return Fail(what + ": unknown value type " + std::to_string(type));
    }
    GgufValue v;
    C8_RETURN_IF_ERROR(ReadValue(static_cast<GgufValueType>(type), &v, what, 0));
    if (f_.kv_.count(key)) return Fail(what + ": duplicate key");
    f_.key_order_.push_back(key);
    f_.kv_.emplace(key, std::move(v));
  }

  if (const GgufValue* a = f_.Find("general.alignment")) {
    if (!a->IsInteger() || (a->i < 0 && a->type != GgufValueType::kUint64)) {
      return Fail("metadata key 'general.alignment' must be an unsigned integer, got " +
                  std::string(GgufValueTypeName(a->type)));
    }
    if (a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > (1u << 30)) {
      return Fail("metadata key 'general.alignment' = " + std::to_string(a->u) +
                  " is not a power of two");
    }
    f_.alignment_ = a->u;
  }

  f_.tensors_.resize(tensor_count);
  for (uint64_t t = 0; t < tensor_count; ++t) {
    GgufTensorInfo& ti = f_.tensors_[t];
    C8_RETURN_IF_ERROR(ReadString(&ti.name, "tensor #" + std::to_string(t) + " name"));
    const std::string what = "tensor " + Quote(ti.name);
    uint32_t n_dims = 0;
    C8_RETURN_IF_ERROR(Read(&n_dims, what + " n_dims"));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return Fail(what + ": invalid number of dimensions " + std::to_string(n_dims) + " (1.." +
                  std::to_string(kMaxDims) + ")");
    }
    ti.ne.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = 0;
      C8_RETURN_IF_ERROR(Read(&ne, what + " dimension " + std::to_string(d)));
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Fail(what + ": invalid dimension " + std::to_string(d) + " = " + std::to_string(ne));
      }
      ti.ne[d] = static_cast<int64_t>(ne);
    }
    C8_RETURN_IF_ERROR(Read(&ti.type, what + " type"));
    uint64_t rel_offset = 0;
    C8_RETURN_IF_ERROR(Read(&rel_offset, what + " offset"));
    ti.offset = rel_offset;  // made absolute below

    const GgmlTypeInfo* info = GetGgmlTypeInfo(ti.type);
    if (!info) return Fail(what + ": unknown GGML type " + std::to_string(ti.type));
    // Element count and byte size, with overflow checks (limit 2^62 elements).
    uint64_t n = 1;
    for (int64_t d : ti.ne) {
      if (d != 0 && n > (uint64_t{1} << 62) / static_cast<uint64_t>(d)) {
        return Fail(what + ": element count overflows");
      }
      n *= static_cast<uint64_t>(d);
    }
    if (ti.ne[0] % info->block_size != 0) {
      return Fail(what + ": dimension 0 (" + std::to_string(ti.ne[0]) +
                  ") is not a multiple of the " + info->name + " block size " +
                  std::to_string(info->block_size));
    }
    ti.nbytes = n / info->block_size * info->type_size;
    if (f_.tensor_index_.count(ti.name)) return Fail(what + ": duplicate tensor name");
    f_.tensor_index_.emplace(ti.name, t);
  }

  // Tensor data starts at the next multiple of the alignment.
  const uint64_t al = f_.alignment_;
  f_.data_offset_ = (pos_ + al - 1) / al * al;
  for (GgufTensorInfo& ti : f_.tensors_) {
    const std::string what = "tensor " + Quote(ti.name);
    const uint64_t rel = ti.offset;
    if (rel % al != 0) {
      return Fail(what + ": data offset " + std::to_string(rel) +
                  " is not a multiple of the alignment " + std::to_string(al));
    }
    if (f_.data_offset_ > f_.size_ || rel > f_.size_ - f_.data_offset_ ||
        ti.nbytes > f_.size_ - f_.data_offset_ - rel) {
      return Fail(what + ": data [" + std::to_string(f_.data_offset_) + "+" + std::to_string(rel) +
                  ", " + std::to_string(ti.nbytes) + " bytes) lies outside the file (" +
                  std::to_string(f_.size_) + " bytes; truncated file or bad offset)");
    }
    ti.offset = f_.data_offset_ + rel;
    ti.data = f_.base_ + ti.offset;
  }
  return Status::Ok();
}

Result<GgufFile> GgufFile::Open(const std::string& path) {
  GgufFile f;
  f.path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Error(path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error(path + ": not a regular file");
  }
  f.size_ = static_cast<uint64_t>(st.st_size);
  if (f.size_ > 0) {
    void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Error(path + ": cannot mmap: " + std::strerror(e));
    }
    f.base_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  GgufParser parser(f);
  C8_RETURN_IF_ERROR(parser.Parse());
  return f;
}

GgufFile::GgufFile(GgufFile&& o) noexcept {
  *this = std::move(o);
}

GgufFile& GgufFile::operator=(GgufFile&& o) noexcept {
  if (this != &o) {
    Unmap();
    path_ = std::move(o.path_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    version_ = o.version_;
    alignment_ = o.alignment_;
    data_offset_ = o.data_offset_;
    kv_ = std::move(o.kv_);
    key_order_ = std::move(o.key_order_);
    tensors_ = std::move(o.tensors_);
    tensor_index_ = std::move(o.tensor_index_);
  }
  return *this;
}

GgufFile::~GgufFile() {
  Unmap();
}

void GgufFile::Unmap() {
  if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
  base_ = nullptr;
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::FindTensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

Status Missing(const std::string& path, const std::string& key) {
  return Error(path + ": missing metadata key '" + key + "'");
}

Status WrongType(const std::string& path, const std::string& key, const GgufValue& v,
                 const char* want) {
  std::string got = GgufValueTypeName(v.type);
  if (v.type == GgufValueType::kArray) got += std::string(" of ") + GgufValueTypeName(v.elem_type);
  return Error(path + ": metadata key '" + key + "' has type " + got + ", expected " + want);
}

}  // namespace

Result<std::string> GgufFile::GetString(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufValueType::kString) return WrongType(path_, key, *v, "string");
  return v->str;
}

Result<uint64_t> GgufFile::GetUint(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (!v->IsInteger()) return WrongType(path_, key, *v, "an integer");
  if (v->type != GgufValueType::kUint64 && v->i < 0) {
    return Error(path_ + ": metadata key '" + key + "' = " + std::to_string(v->i) +
                 " must not be negative");
  }
  return v->u;
}

Result<int64_t> GgufFile::GetInt(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (!v->IsInteger()) return WrongType(path_, key, *v, "an integer");
  if (v->type == GgufValueType::kUint64 &&
      v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Error(path_ + ": metadata key '" + key + "' = " + std::to_string(v->u) +
                 " is out of range");
  }
  return v->i;
}

Result<double> GgufFile::GetFloat(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->IsFloat()) return v->f;
  if (v->IsInteger()) {
    return v->type == GgufValueType::kUint64 ? static_cast<double>(v->u)
                                             : static_cast<double>(v->i);
  }
  return WrongType(path_, key, *v, "a number");
}

Result<bool> GgufFile::GetBool(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufValueType::kBool) return WrongType(path_, key, *v, "bool");
  return v->i != 0;
}

Result<std::vector<std::string>> GgufFile::GetStringArray(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufValueType::kArray || v->elem_type != GgufValueType::kString) {
    return WrongType(path_, key, *v, "array of string");
  }
  return v->strings;
}

Result<std::vector<int64_t>> GgufFile::GetIntArray(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufValueType::kArray ||
      !(IsIntegerType(v->elem_type) || v->elem_type == GgufValueType::kBool)) {
    return WrongType(path_, key, *v, "array of integers");
  }
  return v->ints;
}

Result<std::vector<double>> GgufFile::GetFloatArray(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufValueType::kArray || !IsFloatType(v->elem_type)) {
    return WrongType(path_, key, *v, "array of floats");
  }
  return v->floats;
}

}  // namespace c8
