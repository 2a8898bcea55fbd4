#include "c8/engine/generation_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace c8 {
using nlohmann::json;

namespace {

Result<json> ReadOptionalJson(const std::string& path) {
  if (!std::filesystem::exists(path)) return json();
  std::ifstream in(path);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error(path + ": malformed JSON");
  return j;
}

std::string TokenString(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return "";
}

}  // namespace

Result<GenerationDefaults> LoadGenerationDefaults(const std::string& dir,
                                                  const std::vector<int64_t>& config_eos) {
  namespace fs = std::filesystem;
  GenerationDefaults d;
  const std::string gpath = (fs::path(dir) / "generation_config.json").string();
  C8_ASSIGN_OR_RETURN(json g, ReadOptionalJson(gpath));
  if (g.is_object()) {
    if (g.contains("eos_token_id")) {
      const json& e = g["eos_token_id"];
      if (e.is_number_integer()) d.eos_token_ids.push_back(e.get<int32_t>());
      if (e.is_array()) {
        for (auto& x : e) {
          if (!x.is_number_integer()) return Error(gpath + ": 'eos_token_id' must hold integers");
          d.eos_token_ids.push_back(x.get<int32_t>());
        }
      }
    }
    auto num = [&](const char* key, std::optional<double>& out) -> Status {
      if (!g.contains(key) || g[key].is_null()) return Status::Ok();
      if (!g[key].is_number()) return Error(gpath + ": '" + key + "' must be a number");
      out = g[key].get<double>();
      return Status::Ok();
    };
    // Sampling defaults count only when the model samples by default.
    if (g.value("do_sample", false)) {
      C8_RETURN_IF_ERROR(num("temperature", d.temperature));
      C8_RETURN_IF_ERROR(num("top_p", d.top_p));
      C8_RETURN_IF_ERROR(num("min_p", d.min_p));
      if (g.contains("top_k") && g["top_k"].is_number_integer())
        d.top_k = g["top_k"].get<int32_t>();
    }
    C8_RETURN_IF_ERROR(num("repetition_penalty", d.repetition_penalty));
  }
  if (d.eos_token_ids.empty()) {
    for (int64_t e : config_eos) d.eos_token_ids.push_back(static_cast<int32_t>(e));
  }
  const std::string tpath = (fs::path(dir) / "tokenizer_config.json").string();
  C8_ASSIGN_OR_RETURN(json t, ReadOptionalJson(tpath));
  if (t.is_object()) {
    d.add_bos_token = t.value("add_bos_token", false);
    if (t.contains("bos_token")) d.bos_token = TokenString(t["bos_token"]);
  }
  return d;
}

void GenerationDefaults::ApplyTo(SamplingParams& p, const std::vector<std::string>& set) const {
  auto is_set = [&](const char* f) { return std::find(set.begin(), set.end(), f) != set.end(); };
  if (temperature && !is_set("temperature")) p.temperature = *temperature;
  if (top_p && !is_set("top_p")) p.top_p = *top_p;
  if (top_k && !is_set("top_k")) p.top_k = *top_k;
  if (min_p && !is_set("min_p")) p.min_p = *min_p;
  if (repetition_penalty && !is_set("repetition_penalty"))
    p.repetition_penalty = *repetition_penalty;
}

}  // namespace c8
