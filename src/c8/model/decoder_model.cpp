#include "c8/model/decoder_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "c8/formats/modelslim_quant.h"
#include "c8/model/linear_loader.h"
#include "c8/model/rope.h"

namespace c8 {

namespace {

std::string LayerName(int64_t l, const std::string& suffix) {
  return "model.layers." + std::to_string(l) + "." + suffix;
}

}  // namespace

DecoderModel::~DecoderModel() {
  for (void* p : owned_) backend_.Free(p);
  for (void* p :
       {hidden_, residual_, normed_, qkv_, attn_, gate_up_, act_, rows_, logits_, local_logits_}) {
    backend_.Free(p);
  }
}

Result<std::unique_ptr<DecoderModel>> DecoderModel::Load(const std::string& dir, Backend& backend,
                                                         const ModelLoadOptions& options,
                                                         const ShardSpec& shard_in,
                                                         Communicator* comm) {
  C8_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  ShardSpec shard = shard_in;
  if (shard.num_heads == 0) {  // default: the whole model
    C8_ASSIGN_OR_RETURN(shard, MakeShardSpec(config, 0, 1));
  }
  if (shard.size > 1 && (comm == nullptr || comm->size() != shard.size)) {
    return Error("tensor-parallel rank " + std::to_string(shard.rank) +
                 " has no communicator for its group");
  }
  std::optional<WeightStore> ws;
  if (options.load_format == "auto") {
    C8_ASSIGN_OR_RETURN(WeightStore store, WeightStore::Open(dir));
    ws.emplace(std::move(store));
  } else if (options.load_format != "dummy") {
    return Error("--load-format: unknown value '" + options.load_format + "' (auto, dummy)");
  }
  std::unique_ptr<DecoderModel> m(new DecoderModel(backend));
  m->config_ = config;
  m->shard_ = shard;
  m->comm_ = shard.size > 1 ? comm : nullptr;
  m->max_model_len_ =
      options.max_model_len > 0 ? options.max_model_len : config.max_position_embeddings;
  C8_RETURN_IF_ERROR(m->LoadWeights(ws ? &*ws : nullptr, options));
  std::vector<float> rope = BuildRopeTable(config, m->max_model_len_);
  m->rope_ = backend.UploadF32(rope.data(), {m->max_model_len_, config.head_dim});
  m->owned_.push_back(m->rope_.data);
  return m;
}

AttentionShape DecoderModel::attention_shape() const {
  AttentionShape shape;
  shape.num_heads = static_cast<int32_t>(shard_.num_heads);
  shape.num_kv_heads = static_cast<int32_t>(shard_.num_kv_heads);
  shape.head_dim = static_cast<int32_t>(config_.head_dim);
  shape.scale = 1.0f / std::sqrt(static_cast<float>(config_.head_dim));
  return shape;
}

Status DecoderModel::LoadWeights(const WeightStore* ws, const ModelLoadOptions& options) {
  const ModelConfig& c = config_;
  const ShardSpec& s = shard_;
  const int64_t H = c.hidden_size, D = c.head_dim, I = c.intermediate_size;
  const int64_t q = c.q_size(), kv = c.kv_size();
  const int64_t q0 = s.q_head_begin * D, nq = s.num_heads * D;
  const int64_t kv0 = s.kv_head_begin * D, nkv = s.num_kv_heads * D;
  const int64_t i0 = s.inter_begin, ni = s.intermediate;
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
  auto part = [](const std::string& prefix, int64_t out, int64_t in) {
    return LinearPart{prefix, out, in};
  };
  auto out_rows = [&](const std::string& prefix, int64_t out, int64_t in, int64_t r0, int64_t n) {
    LinearPart p = part(prefix, out, in);
    p.row_begin = r0;
    p.rows = n;
    return p;
  };
  auto in_cols = [&](const std::string& prefix, int64_t out, int64_t in, int64_t c0, int64_t n) {
    LinearPart p = part(prefix, out, in);
    p.col_begin = c0;
    p.cols = n;
    return p;
  };
  // An optional norm bias (anti-outlier smoothing): loaded when the checkpoint has it.
  auto norm_bias = [&](const std::string& name, Tensor* out) -> Status {
    if (ws == nullptr || !ws->Has(name)) return Status::Ok();
    C8_ASSIGN_OR_RETURN(*out, loader.Load(WeightSlice{name, {H}}));
    return Status::Ok();
  };
  auto whole = [](const std::string& name, std::vector<int64_t> shape) {
    return WeightSlice{name, std::move(shape)};
  };
  auto rows = [](const std::string& name, std::vector<int64_t> shape, int64_t r0, int64_t n) {
    WeightSlice w{name, std::move(shape)};
    w.row_begin = r0;
    w.rows = n;
    return w;
  };

  const int64_t vpad = s.vocab_block - s.vocab_rows;
  Status st = [&]() -> Status {
    C8_ASSIGN_OR_RETURN(embed_, loader.Load({rows("model.embed_tokens.weight", {c.vocab_size, H},
                                                  s.vocab_begin, s.vocab_rows)},
                                            vpad));
    report("embeddings");
    layers_.resize(c.num_layers);
    for (int64_t l = 0; l < c.num_layers; ++l) {
      Layer& L = layers_[l];
      auto n = [&](const char* suffix) { return LayerName(l, suffix); };
      C8_ASSIGN_OR_RETURN(L.input_norm, loader.Load(whole(n("input_layernorm.weight"), {H})));
      C8_ASSIGN_OR_RETURN(L.post_norm,
                          loader.Load(whole(n("post_attention_layernorm.weight"), {H})));
      C8_RETURN_IF_ERROR(norm_bias(n("input_layernorm.bias"), &L.input_norm_b));
      C8_RETURN_IF_ERROR(norm_bias(n("post_attention_layernorm.bias"), &L.post_norm_b));
      C8_ASSIGN_OR_RETURN(L.qkv_w, linear({out_rows(n("self_attn.q_proj"), q, H, q0, nq),
                                           out_rows(n("self_attn.k_proj"), kv, H, kv0, nkv),
                                           out_rows(n("self_attn.v_proj"), kv, H, kv0, nkv)}));
      // Static W8A8 folds the float bias into quant_bias: it is not added again.
      if (c.attention_bias && L.qkv_w.quant != LinearQuant::kW8A8Static) {
        C8_ASSIGN_OR_RETURN(L.qkv_b,
                            loader.Load({rows(n("self_attn.q_proj.bias"), {q}, q0, nq),
                                         rows(n("self_attn.k_proj.bias"), {kv}, kv0, nkv),
                                         rows(n("self_attn.v_proj.bias"), {kv}, kv0, nkv)}));
      }
      if (c.qk_norm) {
        C8_ASSIGN_OR_RETURN(L.q_norm, loader.Load(whole(n("self_attn.q_norm.weight"), {D})));
        C8_ASSIGN_OR_RETURN(L.k_norm, loader.Load(whole(n("self_attn.k_norm.weight"), {D})));
      }
      C8_ASSIGN_OR_RETURN(L.o_w, linear({in_cols(n("self_attn.o_proj"), H, q, q0, nq)}));
      C8_ASSIGN_OR_RETURN(L.gate_up_w, linear({out_rows(n("mlp.gate_proj"), I, H, i0, ni),
                                               out_rows(n("mlp.up_proj"), I, H, i0, ni)}));
      C8_ASSIGN_OR_RETURN(L.down_w, linear({in_cols(n("mlp.down_proj"), H, I, i0, ni)}));
      report("layer " + std::to_string(l));
    }
    C8_ASSIGN_OR_RETURN(final_norm_, loader.Load(whole("model.norm.weight", {H})));
    C8_RETURN_IF_ERROR(norm_bias("model.norm.bias", &final_norm_b_));
    report("final norm");
    if (c.tie_word_embeddings) {
      lm_head_ = embed_;
    } else {
      C8_ASSIGN_OR_RETURN(
          lm_head_,
          loader.Load({rows("lm_head.weight", {c.vocab_size, H}, s.vocab_begin, s.vocab_rows)},
                      vpad));
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

Status DecoderModel::EnsureScratch(int64_t tokens, int64_t rows) {
  const ModelConfig& c = config_;
  const int64_t D = c.head_dim;
  const size_t es = DTypeSize(backend_.ActivationDType());
  if (tokens > scratch_tokens_) {
    for (void** p : {&hidden_, &residual_, &normed_, &qkv_, &attn_, &gate_up_, &act_}) {
      backend_.Free(*p);
    }
    const int64_t T = std::max<int64_t>(tokens, 16);
    hidden_ = backend_.Malloc(T * c.hidden_size * es);
    residual_ = backend_.Malloc(T * c.hidden_size * es);
    normed_ = backend_.Malloc(T * c.hidden_size * es);
    qkv_ = backend_.Malloc(T * (shard_.q_size(D) + 2 * shard_.kv_size(D)) * es);
    attn_ = backend_.Malloc(T * shard_.q_size(D) * es);
    gate_up_ = backend_.Malloc(T * 2 * shard_.intermediate * es);
    act_ = backend_.Malloc(T * shard_.intermediate * es);
    for (void* p : {hidden_, residual_, normed_, qkv_, attn_, gate_up_, act_}) {
      if (p == nullptr) {
        scratch_tokens_ = 0;  // grow again (and fail again) next time, never use a null buffer
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
    backend_.Free(local_logits_);
    local_logits_ = nullptr;
    const int64_t R = std::max<int64_t>(rows, 8);
    rows_ = backend_.Malloc(R * c.hidden_size * es);
    logits_ = backend_.Malloc(R * c.vocab_size * 4);
    if (comm_ != nullptr) local_logits_ = backend_.Malloc(R * shard_.vocab_block * 4);
    if (rows_ == nullptr || logits_ == nullptr || (comm_ != nullptr && local_logits_ == nullptr)) {
      scratch_rows_ = 0;
      return Error("model: cannot allocate logits buffers for " + std::to_string(R) +
                   " rows (device memory)");
    }
    scratch_rows_ = R;
    ++scratch_epoch_;
  }
  return Status::Ok();
}

void DecoderModel::ObserveKv(int64_t layer, const Tensor& qkv, int64_t T) {
  const int64_t D = config_.head_dim, q = shard_.q_size(D), kvs = shard_.kv_size(D);
  const int64_t QKV = q + 2 * kvs;
  observe_qkv_.resize(static_cast<size_t>(T * QKV));
  backend_.ToHostF32(qkv, observe_qkv_.data());
  observe_k_.resize(static_cast<size_t>(T * kvs));
  observe_v_.resize(static_cast<size_t>(T * kvs));
  for (int64_t t = 0; t < T; ++t) {
    const float* row = observe_qkv_.data() + t * QKV;
    std::copy(row + q, row + q + kvs, observe_k_.data() + t * kvs);
    std::copy(row + q + kvs, row + q + 2 * kvs, observe_v_.data() + t * kvs);
  }
  kv_observer_(layer, observe_k_.data(), observe_v_.data(), T);
}

void DecoderModel::ObserveActivation(int64_t layer, int site, const Tensor& x) {
  observe_act_.resize(static_cast<size_t>(x.numel()));
  backend_.ToHostF32(x, observe_act_.data());
  act_observer_(layer, site, observe_act_.data(), x.dim(0), x.dim(1));
}

void DecoderModel::QueueStep(const StepBuffers& step, KvCache& cache, Tensor* logits) {
  *logits = Tensor();
  const ModelConfig& c = config_;
  const AttentionShape shape = attention_shape();
  const AttentionMeta& meta = *step.meta;
  const int64_t T = step.T, R = step.R;
  const DType at = backend_.ActivationDType();
  const int64_t H = c.hidden_size, D = c.head_dim;
  const int64_t q = shard_.q_size(D), QKV = q + 2 * shard_.kv_size(D), I = shard_.intermediate;
  Tensor hidden(hidden_, at, {T, H}), residual(residual_, at, {T, H}), normed(normed_, at, {T, H});
  Tensor qkv(qkv_, at, {T, QKV}), attn(attn_, at, {T, q});
  Tensor gate_up(gate_up_, at, {T, 2 * I});
  Tensor act(act_, at, {T, I});
  const float eps = static_cast<float>(c.rms_norm_eps);

  backend_.Embedding(embed_, step.ids, shard_.vocab_begin, residual);
  if (comm_) comm_->AllReduceSum(residual);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    Layer& L = layers_[l];
    if (l == 0) {
      backend_.RmsNorm(residual, L.input_norm, eps, normed);
    } else {
      backend_.AddRmsNorm(residual, hidden, L.input_norm, eps, normed);
    }
    if (L.input_norm_b.data) backend_.AddBias(normed, L.input_norm_b);
    if (act_observer_) ObserveActivation(l, 0, normed);
    backend_.Linear(normed, L.qkv_w, L.qkv_b.data ? &L.qkv_b : nullptr, qkv);
    backend_.QkNormRope(qkv, step.positions, c.qk_norm ? &L.q_norm : nullptr,
                        c.qk_norm ? &L.k_norm : nullptr, eps, rope_, shape);
    if (kv_observer_) ObserveKv(l, qkv, T);
    KvLayerView& kv = cache.layer(l);
    backend_.WriteKvCache(qkv, meta, shape, kv);
    backend_.Attention(qkv, meta, kv, shape, attn);
    if (act_observer_) ObserveActivation(l, 1, attn);
    backend_.Linear(attn, L.o_w, nullptr, hidden);
    if (comm_) comm_->AllReduceSum(hidden);
    backend_.AddRmsNorm(residual, hidden, L.post_norm, eps, normed);
    if (L.post_norm_b.data) backend_.AddBias(normed, L.post_norm_b);
    if (act_observer_) ObserveActivation(l, 2, normed);
    backend_.Linear(normed, L.gate_up_w, nullptr, gate_up);
    backend_.SiluMul(gate_up, act);
    if (act_observer_) ObserveActivation(l, 3, act);
    backend_.Linear(act, L.down_w, nullptr, hidden);
    if (comm_) comm_->AllReduceSum(hidden);
  }
  backend_.AddRmsNorm(residual, hidden, final_norm_, eps, normed);
  if (final_norm_b_.data) backend_.AddBias(normed, final_norm_b_);
  if (R == 0) return;
  Tensor rows(rows_, at, {R, H});
  backend_.GatherRows(normed, step.rows, rows);
  Tensor out(logits_, DType::kF32, {R, c.vocab_size});
  if (comm_) {
    Tensor local(local_logits_, DType::kF32, {R, shard_.vocab_block});
    backend_.Linear(rows, lm_head_, nullptr, local);
    comm_->AllGatherColumns(local, shard_.vocab_cols, out);
  } else {
    backend_.Linear(rows, lm_head_, nullptr, out);
  }
  *logits = out;
}

}  // namespace c8
