#include "c8/engine/model_bundle.h"

#include <algorithm>
#include <filesystem>

#include "c8/formats/c8_checkpoint.h"

namespace c8 {
namespace fs = std::filesystem;

Result<std::vector<KvLayerConfig>> ResolveKvLayers(const std::string& model_dir,
                                                   const ModelConfig& c, const std::string& want,
                                                   bool dummy) {
  if (want != "auto" && !ParseKvDType(want)) {
    return Error("--kv-cache-dtype: unknown value '" + want + "' (auto, bf16, fp32, int8)");
  }
  C8Checkpoint ckpt;
  ckpt.layers.resize(c.num_layers);
  if (dummy && want == "int8") {
    ckpt.present = true;
    const int64_t n = c.num_kv_heads * c.head_dim;
    for (int64_t l = 0; l < c.num_layers; ++l) {
      C8LayerScales s;
      s.k_scale.resize(n);
      s.v_scale.resize(n);
      FillDummyWeights("k_scale" + std::to_string(l), 0, 0.05f, 0.01f, s.k_scale.data(), n);
      FillDummyWeights("v_scale" + std::to_string(l), 0, 0.05f, 0.01f, s.v_scale.data(), n);
      s.k_offset.assign(n, 0.0f);
      s.v_offset.assign(n, 0.0f);
      ckpt.layers[l] = std::move(s);
    }
  } else if (!dummy && (want == "auto" || want == "int8")) {
    C8_ASSIGN_OR_RETURN(WeightStore ws, WeightStore::Open(model_dir));
    C8_ASSIGN_OR_RETURN(ckpt, LoadC8Checkpoint(model_dir, c, ws));
  }
  if (want == "int8" && !ckpt.present) {
    return Error("--kv-cache-dtype int8: " + model_dir +
                 " has no C8 scales (quant_model_description.json with kv_cache_type C8; "
                 "make them with `c8 calibrate`)");
  }
  std::vector<KvLayerConfig> layers(c.num_layers);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    KvLayerConfig& lc = layers[l];
    if (ckpt.layers[l]) {
      lc.dtype = KvDType::kInt8;
      const C8LayerScales& s = *ckpt.layers[l];
      lc.c8 = C8LayerParams{s.k_scale, s.k_offset, s.v_scale, s.v_offset};
    } else {
      lc.dtype = want == "fp32" ? KvDType::kF32 : KvDType::kBF16;
    }
  }
  return layers;
}

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
  mo.load_format = o.load_format;
  mo.seed = o.seed;
  const bool dummy = o.load_format == "dummy";
  C8_ASSIGN_OR_RETURN(b->model, DecoderModel::Load(o.model_dir, *b->backend, mo));

  const std::string tok_path = (fs::path(o.model_dir) / "tokenizer.json").string();
  if (!dummy || fs::exists(tok_path)) {
    C8_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::FromFile(tok_path));
    b->tokenizer.emplace(std::move(tok));
  }
  const std::string tc_path = (fs::path(o.model_dir) / "tokenizer_config.json").string();
  auto tmpl = ChatTemplate::FromTokenizerConfig(tc_path);
  if (tmpl.ok()) {
    b->chat_template.emplace(std::move(tmpl).value());
  } else {
    b->chat_template_error = tmpl.message();
  }
  C8_ASSIGN_OR_RETURN(b->defaults, LoadGenerationDefaults(o.model_dir, config.eos_token_ids));

  const ModelConfig& c = b->model->config();
  C8_ASSIGN_OR_RETURN(std::vector<KvLayerConfig> layers,
                      ResolveKvLayers(o.model_dir, c, o.kv_cache_dtype, dummy));
  KvCacheSpec spec;
  spec.num_layers = c.num_layers;
  spec.num_kv_heads = c.num_kv_heads;
  spec.head_dim = c.head_dim;
  spec.block_size = o.block_size;
  int64_t bytes_per_block = 0;
  for (const auto& lc : layers) {
    bytes_per_block += 2 * spec.ElementsPerBlock() * static_cast<int64_t>(KvDTypeSize(lc.dtype));
  }
  // --kv-cache-memory GiB, or exactly one full context (plus the null block) when 0.
  const int64_t context_blocks =
      (b->model->max_model_len() + spec.block_size - 1) / spec.block_size + 1;
  int64_t want_blocks = context_blocks;
  if (o.kv_cache_gib > 0) {
    want_blocks = static_cast<int64_t>(o.kv_cache_gib * (1ull << 30)) / bytes_per_block;
    if (want_blocks < 2) {
      return Error("--kv-cache-memory " + std::to_string(o.kv_cache_gib) +
                   " GiB holds no KV block (" + std::to_string(bytes_per_block) + " bytes each)");
    }
  }
  spec.num_blocks = want_blocks;
  C8_ASSIGN_OR_RETURN(b->kv_cache, KvCache::Create(*b->backend, spec, layers));
  return b;
}

std::vector<int32_t> ModelBundle::EncodePrompt(const std::string& text) const {
  std::vector<int32_t> ids;
  if (!tokenizer) return ids;
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
  if (!chat_template || !tokenizer) {
    return Error("this model has no chat template: " + chat_template_error);
  }
  C8_ASSIGN_OR_RETURN(std::string text, chat_template->Apply(messages, true, extra));
  // Templates emit BOS themselves where the model wants one.
  return tokenizer->Encode(text, /*parse_special=*/true);
}

}  // namespace c8
