#include "c8/formats/model_config.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace c8 {
using nlohmann::json;

namespace {

// Typed access to config keys with messages that name the file and key.
struct Reader {
  const json& j;
  const std::string& src;

  Result<int64_t> Int(const char* key, int64_t min_value) const {
    if (!j.contains(key) || j[key].is_null()) return Error(src + ": missing key '" + key + "'");
    const json& v = j[key];
    if (!v.is_number_integer())
      return Error(src + ": key '" + std::string(key) + "' must be an integer");
    int64_t x = v.get<int64_t>();
    if (x < min_value) {
      return Error(src + ": key '" + std::string(key) +
                   "' must be >= " + std::to_string(min_value) + ", got " + std::to_string(x));
    }
    return x;
  }
  Result<int64_t> IntOr(const char* key, int64_t def, int64_t min_value) const {
    if (!j.contains(key) || j[key].is_null()) return def;
    return Int(key, min_value);
  }
  Result<double> NumOr(const char* key, double def) const {
    if (!j.contains(key) || j[key].is_null()) return def;
    if (!j[key].is_number())
      return Error(src + ": key '" + std::string(key) + "' must be a number");
    return j[key].get<double>();
  }
  Result<bool> BoolOr(const char* key, bool def) const {
    if (!j.contains(key) || j[key].is_null()) return def;
    if (!j[key].is_boolean())
      return Error(src + ": key '" + std::string(key) + "' must be true or false");
    return j[key].get<bool>();
  }
};

Result<RopeScaling> ParseRopeScaling(const json& rs, const std::string& src) {
  RopeScaling out;
  if (rs.is_null()) return out;
  if (!rs.is_object()) return Error(src + ": key 'rope_scaling' must be an object or null");
  std::string type;
  if (rs.contains("rope_type") && rs["rope_type"].is_string()) {
    type = rs["rope_type"].get<std::string>();
  } else if (rs.contains("type") && rs["type"].is_string()) {
    type = rs["type"].get<std::string>();
  } else {
    return Error(src + ": key 'rope_scaling' has no 'rope_type'");
  }
  std::string where = src + ": rope_scaling";
  Reader r{rs, where};
  if (type == "default") return out;
  C8_ASSIGN_OR_RETURN(out.factor, r.NumOr("factor", 1.0));
  if (!(out.factor >= 1.0 || (type == "linear" && out.factor > 0))) {
    return Error(where + ": 'factor' must be >= 1, got " + std::to_string(out.factor));
  }
  if (type == "linear") {
    out.type = RopeScaling::Type::kLinear;
  } else if (type == "llama3") {
    out.type = RopeScaling::Type::kLlama3;
    C8_ASSIGN_OR_RETURN(out.low_freq_factor, r.NumOr("low_freq_factor", 1.0));
    C8_ASSIGN_OR_RETURN(out.high_freq_factor, r.NumOr("high_freq_factor", 4.0));
    C8_ASSIGN_OR_RETURN(out.original_max_position_embeddings,
                        r.Int("original_max_position_embeddings", 1));
    if (!(out.high_freq_factor > out.low_freq_factor)) {
      return Error(where + ": 'high_freq_factor' must exceed 'low_freq_factor'");
    }
  } else if (type == "yarn") {
    out.type = RopeScaling::Type::kYarn;
    C8_ASSIGN_OR_RETURN(out.beta_fast, r.NumOr("beta_fast", 32.0));
    C8_ASSIGN_OR_RETURN(out.beta_slow, r.NumOr("beta_slow", 1.0));
    C8_ASSIGN_OR_RETURN(out.attention_factor, r.NumOr("attention_factor", 0.0));
    C8_ASSIGN_OR_RETURN(out.mscale, r.NumOr("mscale", 0.0));
    C8_ASSIGN_OR_RETURN(out.mscale_all_dim, r.NumOr("mscale_all_dim", 0.0));
    C8_ASSIGN_OR_RETURN(out.original_max_position_embeddings,
                        r.IntOr("original_max_position_embeddings", 0, 0));
    C8_ASSIGN_OR_RETURN(out.truncate, r.BoolOr("truncate", true));
  } else {
    return Error(src + ": rope_scaling type '" + type +
                 "' is not supported (supported: default, linear, llama3, yarn)");
  }
  return out;
}

// DeepSeek V2 / V3: MLA dimensions and MoE routing (HF DeepseekV2Config / DeepseekV3Config).
Status ParseDeepseek(const json& j, Reader& r, const std::string& src, ModelConfig& c) {
  const bool v3 = c.arch == Architecture::kDeepseekV3;
  MlaConfig& m = c.mla;
  if (j.contains("q_lora_rank") && !j["q_lora_rank"].is_null()) {
    C8_ASSIGN_OR_RETURN(m.q_lora_rank, r.Int("q_lora_rank", 1));
  }
  C8_ASSIGN_OR_RETURN(m.kv_lora_rank, r.Int("kv_lora_rank", 1));
  C8_ASSIGN_OR_RETURN(m.qk_nope_head_dim, r.Int("qk_nope_head_dim", 1));
  C8_ASSIGN_OR_RETURN(m.qk_rope_head_dim, r.Int("qk_rope_head_dim", 2));
  C8_ASSIGN_OR_RETURN(m.v_head_dim, r.Int("v_head_dim", 1));
  if (m.qk_rope_head_dim % 2 != 0) return Error(src + ": 'qk_rope_head_dim' must be even");
  C8_ASSIGN_OR_RETURN(m.rope_interleave, r.BoolOr("rope_interleave", true));
  if (!v3) m.rope_interleave = true;  // V2 always rotates (x0, x1) pairs
  // The cache geometry: one latent head.
  c.num_kv_heads = 1;
  c.head_dim = m.kv_lora_rank;
  MoeConfig& e = c.moe;
  C8_ASSIGN_OR_RETURN(e.num_experts, r.IntOr("n_routed_experts", 0, 0));
  if (e.num_experts > 0) {
    C8_ASSIGN_OR_RETURN(e.top_k, r.Int("num_experts_per_tok", 1));
    C8_ASSIGN_OR_RETURN(e.num_shared_experts, r.IntOr("n_shared_experts", 0, 0));
    C8_ASSIGN_OR_RETURN(e.intermediate_size, r.Int("moe_intermediate_size", 1));
    C8_ASSIGN_OR_RETURN(e.first_k_dense, r.IntOr("first_k_dense_replace", 0, 0));
    C8_ASSIGN_OR_RETURN(e.layer_freq, r.IntOr("moe_layer_freq", 1, 1));
    C8_ASSIGN_OR_RETURN(e.n_group, r.IntOr("n_group", 1, 1));
    C8_ASSIGN_OR_RETURN(e.topk_group, r.IntOr("topk_group", 1, 1));
    C8_ASSIGN_OR_RETURN(e.norm_topk_prob, r.BoolOr("norm_topk_prob", false));
    C8_ASSIGN_OR_RETURN(e.routed_scaling_factor, r.NumOr("routed_scaling_factor", 1.0));
    std::string scoring = v3 ? "sigmoid" : "softmax";
    if (j.contains("scoring_func") && j["scoring_func"].is_string()) {
      scoring = j["scoring_func"].get<std::string>();
    }
    if (scoring == "softmax") {
      e.scoring = MoeConfig::Scoring::kSoftmax;
    } else if (scoring == "sigmoid") {
      e.scoring = MoeConfig::Scoring::kSigmoid;
    } else {
      return Error(src + ": 'scoring_func' '" + scoring + "' is not supported (softmax, sigmoid)");
    }
    std::string method = v3 ? "noaux_tc" : "greedy";
    if (j.contains("topk_method") && j["topk_method"].is_string()) {
      method = j["topk_method"].get<std::string>();
    }
    if (method == "greedy") {
      e.topk_method = MoeConfig::TopK::kGreedy;
    } else if (method == "group_limited_greedy") {
      e.topk_method = MoeConfig::TopK::kGroupLimited;
    } else if (method == "noaux_tc") {
      e.topk_method = MoeConfig::TopK::kNoAuxTc;
    } else {
      return Error(src + ": 'topk_method' '" + method +
                   "' is not supported (greedy, group_limited_greedy, noaux_tc)");
    }
    if (e.top_k > e.num_experts) {
      return Error(src + ": 'num_experts_per_tok' exceeds 'n_routed_experts'");
    }
    if (e.num_experts % e.n_group != 0 || e.topk_group > e.n_group) {
      return Error(src + ": 'n_group' must divide 'n_routed_experts' and be >= 'topk_group'");
    }
    if (e.topk_method != MoeConfig::TopK::kGreedy &&
        e.top_k > e.topk_group * (e.num_experts / e.n_group)) {
      return Error(src + ": 'num_experts_per_tok' exceeds the experts of 'topk_group' groups");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ModelConfig> ParseModelConfig(const std::string& text, const std::string& src) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(src + ": malformed JSON");
  if (!j.is_object()) return Error(src + ": top level must be a JSON object");
  ModelConfig c;
  if (!j.contains("architectures") || !j["architectures"].is_array() ||
      j["architectures"].empty() || !j["architectures"][0].is_string()) {
    return Error(src + ": missing key 'architectures' (a list of class names)");
  }
  c.architecture_name = j["architectures"][0].get<std::string>();
  if (c.architecture_name == "LlamaForCausalLM" || c.architecture_name == "MistralForCausalLM") {
    c.arch = Architecture::kLlama;
  } else if (c.architecture_name == "Qwen2ForCausalLM") {
    c.arch = Architecture::kQwen2;
  } else if (c.architecture_name == "Qwen3ForCausalLM") {
    c.arch = Architecture::kQwen3;
  } else if (c.architecture_name == "DeepseekV2ForCausalLM") {
    c.arch = Architecture::kDeepseekV2;
  } else if (c.architecture_name == "DeepseekV3ForCausalLM") {
    c.arch = Architecture::kDeepseekV3;
  } else {
    return Error(src + ": architecture '" + c.architecture_name +
                 "' is not supported (supported: LlamaForCausalLM, Qwen2ForCausalLM, "
                 "Qwen3ForCausalLM, DeepseekV2ForCausalLM, DeepseekV3ForCausalLM)");
  }
  Reader r{j, src};
  C8_ASSIGN_OR_RETURN(c.hidden_size, r.Int("hidden_size", 1));
  C8_ASSIGN_OR_RETURN(c.intermediate_size, r.Int("intermediate_size", 1));
  C8_ASSIGN_OR_RETURN(c.num_layers, r.Int("num_hidden_layers", 1));
  C8_ASSIGN_OR_RETURN(c.num_heads, r.Int("num_attention_heads", 1));
  C8_ASSIGN_OR_RETURN(c.num_kv_heads, r.IntOr("num_key_value_heads", c.num_heads, 1));
  C8_ASSIGN_OR_RETURN(c.vocab_size, r.Int("vocab_size", 1));
  if (c.num_heads % c.num_kv_heads != 0) {
    return Error(src + ": 'num_attention_heads' (" + std::to_string(c.num_heads) +
                 ") must be a multiple of 'num_key_value_heads' (" +
                 std::to_string(c.num_kv_heads) + ")");
  }
  int64_t default_head_dim = c.hidden_size / c.num_heads;
  C8_ASSIGN_OR_RETURN(c.head_dim, r.IntOr("head_dim", default_head_dim, 1));
  if (c.head_dim % 2 != 0) return Error(src + ": 'head_dim' must be even for RoPE");
  C8_ASSIGN_OR_RETURN(c.max_position_embeddings, r.IntOr("max_position_embeddings", 4096, 1));
  C8_ASSIGN_OR_RETURN(c.rms_norm_eps, r.NumOr("rms_norm_eps", 1e-6));
  C8_ASSIGN_OR_RETURN(c.rope_theta, r.NumOr("rope_theta", 10000.0));
  if (!(c.rope_theta > 0)) return Error(src + ": 'rope_theta' must be > 0");
  if (!(c.rms_norm_eps > 0)) return Error(src + ": 'rms_norm_eps' must be > 0");
  C8_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.BoolOr("tie_word_embeddings", false));
  bool default_bias = c.arch == Architecture::kQwen2;
  C8_ASSIGN_OR_RETURN(c.attention_bias, r.BoolOr("attention_bias", default_bias));
  if (c.arch == Architecture::kQwen2) c.attention_bias = true;
  c.qk_norm = c.arch == Architecture::kQwen3;
  if (j.contains("hidden_act") && j["hidden_act"].is_string()) {
    std::string act = j["hidden_act"].get<std::string>();
    if (act != "silu" && act != "swish") {
      return Error(src + ": 'hidden_act' '" + act + "' is not supported (only silu)");
    }
  }
  if (j.contains("mlp_bias") && j["mlp_bias"].is_boolean() && j["mlp_bias"].get<bool>()) {
    return Error(src + ": 'mlp_bias' true is not supported");
  }
  if (j.contains("rope_scaling")) {
    C8_ASSIGN_OR_RETURN(c.rope_scaling, ParseRopeScaling(j["rope_scaling"], src));
  }
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    // transformers >= 5 spelling: rope_theta and scaling live together.
    const json& rp = j["rope_parameters"];
    if (rp.contains("rope_theta") && rp["rope_theta"].is_number()) {
      c.rope_theta = rp["rope_theta"].get<double>();
    }
    C8_ASSIGN_OR_RETURN(c.rope_scaling, ParseRopeScaling(rp, src));
  }
  if (c.arch == Architecture::kDeepseekV2 || c.arch == Architecture::kDeepseekV3) {
    C8_RETURN_IF_ERROR(ParseDeepseek(j, r, src, c));
  }
  if (j.contains("eos_token_id")) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int64_t>());
    if (e.is_array()) {
      for (auto& x : e) {
        if (x.is_number_integer()) c.eos_token_ids.push_back(x.get<int64_t>());
      }
    }
  }
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) {
    c.bos_token_id = j["bos_token_id"].get<int64_t>();
  }
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) {
    c.torch_dtype = j["torch_dtype"].get<std::string>();
  } else if (j.contains("dtype") && j["dtype"].is_string()) {
    c.torch_dtype = j["dtype"].get<std::string>();
  }
  if (j.contains("sliding_window") && j["sliding_window"].is_number_integer() &&
      j.value("use_sliding_window", false)) {
    return Error(src + ": 'use_sliding_window' true is not supported");
  }
  return c;
}

Result<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  std::ifstream in(path);
  if (!in) return Error(path + ": cannot open (is '" + model_dir + "' a model directory?)");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseModelConfig(ss.str(), path);
}

}  // namespace c8
