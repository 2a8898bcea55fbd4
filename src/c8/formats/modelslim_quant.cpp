#include "c8/formats/modelslim_quant.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace c8 {

Result<LinearQuant> ModelSlimQuant::LinearType(const std::string& prefix) const {
  auto it = types.find(prefix + ".weight");
  if (it == types.end() || it->second == "FLOAT") return LinearQuant::kNone;
  if (it->second == "W8A8") return LinearQuant::kW8A8Static;
  if (it->second == "W8A8_DYNAMIC") return LinearQuant::kW8A8Dynamic;
  return Error(path + ": " + prefix + ".weight has quant type '" + it->second +
               "', which c8 does not serve (FLOAT, W8A8, W8A8_DYNAMIC)");
}

Result<ModelSlimQuant> LoadModelSlimQuant(const std::string& dir) {
  ModelSlimQuant q;
  q.path = (std::filesystem::path(dir) / "quant_model_description.json").string();
  if (!std::filesystem::exists(q.path)) return q;
  std::ifstream in(q.path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error(q.path + ": malformed JSON");
  q.present = true;
  for (auto& [key, value] : j.items()) {
    if (!value.is_string()) continue;  // "version" and other metadata may be numbers
    const std::string v = value.get<std::string>();
    if (key == "model_quant_type") {
      q.model_quant_type = v;
    } else {
      q.types[key] = v;
    }
  }
  if (!q.model_quant_type.empty() && q.model_quant_type != "W8A8" &&
      q.model_quant_type != "W8A8_DYNAMIC" && q.model_quant_type != "FLOAT") {
    return Error(q.path + ": model_quant_type '" + q.model_quant_type +
                 "' is not served by c8 (W8A8, W8A8_DYNAMIC)");
  }
  return q;
}

}  // namespace c8
