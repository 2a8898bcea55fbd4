#include "c8/formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "c8/util/bf16.h"

namespace c8 {
namespace fs = std::filesystem;
using nlohmann::json;

std::string ShapeToString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string TensorView::ShapeString() const {
  return ShapeToString(shape);
}

Result<std::shared_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  C8_ASSIGN_OR_RETURN(auto mf, MappedFile::Open(path));
  if (mf->size() < 8)
    return Error(path + ": too small for a safetensors file (" + std::to_string(mf->size()) +
                 " bytes)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, mf->data(), 8);
  if (header_len > mf->size() - 8 || header_len > (100u << 20)) {
    return Error(path + ": header length " + std::to_string(header_len) +
                 " exceeds the file size " + std::to_string(mf->size()));
  }
  const char* hp = reinterpret_cast<const char*>(mf->data() + 8);
  json header = json::parse(hp, hp + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return Error(path + ": header is not a JSON object");
  }
  auto f = std::make_shared<SafetensorsFile>();
  f->file_ = mf;
  const uint8_t* base = mf->data() + 8 + header_len;
  uint64_t data_size = mf->size() - 8 - header_len;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (info.is_object()) {
        for (auto& [k, v] : info.items()) {
          if (v.is_string()) f->metadata_[k] = v.get<std::string>();
        }
      }
      continue;
    }
    std::string where = path + ": tensor '" + name + "'";
    if (!info.is_object()) return Error(where + ": entry is not an object");
    if (!info.contains("dtype") || !info["dtype"].is_string())
      return Error(where + ": missing field 'dtype'");
    auto dt = ParseDTypeName(info["dtype"].get<std::string>());
    if (!dt) return Error(where + ": unsupported dtype '" + info["dtype"].get<std::string>() + "'");
    if (!info.contains("shape") || !info["shape"].is_array())
      return Error(where + ": missing field 'shape'");
    TensorView tv;
    tv.name = name;
    tv.dtype = *dt;
    tv.file = path;
    uint64_t numel = 1;
    for (auto& d : info["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) return Error(where + ": bad 'shape'");
      tv.shape.push_back(d.get<int64_t>());
      numel *= static_cast<uint64_t>(d.get<int64_t>());
    }
    auto& offs = info["data_offsets"];
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() ||
        !offs[1].is_number_unsigned()) {
      return Error(where + ": missing or bad field 'data_offsets'");
    }
    uint64_t b = offs[0].get<uint64_t>(), e = offs[1].get<uint64_t>();
    if (b > e || e > data_size) {
      return Error(where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                   "] lie outside the data section (" + std::to_string(data_size) +
                   " bytes; file truncated?)");
    }
    if (e - b != numel * DTypeSize(tv.dtype)) {
      return Error(where + ": data_offsets span " + std::to_string(e - b) + " bytes but shape " +
                   tv.ShapeString() + " of " + std::string(DTypeName(tv.dtype)) + " needs " +
                   std::to_string(numel * DTypeSize(tv.dtype)));
    }
    tv.data = base + b;
    tv.nbytes = e - b;
    if (e > b) ranges.emplace_back(b, e);
    f->tensors_.emplace(name, std::move(tv));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      return Error(path + ": tensors overlap in the data section (offset " +
                   std::to_string(ranges[i].first) + ")");
    }
  }
  return f;
}

Result<WeightStore> WeightStore::Open(const std::string& model_dir) {
  WeightStore ws;
  ws.dir_ = model_dir;
  std::vector<std::string> files;
  fs::path dir(model_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Error(model_dir + ": not a directory");
  for (const char* index_name :
       {"model.safetensors.index.json", "quant_model_weights.safetensors.index.json"}) {
    fs::path index = dir / index_name;
    if (!fs::exists(index)) continue;
    std::ifstream in(index);
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Error(index.string() + ": malformed JSON");
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
      return Error(index.string() + ": missing object 'weight_map'");
    }
    std::set<std::string> shard_set;
    for (auto& [name, shard] : j["weight_map"].items()) {
      if (!shard.is_string())
        return Error(index.string() + ": weight_map['" + name + "'] is not a string");
      shard_set.insert(shard.get<std::string>());
    }
    for (auto& s : shard_set) files.push_back((dir / s).string());
    break;
  }
  if (files.empty()) {
    for (const char* single : {"model.safetensors", "quant_model_weights.safetensors"}) {
      if (fs::exists(dir / single)) {
        files.push_back((dir / single).string());
        break;
      }
    }
  }
  if (files.empty()) {
    for (auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
  }
  if (files.empty()) return Error(model_dir + ": no *.safetensors weights found");
  for (auto& path : files) {
    C8_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(path));
    for (auto& [name, tv] : f->tensors()) {
      if (!ws.tensors_.emplace(name, tv).second) {
        return Error(path + ": tensor '" + name + "' appears in more than one shard");
      }
    }
    ws.files_.push_back(std::move(f));
  }
  return ws;
}

Result<const TensorView*> WeightStore::Get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return Error(dir_ + ": missing tensor '" + name + "'");
  return &it->second;
}

Result<const TensorView*> WeightStore::Get(const std::string& name,
                                           const std::vector<int64_t>& shape) const {
  C8_ASSIGN_OR_RETURN(const TensorView* t, Get(name));
  if (t->shape != shape) {
    return Error(t->file + ": tensor '" + name + "' has shape " + t->ShapeString() + ", expected " +
                 ShapeToString(shape));
  }
  return t;
}

Status TensorToF32(const TensorView& t, std::vector<float>& out) {
  size_t n = static_cast<size_t>(t.numel());
  size_t at = out.size();
  out.resize(at + n);
  float* o = out.data() + at;
  switch (t.dtype) {
    case DType::kF32:
      std::memcpy(o, t.data, n * 4);
      break;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        o[i] = Bf16ToF32(h);
      }
      break;
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        o[i] = F16ToF32(h);
      }
      break;
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, t.data + 8 * i, 8);
        o[i] = static_cast<float>(d);
      }
      break;
    case DType::kI8:  // integer offsets (ModelSlim writes fa_k.offset as int8)
      for (size_t i = 0; i < n; ++i) o[i] = static_cast<float>(static_cast<int8_t>(t.data[i]));
      break;
    default:
      out.resize(at);
      return Error(t.file + ": tensor '" + t.name + "' has dtype " +
                   std::string(DTypeName(t.dtype)) + ", expected a float type (F32, F16, BF16)");
  }
  return Status::Ok();
}

}  // namespace c8
