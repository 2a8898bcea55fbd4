#include "c8/engine/model_bundle.h"

#include <algorithm>
#include <cstdio>
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

namespace {

// One forward pass of max_num_batched_tokens tokens (the largest step the scheduler makes)
// against a temporary cache, so the model's scratch buffers reach their peak size before
// free device memory is measured.
Status ProfileActivationPeak(ModelBundle& b, const KvCacheSpec& spec,
                             const std::vector<KvLayerConfig>& layers, const EngineOptions& o) {
  const int64_t T = std::max<int64_t>(
      1, std::min<int64_t>(o.max_num_batched_tokens, b.model->max_model_len() - 1));
  const int64_t R = std::max<int64_t>(1, std::min<int64_t>(o.max_num_seqs, T));
  KvCacheSpec tmp = spec;
  tmp.num_blocks = (T + spec.block_size - 1) / spec.block_size + 1;
  C8_ASSIGN_OR_RETURN(auto cache, KvCache::Create(*b.backend, tmp, layers));
  ForwardBatch fb;
  const int32_t bs = static_cast<int32_t>(spec.block_size);
  for (int32_t i = 0; i < T; ++i) {
    fb.token_ids.push_back(i % static_cast<int32_t>(b.model->config().vocab_size));
    fb.positions.push_back(i);
    fb.slot_mapping.push_back(bs + i);
  }
  for (int64_t r = T - R; r < T; ++r) fb.logits_rows.push_back(static_cast<int32_t>(r));
  fb.query_start = {0, static_cast<int32_t>(T)};
  fb.num_cached = {0};
  fb.max_blocks_per_seq = static_cast<int32_t>(tmp.num_blocks - 1);
  for (int32_t i = 0; i < fb.max_blocks_per_seq; ++i) fb.block_tables.push_back(1 + i);
  std::vector<float> logits;
  Status st = b.model->Forward(fb, *cache, logits);
  b.backend->Synchronize();
  return st.WithContext("activation profile run of " + std::to_string(T) + " tokens");
}

}  // namespace

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
  // Sizing: --kv-cache-memory GiB; 0 = exactly one full context (plus the null block);
  // auto = 1 GiB on the CPU, or on a GPU what --gpu-memory-utilization leaves after the
  // weights and the activation peak of a profile step of max_num_batched_tokens tokens.
  const int64_t context_blocks =
      (b->model->max_model_len() + spec.block_size - 1) / spec.block_size + 1;
  int64_t want_blocks = context_blocks;
  std::string how = "one full context";
  if (o.kv_cache_gib > 0) {
    want_blocks = static_cast<int64_t>(o.kv_cache_gib * (1ull << 30)) / bytes_per_block;
    how = "--kv-cache-memory " + std::to_string(o.kv_cache_gib) + " GiB";
    if (want_blocks < 2) {
      return Error("--kv-cache-memory " + std::to_string(o.kv_cache_gib) +
                   " GiB holds no KV block (" + std::to_string(bytes_per_block) + " bytes each)");
    }
  } else if (o.kv_cache_gib < 0) {
    std::optional<DeviceMemory> mem = b->backend->MemoryInfo();
    if (!mem) {
      want_blocks = std::max<int64_t>((int64_t{1} << 30) / bytes_per_block, context_blocks);
      how = "1 GiB (default on the CPU)";
    } else {
      if (!(o.gpu_memory_utilization > 0 && o.gpu_memory_utilization <= 1)) {
        return Error("--gpu-memory-utilization must be in (0, 1], got " +
                     std::to_string(o.gpu_memory_utilization));
      }
      C8_RETURN_IF_ERROR(ProfileActivationPeak(*b, spec, layers, o));
      mem = b->backend->MemoryInfo();
      const double used = static_cast<double>(mem->total_bytes - mem->free_bytes);
      const double budget = o.gpu_memory_utilization * static_cast<double>(mem->total_bytes) - used;
      want_blocks = budget > 0 ? static_cast<int64_t>(budget / bytes_per_block) : 0;
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "%.2f GiB = %.2f x %.2f GiB device memory - %.2f GiB in use (weights %.2f GiB "
                    "+ activations)",
                    budget / (1 << 30), o.gpu_memory_utilization,
                    static_cast<double>(mem->total_bytes) / (1 << 30), used / (1 << 30),
                    static_cast<double>(b->model->WeightBytes()) / (1 << 30));
      how = buf;
      if (want_blocks < context_blocks) {
        return Error("not enough device memory for one full context of " +
                     std::to_string(b->model->max_model_len()) + " tokens in the KV cache (" + how +
                     "): lower --max-model-len or raise --gpu-memory-utilization");
      }
    }
  }
  {
    // Tokens per dtype in the same memory, for the log.
    const double bytes = static_cast<double>(want_blocks) * bytes_per_block;
    const int64_t per_block16 = 2 * c.num_layers * spec.ElementsPerBlock() * 2;
    const int64_t per_block8 = 2 * c.num_layers * spec.ElementsPerBlock();
    char buf[512];
    std::snprintf(
        buf, sizeof buf,
        "KV cache %.2f GiB (%s): %lld tokens as configured; bf16 would hold %lld, C8 "
        "int8 %lld",
        bytes / (1 << 30), how.c_str(), static_cast<long long>((want_blocks - 1) * spec.block_size),
        static_cast<long long>((static_cast<int64_t>(bytes / per_block16) - 1) * spec.block_size),
        static_cast<long long>((static_cast<int64_t>(bytes / per_block8) - 1) * spec.block_size));
    b->kv_summary = buf;
  }
  spec.num_blocks = want_blocks;
  C8_ASSIGN_OR_RETURN(b->kv_cache, KvCache::Create(*b->backend, spec, layers));
  if (!o.enforce_eager && b->backend->SupportsGraphs()) {
    const int32_t max_batch = static_cast<int32_t>(std::clamp<int64_t>(o.max_num_seqs, 1, 512));
    b->model->EnableGraphs(max_batch);
    b->kv_summary += "; decode steps of up to " + std::to_string(max_batch) +
                     " sequences run as CUDA graphs (--enforce-eager: off)";
  }
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
