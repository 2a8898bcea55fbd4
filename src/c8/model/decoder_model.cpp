#include "c8/model/decoder_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "c8/model/rope.h"
#include "c8/util/bf16.h"

namespace c8 {

namespace {

std::string LayerName(int64_t l, const std::string& suffix) {
  return "model.layers." + std::to_string(l) + "." + suffix;
}

}  // namespace

DecoderModel::~DecoderModel() {
  for (void* p : owned_) backend_.Free(p);
  for (void* p :
       {hidden_, residual_, normed_, qkv_, attn_, gate_up_, act_, rows_, logits_, meta_ints_}) {
    backend_.Free(p);
  }
}

Result<std::unique_ptr<DecoderModel>> DecoderModel::Load(const std::string& dir, Backend& backend,
                                                         const ModelLoadOptions& options) {
  C8_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  std::optional<WeightStore> ws;
  if (options.load_format == "auto") {
    C8_ASSIGN_OR_RETURN(WeightStore store, WeightStore::Open(dir));
    ws.emplace(std::move(store));
  } else if (options.load_format != "dummy") {
    return Error("--load-format: unknown value '" + options.load_format + "' (auto, dummy)");
  }
  std::unique_ptr<DecoderModel> m(new DecoderModel(backend));
  m->config_ = config;
  m->max_model_len_ =
      options.max_model_len > 0 ? options.max_model_len : config.max_position_embeddings;
  C8_RETURN_IF_ERROR(m->LoadWeights(ws ? &*ws : nullptr, options));
  std::vector<float> rope = BuildRopeTable(config, m->max_model_len_);
  m->rope_ = backend.UploadF32(rope.data(), {m->max_model_len_, config.head_dim});
  m->Track(m->rope_.data);
  return m;
}

void FillDummyWeights(const std::string& name, uint64_t seed, float mean, float std_dev, float* out,
                      int64_t n) {
  uint64_t key = seed ^ 0x9e3779b97f4a7c15ull;
  for (char ch : name) key = (key ^ static_cast<uint8_t>(ch)) * 0x100000001b3ull;
  const float half_width = std_dev * 1.7320508f;  // uniform [-a, a] has std a / sqrt(3)
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = key + static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull;  // splitmix64
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    out[i] = mean + (2.0f * u - 1.0f) * half_width;
  }
}

Status DecoderModel::LoadWeights(const WeightStore* ws, const ModelLoadOptions& options) {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size, D = c.head_dim, I = c.intermediate_size;
  const int64_t q = c.q_size(), kv = c.kv_size();
  const int64_t total = 3 + c.num_layers;
  int64_t done = 0;
  auto report = [&](const std::string& what) {
    if (options.progress) options.progress(++done, total, "loading " + what);
  };
  // Uploads one tensor with a shape check.
  // Dummy weights: norms near 1, biases and matrices small, like a trained model's scale.
  auto dummy = [&](const std::string& name,
                   std::initializer_list<int64_t> shape) -> Result<Tensor> {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> host(static_cast<size_t>(n));
    const bool norm = name.find("norm") != std::string::npos;
    const float sd = norm ? 0.05f : 0.02f;  // transformers' initializer_range
    FillDummyWeights(name, options.seed, norm ? 1.0f : 0.0f, sd, host.data(), n);
    // bf16-exact values: every backend (fp32 CPU, bf16 GPU) then holds identical weights.
    for (float& x : host) x = Bf16ToF32(F32ToBf16(x));
    C8_ASSIGN_OR_RETURN(Tensor out, backend_.UploadWeight(host.data(), DType::kF32, shape));
    Track(out.data);
    weight_bytes_ += static_cast<int64_t>(out.nbytes());
    return out;
  };
  auto load = [&](const std::string& name, std::initializer_list<int64_t> shape) -> Result<Tensor> {
    if (!ws) return dummy(name, shape);
    C8_ASSIGN_OR_RETURN(const TensorView* t, ws->Get(name, std::vector<int64_t>(shape)));
    C8_ASSIGN_OR_RETURN(Tensor out, backend_.UploadWeight(t->data, t->dtype, shape));
    Track(out.data);
    weight_bytes_ += static_cast<int64_t>(out.nbytes());
    return out;
  };
  // Concatenates tensors along dim 0 (as fp32 on the host) and uploads them.
  auto load_cat = [&](const std::vector<std::pair<std::string, std::vector<int64_t>>>& parts,
                      std::initializer_list<int64_t> shape) -> Result<Tensor> {
    if (!ws) return dummy(parts[0].first, shape);
    std::vector<const TensorView*> views;
    bool all_bf16 = true;
    for (const auto& [name, pshape] : parts) {
      C8_ASSIGN_OR_RETURN(const TensorView* t, ws->Get(name, pshape));
      views.push_back(t);
      all_bf16 = all_bf16 && t->dtype == DType::kBF16;
    }
    Result<Tensor> uploaded = Error("unreachable");
    if (all_bf16) {  // keep bf16 bits as they are (exact; backends decide their storage)
      std::vector<uint8_t> raw;
      for (const TensorView* t : views) raw.insert(raw.end(), t->data, t->data + t->nbytes);
      uploaded = backend_.UploadWeight(raw.data(), DType::kBF16, shape);
    } else {
      std::vector<float> host;
      for (const TensorView* t : views) C8_RETURN_IF_ERROR(TensorToF32(*t, host));
      uploaded = backend_.UploadWeight(host.data(), DType::kF32, shape);
    }
    C8_ASSIGN_OR_RETURN(Tensor out, std::move(uploaded));
    Track(out.data);
    weight_bytes_ += static_cast<int64_t>(out.nbytes());
    return out;
  };

  C8_ASSIGN_OR_RETURN(embed_, load("model.embed_tokens.weight", {c.vocab_size, H}));
  report("embeddings");
  layers_.resize(c.num_layers);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    Layer& L = layers_[l];
    C8_ASSIGN_OR_RETURN(L.input_norm, load(LayerName(l, "input_layernorm.weight"), {H}));
    C8_ASSIGN_OR_RETURN(L.post_norm, load(LayerName(l, "post_attention_layernorm.weight"), {H}));
    C8_ASSIGN_OR_RETURN(L.qkv_w, load_cat({{LayerName(l, "self_attn.q_proj.weight"), {q, H}},
                                           {LayerName(l, "self_attn.k_proj.weight"), {kv, H}},
                                           {LayerName(l, "self_attn.v_proj.weight"), {kv, H}}},
                                          {q + 2 * kv, H}));
    if (c.attention_bias) {
      C8_ASSIGN_OR_RETURN(L.qkv_b, load_cat({{LayerName(l, "self_attn.q_proj.bias"), {q}},
                                             {LayerName(l, "self_attn.k_proj.bias"), {kv}},
                                             {LayerName(l, "self_attn.v_proj.bias"), {kv}}},
                                            {q + 2 * kv}));
    }
    if (c.qk_norm) {
      C8_ASSIGN_OR_RETURN(L.q_norm, load(LayerName(l, "self_attn.q_norm.weight"), {D}));
      C8_ASSIGN_OR_RETURN(L.k_norm, load(LayerName(l, "self_attn.k_norm.weight"), {D}));
    }
    C8_ASSIGN_OR_RETURN(L.o_w, load(LayerName(l, "self_attn.o_proj.weight"), {H, q}));
    C8_ASSIGN_OR_RETURN(L.gate_up_w, load_cat({{LayerName(l, "mlp.gate_proj.weight"), {I, H}},
                                               {LayerName(l, "mlp.up_proj.weight"), {I, H}}},
                                              {2 * I, H}));
    C8_ASSIGN_OR_RETURN(L.down_w, load(LayerName(l, "mlp.down_proj.weight"), {H, I}));
    report("layer " + std::to_string(l));
  }
  C8_ASSIGN_OR_RETURN(final_norm_, load("model.norm.weight", {H}));
  report("final norm");
  if (c.tie_word_embeddings) {
    lm_head_ = embed_;
  } else {
    C8_ASSIGN_OR_RETURN(lm_head_, load("lm_head.weight", {c.vocab_size, H}));
  }
  report("lm_head");
  return Status::Ok();
}

void DecoderModel::EnsureScratch(int64_t tokens, int64_t rows) {
  const ModelConfig& c = config_;
  const size_t es = DTypeSize(backend_.ActivationDType());
  if (tokens > scratch_tokens_) {
    for (void** p : {&hidden_, &residual_, &normed_, &qkv_, &attn_, &gate_up_, &act_}) {
      backend_.Free(*p);
    }
    const int64_t T = std::max<int64_t>(tokens, 16);
    hidden_ = backend_.Malloc(T * c.hidden_size * es);
    residual_ = backend_.Malloc(T * c.hidden_size * es);
    normed_ = backend_.Malloc(T * c.hidden_size * es);
    qkv_ = backend_.Malloc(T * (c.q_size() + 2 * c.kv_size()) * es);
    attn_ = backend_.Malloc(T * c.q_size() * es);
    gate_up_ = backend_.Malloc(T * 2 * c.intermediate_size * es);
    act_ = backend_.Malloc(T * c.intermediate_size * es);
    scratch_tokens_ = T;
  }
  if (rows > scratch_rows_) {
    backend_.Free(rows_);
    backend_.Free(logits_);
    const int64_t R = std::max<int64_t>(rows, 8);
    rows_ = backend_.Malloc(R * c.hidden_size * es);
    logits_ = backend_.Malloc(R * c.vocab_size * 4);
    scratch_rows_ = R;
  }
}

Status DecoderModel::Forward(const ForwardBatch& b, KvCache& cache, std::vector<float>& logits) {
  Tensor out;
  C8_RETURN_IF_ERROR(ForwardDevice(b, cache, &out));
  if (out.data == nullptr) {
    logits.clear();
    return Status::Ok();
  }
  logits.resize(static_cast<size_t>(out.numel()));
  backend_.ToHostF32(out, logits.data());
  return Status::Ok();
}

Status DecoderModel::ForwardDevice(const ForwardBatch& b, KvCache& cache, Tensor* logits) {
  *logits = Tensor();
  const ModelConfig& c = config_;
  const int64_t T = b.num_tokens(), S = b.num_seqs(),
                R = static_cast<int64_t>(b.logits_rows.size());
  if (T == 0) return Error("forward: empty batch");
  if (static_cast<int64_t>(b.query_start.size()) != S + 1 || b.query_start[S] != T ||
      static_cast<int64_t>(b.positions.size()) != T ||
      static_cast<int64_t>(b.slot_mapping.size()) != T ||
      static_cast<int64_t>(b.block_tables.size()) != S * b.max_blocks_per_seq) {
    return Error("forward: inconsistent batch metadata");
  }
  for (int32_t id : b.token_ids) {
    if (id < 0 || id >= c.vocab_size) {
      return Error("forward: token id " + std::to_string(id) + " outside the vocabulary (" +
                   std::to_string(c.vocab_size) + ")");
    }
  }
  for (int32_t p : b.positions) {
    if (p < 0 || p >= max_model_len_) {
      return Error("forward: position " + std::to_string(p) + " beyond max_model_len " +
                   std::to_string(max_model_len_));
    }
  }
  EnsureScratch(T, R);

  // Integer metadata in one backend buffer: ids | positions | query_start | num_cached |
  // block_tables | slot_mapping | logits_rows.
  std::vector<int32_t> ints;
  ints.reserve(4 * T + 2 * S + 1 + b.block_tables.size() + R);
  auto append = [&](const std::vector<int32_t>& v) {
    size_t at = ints.size();
    ints.insert(ints.end(), v.begin(), v.end());
    return at;
  };
  const size_t o_ids = append(b.token_ids), o_pos = append(b.positions),
               o_qs = append(b.query_start), o_nc = append(b.num_cached),
               o_bt = append(b.block_tables), o_sm = append(b.slot_mapping),
               o_rows = append(b.logits_rows);
  if (ints.size() * 4 > meta_ints_capacity_) {
    backend_.Free(meta_ints_);
    meta_ints_capacity_ = ints.size() * 4 * 2;
    meta_ints_ = backend_.Malloc(meta_ints_capacity_);
  }
  backend_.CopyToDevice(meta_ints_, ints.data(), ints.size() * 4);
  const int32_t* dev = static_cast<const int32_t*>(meta_ints_);

  AttentionMeta meta;
  meta.num_seqs = static_cast<int32_t>(S);
  meta.num_tokens = static_cast<int32_t>(T);
  meta.block_size = static_cast<int32_t>(cache.spec().block_size);
  meta.max_blocks_per_seq = b.max_blocks_per_seq;
  for (int64_t s = 0; s < S; ++s) {
    int32_t q = b.query_start[s + 1] - b.query_start[s];
    meta.max_query_len = std::max(meta.max_query_len, q);
    meta.max_context_len = std::max(meta.max_context_len, b.num_cached[s] + q);
  }
  meta.query_start = dev + o_qs;
  meta.num_cached = dev + o_nc;
  meta.block_tables = dev + o_bt;
  meta.slot_mapping = dev + o_sm;

  AttentionShape shape;
  shape.num_heads = static_cast<int32_t>(c.num_heads);
  shape.num_kv_heads = static_cast<int32_t>(c.num_kv_heads);
  shape.head_dim = static_cast<int32_t>(c.head_dim);
  shape.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  const DType at = backend_.ActivationDType();
  const int64_t H = c.hidden_size, QKV = c.q_size() + 2 * c.kv_size();
  Tensor hidden(hidden_, at, {T, H}), residual(residual_, at, {T, H}), normed(normed_, at, {T, H});
  Tensor qkv(qkv_, at, {T, QKV}), attn(attn_, at, {T, c.q_size()});
  Tensor gate_up(gate_up_, at, {T, 2 * c.intermediate_size});
  Tensor act(act_, at, {T, c.intermediate_size});
  const float eps = static_cast<float>(c.rms_norm_eps);

  backend_.Embedding(embed_, dev + o_ids, residual);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    Layer& L = layers_[l];
    if (l == 0) {
      backend_.RmsNorm(residual, L.input_norm, eps, normed);
    } else {
      backend_.AddRmsNorm(residual, hidden, L.input_norm, eps, normed);
    }
    backend_.Linear(normed, L.qkv_w, c.attention_bias ? &L.qkv_b : nullptr, qkv);
    backend_.QkNormRope(qkv, dev + o_pos, c.qk_norm ? &L.q_norm : nullptr,
                        c.qk_norm ? &L.k_norm : nullptr, eps, rope_, shape);
    if (kv_observer_) {
      const int64_t q = c.q_size(), kvs = c.kv_size();
      observe_qkv_.resize(static_cast<size_t>(T * QKV));
      backend_.ToHostF32(qkv, observe_qkv_.data());
      observe_k_.resize(static_cast<size_t>(T * kvs));
      observe_v_.resize(static_cast<size_t>(T * kvs));
      for (int64_t t = 0; t < T; ++t) {
        const float* row = observe_qkv_.data() + t * QKV;
        std::copy(row + q, row + q + kvs, observe_k_.data() + t * kvs);
        std::copy(row + q + kvs, row + q + 2 * kvs, observe_v_.data() + t * kvs);
      }
      kv_observer_(l, observe_k_.data(), observe_v_.data(), T);
    }
    KvLayerView& kv = cache.layer(l);
    backend_.WriteKvCache(qkv, meta, shape, kv);
    backend_.Attention(qkv, meta, kv, shape, attn);
    backend_.Linear(attn, L.o_w, nullptr, hidden);
    backend_.AddRmsNorm(residual, hidden, L.post_norm, eps, normed);
    backend_.Linear(normed, L.gate_up_w, nullptr, gate_up);
    backend_.SiluMul(gate_up, act);
    backend_.Linear(act, L.down_w, nullptr, hidden);
  }
  backend_.AddRmsNorm(residual, hidden, final_norm_, eps, normed);
  if (R == 0) return Status::Ok();
  Tensor rows(rows_, at, {R, H});
  backend_.GatherRows(normed, dev + o_rows, rows);
  Tensor out(logits_, DType::kF32, {R, c.vocab_size});
  backend_.Linear(rows, lm_head_, nullptr, out);
  *logits = out;
  return Status::Ok();
}

}  // namespace c8
