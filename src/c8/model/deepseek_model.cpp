#include "c8/model/deepseek_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "c8/formats/modelslim_quant.h"
#include "c8/model/linear_loader.h"
#include "c8/model/rope.h"
#include "c8/model/weight_loader.h"
#include "c8/util/bf16.h"

namespace c8 {

namespace {

std::string LayerName(int64_t l, const std::string& suffix) {
  return "model.layers." + std::to_string(l) + "." + suffix;
}

constexpr float kLoraNormEps = 1e-6f;  // q_a_layernorm / kv_a_layernorm (DeepSeek's default)

// A float tensor of the checkpoint on the host (F32 / BF16 / F16), or its dummy values (as
// WeightLoader makes them: bf16-exact, std 0.02 around 0).
Result<std::vector<float>> HostFloats(const WeightStore* ws, const std::string& name,
                                      const std::vector<int64_t>& shape, uint64_t seed) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> out(static_cast<size_t>(n));
  if (ws == nullptr) {
    FillDummyWeights(name, seed, 0.0f, 0.02f, out.data(), n, 0);
    for (float& v : out) v = Bf16ToF32(F32ToBf16(v));
    return out;
  }
  C8_ASSIGN_OR_RETURN(const TensorView* t, ws->Get(name, shape));
  for (int64_t i = 0; i < n; ++i) {
    switch (t->dtype) {
      case DType::kF32:
        out[i] = reinterpret_cast<const float*>(t->data)[i];
        break;
      case DType::kBF16:
        out[i] = Bf16ToF32(reinterpret_cast<const uint16_t*>(t->data)[i]);
        break;
      case DType::kF16:
        out[i] = F16ToF32(reinterpret_cast<const uint16_t*>(t->data)[i]);
        break;
      default:
        return Error(t->file + ": tensor " + name + " must be a float tensor (F32, BF16, F16)");
    }
  }
  return out;
}

double YarnMscale(double factor, double m) {
  return factor <= 1.0 ? 1.0 : 0.1 * m * std::log(factor) + 1.0;
}

}  // namespace

DeepseekModel::~DeepseekModel() {
  for (void* p : owned_) backend_.Free(p);
  for (void* p : {hidden_, residual_, normed_, qa_, qa_normed_, q_, kv_lat_, latent_, kpe_, q_lat_,
                  o_lat_, attn_, gate_up_, act_, topk_ids_, topk_w_, rows_, logits_}) {
    backend_.Free(p);
  }
}

Result<std::unique_ptr<DeepseekModel>> DeepseekModel::Load(const std::string& dir, Backend& backend,
                                                           const ModelLoadOptions& options,
                                                           const ShardSpec& shard_in,
                                                           Communicator* comm) {
  (void)comm;
  C8_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  if (!config.is_mla()) return Error(dir + "/config.json: not a DeepSeek (MLA) model");
  ShardSpec shard = shard_in;
  if (shard.num_heads == 0) {
    C8_ASSIGN_OR_RETURN(shard, MakeShardSpec(config, 0, 1));
  }
  if (shard.size > 1) {
    return Error(config.architecture_name +
                 ": tensor parallelism is not implemented for DeepSeek models yet "
                 "(--tensor-parallel-size 1)");
  }
  std::optional<WeightStore> ws;
  if (options.load_format == "auto") {
    C8_ASSIGN_OR_RETURN(WeightStore store, WeightStore::Open(dir));
    ws.emplace(std::move(store));
  } else if (options.load_format != "dummy") {
    return Error("--load-format: unknown value '" + options.load_format + "' (auto, dummy)");
  }
  std::unique_ptr<DeepseekModel> m(new DeepseekModel(backend));
  m->config_ = config;
  m->shard_ = shard;
  m->max_model_len_ =
      options.max_model_len > 0 ? options.max_model_len : config.max_position_embeddings;
  const MlaConfig& a = config.mla;
  double scale = 1.0 / std::sqrt(static_cast<double>(a.qk_head_dim()));
  const RopeScaling& rs = config.rope_scaling;
  if (rs.type == RopeScaling::Type::kYarn && rs.mscale_all_dim != 0.0) {
    const double ms = YarnMscale(rs.factor, rs.mscale_all_dim);
    scale *= ms * ms;
  }
  m->scale_ = static_cast<float>(scale);
  C8_RETURN_IF_ERROR(m->LoadWeights(ws ? &*ws : nullptr, options));
  ModelConfig rope_cfg = config;
  rope_cfg.head_dim = a.qk_rope_head_dim;
  std::vector<float> rope = BuildRopeTable(rope_cfg, m->max_model_len_);
  m->rope_ = backend.UploadF32(rope.data(), {m->max_model_len_, a.qk_rope_head_dim});
  m->owned_.push_back(m->rope_.data);
  return m;
}

AttentionShape DeepseekModel::attention_shape() const {
  AttentionShape shape;
  shape.num_heads = static_cast<int32_t>(config_.num_heads);
  shape.num_kv_heads = 1;
  shape.head_dim = static_cast<int32_t>(config_.mla.kv_lora_rank);
  shape.rope_dim = static_cast<int32_t>(config_.mla.qk_rope_head_dim);
  shape.scale = scale_;
  return shape;
}

Status DeepseekModel::LoadWeights(const WeightStore* ws, const ModelLoadOptions& options) {
  const ModelConfig& c = config_;
  const MlaConfig& a = c.mla;
  const MoeConfig& e = c.moe;
  const int64_t Hd = c.hidden_size, H = c.num_heads, r = a.kv_lora_rank, R = a.qk_rope_head_dim;
  const int64_t dn = a.qk_nope_head_dim, dv = a.v_head_dim, qk = a.qk_head_dim();
  const int64_t total = 3 + c.num_layers;
  int64_t done = 0;
  auto report = [&](const std::string& what) {
    if (options.progress) options.progress(++done, total, "loading " + what);
  };
  WeightLoader loader(backend_, ws, options.seed);
  ModelSlimQuant quant;
  LinearQuant dummy_quant = LinearQuant::kNone;
  if (ws != nullptr) {
    C8_ASSIGN_OR_RETURN(quant, LoadModelSlimQuant(ws->dir()));
  } else if (options.quantization == "w8a8") {
    dummy_quant = LinearQuant::kW8A8Static;
  } else if (options.quantization == "w8a8_dynamic") {
    dummy_quant = LinearQuant::kW8A8Dynamic;
  } else if (!options.quantization.empty() && options.quantization != "none") {
    return Error("--quantization: unknown scheme '" + options.quantization +
                 "' (none, w8a8, w8a8_dynamic)");
  }
  LinearLoader linears(backend_, loader, ws, quant, dummy_quant, options.seed);
  std::map<std::string, int> quant_count;
  auto linear = [&](std::vector<LinearPart> parts) -> Result<LinearWeight> {
    C8_ASSIGN_OR_RETURN(LinearWeight w, linears.Load(parts));
    quant_count[LinearQuantName(w.quant)] += static_cast<int>(parts.size());
    return w;
  };
  auto rows_of = [](const std::string& prefix, int64_t out, int64_t in, int64_t r0, int64_t n) {
    LinearPart p{prefix, out, in};
    p.row_begin = r0;
    p.rows = n;
    return p;
  };
  auto whole = [](const std::string& name, std::vector<int64_t> shape) {
    return WeightSlice{name, std::move(shape)};
  };
  // A host float array uploaded as a backend weight / as fp32.
  auto upload_weight = [&](const std::vector<float>& v,
                           std::initializer_list<int64_t> shape) -> Result<Tensor> {
    C8_ASSIGN_OR_RETURN(Tensor t, backend_.UploadWeight(v.data(), DType::kF32, shape));
    loader.Track(t);
    return t;
  };
  auto upload_f32 = [&](const std::vector<float>& v, std::initializer_list<int64_t> shape) {
    Tensor t = backend_.UploadF32(v.data(), shape);
    loader.Track(t);
    return t;
  };
  auto mlp = [&](const std::string& prefix, int64_t inter, LinearWeight* gate_up,
                 LinearWeight* down) -> Status {
    C8_ASSIGN_OR_RETURN(*gate_up, linear({rows_of(prefix + ".gate_proj", inter, Hd, 0, inter),
                                          rows_of(prefix + ".up_proj", inter, Hd, 0, inter)}));
    C8_ASSIGN_OR_RETURN(*down, linear({LinearPart{prefix + ".down_proj", Hd, inter}}));
    return Status::Ok();
  };

  Status st = [&]() -> Status {
    C8_ASSIGN_OR_RETURN(embed_,
                        loader.Load(whole("model.embed_tokens.weight", {c.vocab_size, Hd})));
    report("embeddings");
    layers_.resize(c.num_layers);
    for (int64_t l = 0; l < c.num_layers; ++l) {
      Layer& L = layers_[l];
      auto n = [&](const std::string& suffix) { return LayerName(l, suffix); };
      C8_ASSIGN_OR_RETURN(L.input_norm, loader.Load(whole(n("input_layernorm.weight"), {Hd})));
      C8_ASSIGN_OR_RETURN(L.post_norm,
                          loader.Load(whole(n("post_attention_layernorm.weight"), {Hd})));
      if (a.q_lora_rank > 0) {
        C8_ASSIGN_OR_RETURN(L.q_a_w,
                            linear({LinearPart{n("self_attn.q_a_proj"), a.q_lora_rank, Hd}}));
        C8_ASSIGN_OR_RETURN(
            L.q_a_norm, loader.Load(whole(n("self_attn.q_a_layernorm.weight"), {a.q_lora_rank})));
        C8_ASSIGN_OR_RETURN(L.q_b_w,
                            linear({LinearPart{n("self_attn.q_b_proj"), H * qk, a.q_lora_rank}}));
      } else {
        C8_ASSIGN_OR_RETURN(L.q_w, linear({LinearPart{n("self_attn.q_proj"), H * qk, Hd}}));
      }
      C8_ASSIGN_OR_RETURN(L.kv_a_lat_w,
                          linear({rows_of(n("self_attn.kv_a_proj_with_mqa"), r + R, Hd, 0, r)}));
      C8_ASSIGN_OR_RETURN(L.kv_a_rope_w,
                          linear({rows_of(n("self_attn.kv_a_proj_with_mqa"), r + R, Hd, r, R)}));
      C8_ASSIGN_OR_RETURN(L.kv_a_norm,
                          loader.Load(whole(n("self_attn.kv_a_layernorm.weight"), {r})));
      // kv_b_proj (H (dn + dv), r) stays float: split into W_UK^T (H, r, dn) and W_UV (H, dv, r).
      C8_ASSIGN_OR_RETURN(std::vector<float> kvb, HostFloats(ws, n("self_attn.kv_b_proj.weight"),
                                                             {H * (dn + dv), r}, options.seed));
      std::vector<float> uk(static_cast<size_t>(H * r * dn)), uv(static_cast<size_t>(H * dv * r));
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t i = 0; i < dn; ++i) {
          const float* row = kvb.data() + (h * (dn + dv) + i) * r;
          for (int64_t j = 0; j < r; ++j) uk[(h * r + j) * dn + i] = row[j];
        }
        for (int64_t i = 0; i < dv; ++i) {
          const float* row = kvb.data() + (h * (dn + dv) + dn + i) * r;
          std::copy(row, row + r, uv.data() + (h * dv + i) * r);
        }
      }
      C8_ASSIGN_OR_RETURN(L.w_uk_t, upload_weight(uk, {H, r, dn}));
      C8_ASSIGN_OR_RETURN(L.w_uv, upload_weight(uv, {H, dv, r}));
      C8_ASSIGN_OR_RETURN(L.o_w, linear({LinearPart{n("self_attn.o_proj"), Hd, H * dv}}));
      L.moe = e.IsMoeLayer(l);
      if (!L.moe) {
        C8_RETURN_IF_ERROR(mlp(n("mlp"), c.intermediate_size, &L.gate_up_w, &L.down_w));
        L.has_mlp = true;
      } else {
        if (e.num_shared_experts > 0) {
          C8_RETURN_IF_ERROR(mlp(n("mlp.shared_experts"),
                                 e.intermediate_size * e.num_shared_experts, &L.gate_up_w,
                                 &L.down_w));
          L.has_mlp = true;
        }
        L.router.config = e;
        C8_ASSIGN_OR_RETURN(std::vector<float> gw, HostFloats(ws, n("mlp.gate.weight"),
                                                              {e.num_experts, Hd}, options.seed));
        L.router.weight = upload_f32(gw, {e.num_experts, Hd});
        const std::string bias_name = n("mlp.gate.e_score_correction_bias");
        if (e.topk_method == MoeConfig::TopK::kNoAuxTc) {
          std::vector<float> b(static_cast<size_t>(e.num_experts), 0.0f);
          if (ws != nullptr) {
            if (!ws->Has(bias_name)) {
              return Error(ws->dir() + ": tensor " + bias_name +
                           " is missing (topk_method noaux_tc needs the correction bias)");
            }
            C8_ASSIGN_OR_RETURN(b, HostFloats(ws, bias_name, {e.num_experts}, options.seed));
          }
          L.router.bias = upload_f32(b, {e.num_experts});
        }
        L.experts.intermediate = e.intermediate_size;
        for (int64_t x = 0; x < e.num_experts; ++x) {
          LinearWeight gu, dn_w;
          C8_RETURN_IF_ERROR(
              mlp(n("mlp.experts." + std::to_string(x)), e.intermediate_size, &gu, &dn_w));
          L.experts.gate_up.push_back(gu);
          L.experts.down.push_back(dn_w);
        }
      }
      report("layer " + std::to_string(l));
    }
    C8_ASSIGN_OR_RETURN(final_norm_, loader.Load(whole("model.norm.weight", {Hd})));
    report("final norm");
    if (c.tie_word_embeddings) {
      lm_head_ = embed_;
    } else {
      C8_ASSIGN_OR_RETURN(lm_head_, loader.Load(whole("lm_head.weight", {c.vocab_size, Hd})));
    }
    report("lm_head");
    return Status::Ok();
  }();
  owned_.insert(owned_.end(), loader.allocations().begin(), loader.allocations().end());
  loader.allocations().clear();
  weight_bytes_ = loader.bytes();
  for (const auto& [name, count] : quant_count) {
    if (!quant_summary_.empty()) quant_summary_ += ", ";
    quant_summary_ += name + " x" + std::to_string(count);
  }
  return st;
}

Status DeepseekModel::EnsureScratch(int64_t tokens, int64_t rows) {
  const ModelConfig& c = config_;
  const MlaConfig& a = c.mla;
  const int64_t H = c.num_heads, Hd = c.hidden_size, r = a.kv_lora_rank;
  const int64_t inter =
      std::max(c.intermediate_size,
               c.moe.intermediate_size * std::max<int64_t>(1, c.moe.num_shared_experts));
  const size_t es = DTypeSize(backend_.ActivationDType());
  if (tokens > scratch_tokens_) {
    void** bufs[] = {&hidden_,  &residual_, &normed_,   &qa_,    &qa_normed_, &q_,
                     &kv_lat_,  &latent_,   &kpe_,      &q_lat_, &o_lat_,     &attn_,
                     &gate_up_, &act_,      &topk_ids_, &topk_w_};
    for (void** p : bufs) {
      backend_.Free(*p);
      *p = nullptr;
    }
    const int64_t T = std::max<int64_t>(tokens, 16);
    const int64_t k = std::max<int64_t>(1, c.moe.top_k);
    hidden_ = backend_.Malloc(T * Hd * es);
    residual_ = backend_.Malloc(T * Hd * es);
    normed_ = backend_.Malloc(T * Hd * es);
    qa_ = backend_.Malloc(T * std::max<int64_t>(1, a.q_lora_rank) * es);
    qa_normed_ = backend_.Malloc(T * std::max<int64_t>(1, a.q_lora_rank) * es);
    q_ = backend_.Malloc(T * H * a.qk_head_dim() * es);
    kv_lat_ = backend_.Malloc(T * r * es);
    latent_ = backend_.Malloc(T * r * es);
    kpe_ = backend_.Malloc(T * a.qk_rope_head_dim * es);
    q_lat_ = backend_.Malloc(T * H * r * es);
    o_lat_ = backend_.Malloc(T * H * r * es);
    attn_ = backend_.Malloc(T * H * a.v_head_dim * es);
    gate_up_ = backend_.Malloc(T * 2 * inter * es);
    act_ = backend_.Malloc(T * inter * es);
    topk_ids_ = backend_.Malloc(T * k * 4);
    topk_w_ = backend_.Malloc(T * k * 4);
    for (void** p : bufs) {
      if (*p == nullptr) {
        scratch_tokens_ = 0;
        return Error("model: cannot allocate activation buffers for " + std::to_string(T) +
                     " tokens (device memory)");
      }
    }
    scratch_tokens_ = T;
    ++scratch_epoch_;
  }
  if (rows > scratch_rows_) {
    backend_.Free(rows_);
    backend_.Free(logits_);
    const int64_t R = std::max<int64_t>(rows, 8);
    rows_ = backend_.Malloc(R * Hd * es);
    logits_ = backend_.Malloc(R * c.vocab_size * 4);
    if (rows_ == nullptr || logits_ == nullptr) {
      scratch_rows_ = 0;
      return Error("model: cannot allocate logits buffers for " + std::to_string(R) +
                   " rows (device memory)");
    }
    scratch_rows_ = R;
    ++scratch_epoch_;
  }
  return Status::Ok();
}

void DeepseekModel::QueueStep(const StepBuffers& step, KvCache& cache, Tensor* logits) {
  *logits = Tensor();
  const ModelConfig& c = config_;
  const MlaConfig& a = c.mla;
  const AttentionShape shape = attention_shape();
  const AttentionMeta& meta = *step.meta;
  const int64_t T = step.T, R = step.R;
  const DType at = backend_.ActivationDType();
  const int64_t Hd = c.hidden_size, H = c.num_heads, r = a.kv_lora_rank, Rd = a.qk_rope_head_dim;
  const int64_t qk = a.qk_head_dim(), dn = a.qk_nope_head_dim, dv = a.v_head_dim;
  const int64_t k = std::max<int64_t>(1, c.moe.top_k);
  Tensor hidden(hidden_, at, {T, Hd}), residual(residual_, at, {T, Hd}),
      normed(normed_, at, {T, Hd});
  Tensor qa(qa_, at, {T, a.q_lora_rank}), qa_normed(qa_normed_, at, {T, a.q_lora_rank});
  Tensor q(q_, at, {T, H * qk}), kv_lat(kv_lat_, at, {T, r}), latent(latent_, at, {T, r});
  Tensor kpe(kpe_, at, {T, Rd}), q_lat(q_lat_, at, {T, H * r}), o_lat(o_lat_, at, {T, H * r});
  Tensor attn(attn_, at, {T, H * dv});
  Tensor topk_ids(topk_ids_, DType::kI32, {T, k}), topk_w(topk_w_, DType::kF32, {T, k});
  const float eps = static_cast<float>(c.rms_norm_eps);

  backend_.Embedding(embed_, step.ids, 0, residual);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    Layer& L = layers_[l];
    if (l == 0) {
      backend_.RmsNorm(residual, L.input_norm, eps, normed);
    } else {
      backend_.AddRmsNorm(residual, hidden, L.input_norm, eps, normed);
    }
    // Queries (H, dn + R) and the cache entries (latent r, roped key R).
    if (a.q_lora_rank > 0) {
      backend_.Linear(normed, L.q_a_w, nullptr, qa);
      backend_.RmsNorm(qa, L.q_a_norm, kLoraNormEps, qa_normed);
      backend_.Linear(qa_normed, L.q_b_w, nullptr, q);
    } else {
      backend_.Linear(normed, L.q_w, nullptr, q);
    }
    backend_.Linear(normed, L.kv_a_lat_w, nullptr, kv_lat);
    backend_.RmsNorm(kv_lat, L.kv_a_norm, kLoraNormEps, latent);
    backend_.Linear(normed, L.kv_a_rope_w, nullptr, kpe);
    backend_.Rope(q, H, qk, dn, step.positions, rope_, a.rope_interleave);
    backend_.Rope(kpe, 1, Rd, 0, step.positions, rope_, a.rope_interleave);
    if (kv_observer_) {
      observe_k_.resize(static_cast<size_t>(T * r));
      observe_v_.resize(static_cast<size_t>(T * Rd));
      backend_.ToHostF32(latent, observe_k_.data());
      backend_.ToHostF32(kpe, observe_v_.data());
      kv_observer_(l, observe_k_.data(), observe_v_.data(), T);
    }
    KvLayerView& kv = cache.layer(l);
    backend_.WriteMlaCache(latent, kpe, meta, kv);
    // Absorbed attention in the latent space, then values and the output projection.
    backend_.HeadMatmul(q, qk, 0, L.w_uk_t, q_lat, r, 0);
    if (q_observer_) {
      observe_q_.resize(static_cast<size_t>(T * H * r));
      backend_.ToHostF32(q_lat, observe_q_.data());
      q_observer_(l, observe_q_.data(), T);
    }
    backend_.MlaAttention(q_lat, q, qk, dn, meta, kv, shape, o_lat);
    backend_.HeadMatmul(o_lat, r, 0, L.w_uv, attn, dv, 0);
    backend_.Linear(attn, L.o_w, nullptr, hidden);
    backend_.AddRmsNorm(residual, hidden, L.post_norm, eps, normed);
    // MLP: dense, or shared experts + routed experts.
    if (L.has_mlp) {
      const int64_t I = L.down_w.w.dim(1);
      Tensor gate_up(gate_up_, at, {T, 2 * I}), act(act_, at, {T, I});
      backend_.Linear(normed, L.gate_up_w, nullptr, gate_up);
      backend_.SiluMul(gate_up, act);
      backend_.Linear(act, L.down_w, nullptr, hidden);
    } else {
      backend_.Memset(hidden.data, 0, hidden.nbytes());
    }
    if (L.moe) {
      backend_.MoeRoute(normed, L.router, topk_ids, topk_w);
      backend_.MoeExperts(normed, topk_ids, topk_w, L.experts, hidden);
    }
  }
  backend_.AddRmsNorm(residual, hidden, final_norm_, eps, normed);
  if (R == 0) return;
  Tensor rows(rows_, at, {R, Hd});
  backend_.GatherRows(normed, step.rows, rows);
  Tensor out(logits_, DType::kF32, {R, c.vocab_size});
  backend_.Linear(rows, lm_head_, nullptr, out);
  *logits = out;
}

}  // namespace c8
