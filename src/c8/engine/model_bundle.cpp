#include "c8/engine/model_bundle.h"

#include <algorithm>
#include <filesystem>

namespace c8 {
namespace fs = std::filesystem;

Result<std::unique_ptr<ModelBundle>> ModelBundle::Load(const EngineOptions& o) {
  auto b = std::make_unique<ModelBundle>();
  C8_ASSIGN_OR_RETURN(b->backend, CreateBackend(o.backend));
  C8_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(o.model_dir));
  ModelLoadOptions mo;
  mo.max_model_len = o.max_model_len > 0 ? o.max_model_len
                                         : std::min<int64_t>(config.max_position_embeddings, 32768);
  if (mo.max_model_len > config.max_position_embeddings &&
      config.rope_scaling.type == RopeScaling::Type::kNone) {
    return Error("--max-model-len " + std::to_string(mo.max_model_len) +
                 " exceeds max_position_embeddings " +
                 std::to_string(config.max_position_embeddings) + " of " + o.model_dir +
                 "/config.json");
  }
  mo.progress = o.progress;
  C8_ASSIGN_OR_RETURN(b->model, DecoderModel::Load(o.model_dir, *b->backend, mo));

  const std::string tok_path = (fs::path(o.model_dir) / "tokenizer.json").string();
  C8_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::FromFile(tok_path));
  b->tokenizer.emplace(std::move(tok));
  const std::string tc_path = (fs::path(o.model_dir) / "tokenizer_config.json").string();
  auto tmpl = ChatTemplate::FromTokenizerConfig(tc_path);
  if (tmpl.ok()) {
    b->chat_template.emplace(std::move(tmpl).value());
  } else {
    b->chat_template_error = tmpl.message();
  }
  C8_ASSIGN_OR_RETURN(b->defaults, LoadGenerationDefaults(o.model_dir, config.eos_token_ids));

  // KV cache: 16-bit by default; int8 needs C8 scales (quant_model_description.json).
  KvDType dtype = KvDType::kBF16;
  if (o.kv_cache_dtype != "auto") {
    auto d = ParseKvDType(o.kv_cache_dtype);
    if (!d) {
      return Error("--kv-cache-dtype: unknown value '" + o.kv_cache_dtype +
                   "' (auto, bf16, fp32, int8)");
    }
    dtype = *d;
  }
  if (dtype == KvDType::kInt8) {
    return Error("--kv-cache-dtype int8: " + o.model_dir +
                 " has no C8 scales (quant_model_description.json with kv_cache_type C8)");
  }
  const ModelConfig& c = b->model->config();
  KvCacheSpec spec;
  spec.num_layers = c.num_layers;
  spec.num_kv_heads = c.num_kv_heads;
  spec.head_dim = c.head_dim;
  spec.block_size = o.block_size;
  const int64_t bytes_per_block =
      2 * c.num_layers * spec.ElementsPerBlock() * static_cast<int64_t>(KvDTypeSize(dtype));
  int64_t want_blocks = (b->model->max_model_len() + spec.block_size - 1) / spec.block_size + 1;
  if (o.kv_cache_gib > 0) {
    want_blocks = static_cast<int64_t>(o.kv_cache_gib * (1ull << 30)) / bytes_per_block;
  }
  spec.num_blocks = want_blocks;
  std::vector<KvLayerConfig> layers(c.num_layers);
  for (auto& l : layers) l.dtype = dtype;
  C8_ASSIGN_OR_RETURN(b->kv_cache, KvCache::Create(*b->backend, spec, layers));
  return b;
}

std::vector<int32_t> ModelBundle::EncodePrompt(const std::string& text) const {
  std::vector<int32_t> ids;
  if (defaults.add_bos_token && !defaults.bos_token.empty() &&
      text.rfind(defaults.bos_token, 0) != 0) {
    int32_t bos = tokenizer->TokenToId(defaults.bos_token);
    if (bos >= 0) ids.push_back(bos);
  }
  std::vector<int32_t> rest = tokenizer->Encode(text, /*parse_special=*/true);
  ids.insert(ids.end(), rest.begin(), rest.end());
  return ids;
}

Result<std::vector<int32_t>> ModelBundle::EncodeChat(const nlohmann::json& messages,
                                                     const nlohmann::json& extra) const {
  if (!chat_template) return Error("this model has no chat template: " + chat_template_error);
  C8_ASSIGN_OR_RETURN(std::string text, chat_template->Apply(messages, true, extra));
  // Templates emit BOS themselves where the model wants one.
  return tokenizer->Encode(text, /*parse_special=*/true);
}

}  // namespace c8
