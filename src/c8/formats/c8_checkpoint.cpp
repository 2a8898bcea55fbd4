#include "c8/formats/c8_checkpoint.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

namespace c8 {
using nlohmann::json;

int64_t C8Checkpoint::num_c8_layers() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.has_value();
  return n;
}

std::string C8TensorName(int64_t layer, char kv, const char* what) {
  return "model.layers." + std::to_string(layer) + ".self_attn." + std::string(1, kv) +
         "_proj.kv_cache_" + what;
}

namespace {

Result<std::vector<float>> ReadChannelTensor(const WeightStore& ws, const std::string& name,
                                             int64_t channels, bool is_scale) {
  C8_ASSIGN_OR_RETURN(const TensorView* t, ws.Get(name));
  int64_t numel = t->numel();
  if (numel != channels && numel != 1) {
    return Error(t->file + ": tensor '" + name + "' has shape " + t->ShapeString() + " (" +
                 std::to_string(numel) + " values); expected " + std::to_string(channels) +
                 " (num_key_value_heads * head_dim) or 1 (per-tensor)");
  }
  std::vector<float> v;
  C8_RETURN_IF_ERROR(TensorToF32(*t, v));
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return Error(t->file + ": tensor '" + name + "' value " + std::to_string(i) +
                   " is not finite");
    }
    if (is_scale && !(v[i] > 0)) {
      return Error(t->file + ": tensor '" + name + "' value " + std::to_string(i) + " is " +
                   std::to_string(v[i]) + "; scales must be > 0");
    }
  }
  if (numel == 1) v.assign(static_cast<size_t>(channels), v[0]);
  return v;
}

// MLA (DeepSeek, ModelSlim FAKQuant): a layer is C8 when its `self_attn.fa_k.scale` is listed;
// one scale (and offset) for the whole latent, broadcast to its kv_lora_rank channels. The
// roped key part is not quantized (its "v" parameters stay empty).
Result<C8Checkpoint> LoadMlaScales(const std::string& path, const json& j, const ModelConfig& c,
                                   const WeightStore& ws) {
  C8Checkpoint out;
  out.layers.resize(c.num_layers);
  static const std::regex fa_key(R"(model\.layers\.(\d+)\.self_attn\.fa_k\.scale)");
  std::vector<bool> listed(c.num_layers, false);
  for (auto& [key, value] : j.items()) {
    std::smatch m;
    if (!std::regex_match(key, m, fa_key)) continue;
    const int64_t layer = std::stoll(m[1].str());
    if (layer < 0 || layer >= c.num_layers) continue;  // e.g. the MTP layer: not served
    listed[layer] = true;
    out.present = true;
  }
  if (!out.present) {
    if (j.contains("fa_quant_type") && j["fa_quant_type"].is_string() &&
        j["fa_quant_type"].get<std::string>() != "FLOAT") {
      return Error(path + ": fa_quant_type '" + j["fa_quant_type"].get<std::string>() +
                   "' but no layer lists model.layers.N.self_attn.fa_k.scale");
    }
    return out;
  }
  const int64_t channels = c.mla.kv_lora_rank;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    if (!listed[l]) continue;
    const std::string base = "model.layers." + std::to_string(l) + ".self_attn.fa_k.";
    C8LayerScales s;
    C8_ASSIGN_OR_RETURN(s.k_scale, ReadChannelTensor(ws, base + "scale", channels, true));
    if (ws.Has(base + "offset")) {
      C8_ASSIGN_OR_RETURN(s.k_offset, ReadChannelTensor(ws, base + "offset", channels, false));
    } else {
      s.k_offset.assign(static_cast<size_t>(channels), 0.0f);
    }
    out.layers[l] = std::move(s);
  }
  return out;
}

}  // namespace

Result<C8Checkpoint> LoadC8Checkpoint(const std::string& dir, const ModelConfig& c,
                                      const WeightStore& ws) {
  C8Checkpoint out;
  out.layers.resize(c.num_layers);
  const std::string path = (std::filesystem::path(dir) / "quant_model_description.json").string();
  if (!std::filesystem::exists(path)) return out;
  std::ifstream in(path);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error(path + ": malformed JSON");
  std::string kv_type;
  for (const char* key : {"kv_cache_type", "kv_quant_type"}) {
    if (j.contains(key) && j[key].is_string()) {
      kv_type = j[key].get<std::string>();
      break;
    }
  }
  if (c.is_mla()) return LoadMlaScales(path, j, c, ws);
  // Per-layer entries.
  static const std::regex layer_key(R"(model\.layers\.(\d+)\.self_attn\.k_proj\.kv_cache_scale)");
  std::vector<bool> listed(c.num_layers, false);
  bool any_listed = false;
  for (auto& [key, value] : j.items()) {
    std::smatch m;
    if (std::regex_match(key, m, layer_key)) {
      int64_t layer = std::stoll(m[1].str());
      if (layer < 0 || layer >= c.num_layers) {
        return Error(path + ": key '" + key + "' names layer " + std::to_string(layer) +
                     " but the model has " + std::to_string(c.num_layers) + " layers");
      }
      listed[layer] = true;
      any_listed = true;
    }
  }
  if (!any_listed && kv_type != "C8") {
    if (!kv_type.empty() && kv_type != "FLOAT" && kv_type != "None") {
      return Error(path + ": kv_cache_type '" + kv_type + "' is not supported (C8 or none)");
    }
    return out;
  }
  out.present = true;
  const int64_t channels = c.num_kv_heads * c.head_dim;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    if (any_listed && !listed[l]) continue;
    C8LayerScales s;
    C8_ASSIGN_OR_RETURN(s.k_scale,
                        ReadChannelTensor(ws, C8TensorName(l, 'k', "scale"), channels, true));
    C8_ASSIGN_OR_RETURN(s.k_offset,
                        ReadChannelTensor(ws, C8TensorName(l, 'k', "offset"), channels, false));
    C8_ASSIGN_OR_RETURN(s.v_scale,
                        ReadChannelTensor(ws, C8TensorName(l, 'v', "scale"), channels, true));
    C8_ASSIGN_OR_RETURN(s.v_offset,
                        ReadChannelTensor(ws, C8TensorName(l, 'v', "offset"), channels, false));
    out.layers[l] = std::move(s);
  }
  return out;
}

}  // namespace c8
