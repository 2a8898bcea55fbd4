#include "c8/formats/c8_writer.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "c8/formats/safetensors_writer.h"

namespace c8 {
namespace fs = std::filesystem;

namespace {
const char* kScalesFile = "kv_cache_scales.safetensors";

Status WriteJson(const fs::path& path, const nlohmann::ordered_json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) return Error(path.string() + ": cannot write");
  return Status::Ok();
}
}  // namespace

Status WriteC8ModelDir(const std::string& src_dir, const std::string& out_dir,
                       const WeightStore& ws, const std::vector<C8LayerScales>& scales,
                       const std::map<std::string, std::string>& metadata) {
  std::error_code ec;
  const fs::path src = fs::absolute(src_dir), out = fs::path(out_dir);
  if (fs::exists(out) && !fs::is_empty(out, ec)) {
    return Error(out_dir + ": output directory exists and is not empty");
  }
  if (fs::equivalent(src, out, ec))
    return Error(out_dir + ": must differ from the source directory");
  fs::create_directories(out, ec);
  if (ec) return Error(out_dir + ": cannot create: " + ec.message());

  const std::set<std::string> regenerated = {"quant_model_description.json", kScalesFile,
                                             "model.safetensors.index.json",
                                             "quant_model_weights.safetensors.index.json"};
  for (const auto& e : fs::directory_iterator(src, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || regenerated.count(name)) continue;
    fs::create_symlink(fs::canonical(e.path()), out / name, ec);
    if (ec) return Error((out / name).string() + ": cannot link: " + ec.message());
  }

  // The C8 tensors: per layer the four per-channel fp32 tensors, or for MLA scales (q_scale
  // present) ModelSlim's FAKQuant layout: fa_q.scale (H, 1), fa_k.scale / fa_v.scale (1, 1)
  // fp32 and their int8 offsets (zeros: symmetric).
  const bool mla = !scales.empty() && !scales[0].q_scale.empty();
  std::vector<SafetensorsTensorSpec> specs;
  std::vector<std::vector<uint8_t>> data;
  auto add_f32 = [&](const std::string& name, const std::vector<float>& v,
                     std::vector<int64_t> shape) {
    specs.push_back({name, SafetensorsDtype::kF32, std::move(shape)});
    std::vector<uint8_t> bytes(v.size() * 4);
    std::memcpy(bytes.data(), v.data(), bytes.size());
    data.push_back(std::move(bytes));
  };
  auto add_i8 = [&](const std::string& name, const std::vector<float>& v,
                    std::vector<int64_t> shape) {
    specs.push_back({name, SafetensorsDtype::kI8, std::move(shape)});
    std::vector<uint8_t> bytes(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      bytes[i] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(v[i])));
    }
    data.push_back(std::move(bytes));
  };
  for (size_t l = 0; l < scales.size(); ++l) {
    const C8LayerScales& s = scales[l];
    if (mla) {
      const std::string base = "model.layers." + std::to_string(l) + ".self_attn.fa_";
      const int64_t H = static_cast<int64_t>(s.q_scale.size());
      if (s.k_scale.empty() || s.v_scale.empty()) {
        return Error("C8 writer: layer " + std::to_string(l) + " has no latent scale");
      }
      add_f32(base + "q.scale", s.q_scale, {H, 1});
      add_i8(base + "q.offset", std::vector<float>(static_cast<size_t>(H), 0.0f), {H, 1});
      add_f32(base + "k.scale", {s.k_scale[0]}, {1, 1});
      add_i8(base + "k.offset", {s.k_offset.empty() ? 0.0f : s.k_offset[0]}, {1, 1});
      add_f32(base + "v.scale", {s.v_scale[0]}, {1, 1});
      add_i8(base + "v.offset", {s.v_offset.empty() ? 0.0f : s.v_offset[0]}, {1, 1});
      continue;
    }
    const std::pair<std::string, const std::vector<float>*> parts[] = {
        {C8TensorName(l, 'k', "scale"), &s.k_scale},
        {C8TensorName(l, 'k', "offset"), &s.k_offset},
        {C8TensorName(l, 'v', "scale"), &s.v_scale},
        {C8TensorName(l, 'v', "offset"), &s.v_offset}};
    for (const auto& [name, vec] : parts) {
      add_f32(name, *vec, {static_cast<int64_t>(vec->size())});
    }
  }
  std::vector<SafetensorsTensorSpec> specs_copy = specs;
  C8_ASSIGN_OR_RETURN(
      SafetensorsWriter w,
      SafetensorsWriter::Create((out / kScalesFile).string(), std::move(specs_copy), metadata));
  for (size_t i = 0; i < specs.size(); ++i) {
    C8_RETURN_IF_ERROR(w.WriteTensor(specs[i].name, data[i].data(), data[i].size()));
  }
  C8_RETURN_IF_ERROR(w.Finish());

  // Index and description.
  std::set<std::string> c8_names;
  for (const auto& s : specs) c8_names.insert(s.name);
  nlohmann::ordered_json index;
  int64_t total = 0;
  nlohmann::ordered_json map = nlohmann::ordered_json::object();
  // A quantized source (ModelSlim W8A8 / W8A8_DYNAMIC) keeps its weight types: the result
  // is its W8A8C8 form.
  nlohmann::ordered_json src_desc = nlohmann::ordered_json::object();
  if (const fs::path p = src / "quant_model_description.json"; fs::exists(p)) {
    std::ifstream in(p);
    src_desc = nlohmann::ordered_json::parse(in, nullptr, false);
    if (src_desc.is_discarded() || !src_desc.is_object()) {
      return Error(p.string() + ": malformed JSON");
    }
  }
  auto src_type = [&](const std::string& name) -> std::string {
    auto it = src_desc.find(name);
    return it != src_desc.end() && it->is_string() ? it->get<std::string>() : "FLOAT";
  };
  nlohmann::ordered_json desc;
  desc["model_quant_type"] = src_type("model_quant_type");
  desc["version"] = "1.0.0";
  if (mla) {
    desc["fa_quant_type"] = "FAKQuant";
  } else {
    desc["kv_cache_type"] = "C8";
  }
  desc["group_size"] = 0;
  nlohmann::ordered_json md = nlohmann::ordered_json::object();
  for (const auto& [k, v] : metadata) md[k] = v;
  desc["metadata"] = md;
  desc["optional"] = nlohmann::ordered_json::object();
  for (const auto& [name, tv] : ws.tensors()) {
    if (c8_names.count(name)) continue;  // replaced by the new scales
    map[name] = fs::path(tv.file).filename().string();
    desc[name] = src_type(name);
    total += static_cast<int64_t>(tv.nbytes);
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    map[specs[i].name] = kScalesFile;
    desc[specs[i].name] = mla ? "FAQuant" : "C8";
    total += static_cast<int64_t>(data[i].size());
  }
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = map;
  C8_RETURN_IF_ERROR(WriteJson(out / "model.safetensors.index.json", index));
  C8_RETURN_IF_ERROR(WriteJson(out / "quant_model_description.json", desc));
  return Status::Ok();
}

}  // namespace c8
