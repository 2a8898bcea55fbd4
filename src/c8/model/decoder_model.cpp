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
  DestroyGraphs();
  for (void* p : owned_) backend_.Free(p);
  for (void* p : {hidden_, residual_, normed_, qkv_, attn_, gate_up_, act_, rows_, logits_,
                  meta_ints_, graph_meta_}) {
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
    DestroyGraphs();  // they point at the old buffers
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
    DestroyGraphs();
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

Status DecoderModel::CheckBatch(const ForwardBatch& b) const {
  const ModelConfig& c = config_;
  const int64_t T = b.num_tokens(), S = b.num_seqs();
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
  return Status::Ok();
}

Status DecoderModel::ForwardDevice(const ForwardBatch& b, KvCache& cache, Tensor* logits) {
  *logits = Tensor();
  C8_RETURN_IF_ERROR(CheckBatch(b));
  if (graph_max_batch_ > 0) {
    C8_ASSIGN_OR_RETURN(const bool done, ForwardGraph(b, cache, logits));
    if (done) return Status::Ok();
  }
  const int64_t T = b.num_tokens(), S = b.num_seqs(),
                R = static_cast<int64_t>(b.logits_rows.size());
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
  meta.no_cached_keys = true;
  for (int64_t s = 0; s < S; ++s) {
    int32_t q = b.query_start[s + 1] - b.query_start[s];
    meta.max_query_len = std::max(meta.max_query_len, q);
    meta.max_context_len = std::max(meta.max_context_len, b.num_cached[s] + q);
    meta.no_cached_keys = meta.no_cached_keys && b.num_cached[s] == 0;
  }
  meta.query_start = dev + o_qs;
  meta.num_cached = dev + o_nc;
  meta.block_tables = dev + o_bt;
  meta.slot_mapping = dev + o_sm;
  QueueStep(meta, dev + o_ids, dev + o_pos, dev + o_rows, T, R, cache, logits);
  return Status::Ok();
}

// ---- graphs ----------------------------------------------------------------------------------

namespace {

// Batch buckets of captured decode graphs (vLLM's choice: 1, 2, 4, then every multiple of 8).
int32_t BucketOf(int32_t n) {
  if (n <= 1) return 1;
  if (n <= 2) return 2;
  if (n <= 4) return 4;
  return (n + 7) / 8 * 8;
}

int32_t NextPow2(int32_t n) {
  int32_t p = 1;
  while (p < n) p *= 2;
  return p;
}

}  // namespace

void DecoderModel::EnableGraphs(int32_t max_batch) {
  DestroyGraphs();
  backend_.Free(graph_meta_);
  graph_meta_ = nullptr;
  graph_max_blocks_ = 0;
  graph_error_.clear();
  graph_max_batch_ = backend_.SupportsGraphs() ? std::max(0, max_batch) : 0;
}

void DecoderModel::DestroyGraphs() {
  for (auto& [key, g] : graphs_) backend_.DestroyGraph(g.id);
  graphs_.clear();
}

Result<bool> DecoderModel::ForwardGraph(const ForwardBatch& b, KvCache& cache, Tensor* logits) {
  const int32_t S = b.num_seqs(), T = b.num_tokens();
  if (kv_observer_ || T != S || S > graph_max_batch_ ||
      static_cast<int32_t>(b.logits_rows.size()) != S) {
    return false;
  }
  for (int32_t i = 0; i < S; ++i) {
    if (b.logits_rows[i] != i) return false;
  }
  const int32_t bs = static_cast<int32_t>(cache.spec().block_size);
  const int32_t B = BucketOf(S), Bmax = BucketOf(graph_max_batch_);
  // Block-table width: a power of two (>= 16 blocks) so that few graphs cover all contexts;
  // the attention kernels skip the key ranges past each sequence's context.
  const int32_t cap_blocks = NextPow2(static_cast<int32_t>((max_model_len_ + bs - 1) / bs));
  const int32_t MB = std::max(16, NextPow2(std::max(1, b.max_blocks_per_seq)));
  if (MB > cap_blocks) return false;
  if (graph_meta_ == nullptr || graph_max_blocks_ != cap_blocks) {
    DestroyGraphs();
    backend_.Free(graph_meta_);
    graph_max_blocks_ = cap_blocks;
    graph_meta_ = backend_.Malloc(
        (6 * static_cast<size_t>(Bmax) + 1 + static_cast<size_t>(Bmax) * cap_blocks) * 4);
    if (graph_meta_ == nullptr) return Error("forward: cannot allocate graph metadata");
  }
  EnsureScratch(std::max<int64_t>(T, Bmax), Bmax);  // fixed buffers for every graph

  // Padded metadata: sequences S..B-1 are one-token dummies at position 0 that write nothing
  // (slot -1) and read only the null block.
  const size_t o_ids = 0, o_pos = B, o_qs = 2 * B, o_nc = 3 * B + 1, o_bt = 4 * B + 1,
               o_sm = o_bt + static_cast<size_t>(B) * MB, o_rows = o_sm + B, total = o_rows + B;
  graph_ints_.assign(total, 0);
  int32_t* g = graph_ints_.data();
  for (int32_t i = 0; i < B; ++i) {
    const bool real = i < S;
    g[o_ids + i] = real ? b.token_ids[i] : 0;
    g[o_pos + i] = real ? b.positions[i] : 0;
    g[o_qs + i] = i;
    g[o_nc + i] = real ? b.num_cached[i] : 0;
    g[o_sm + i] = real ? b.slot_mapping[i] : -1;
    g[o_rows + i] = i;
    if (real) {
      std::copy_n(b.block_tables.begin() + static_cast<size_t>(i) * b.max_blocks_per_seq,
                  b.max_blocks_per_seq, g + o_bt + static_cast<size_t>(i) * MB);
    }
  }
  g[o_qs + B] = B;
  backend_.CopyToDevice(graph_meta_, g, total * 4);
  const int32_t* dev = static_cast<const int32_t*>(graph_meta_);

  AttentionMeta meta;
  meta.num_seqs = B;
  meta.num_tokens = B;
  meta.block_size = bs;
  meta.max_blocks_per_seq = MB;
  meta.max_query_len = 1;
  meta.max_context_len = MB * bs;
  meta.query_start = dev + o_qs;
  meta.num_cached = dev + o_nc;
  meta.block_tables = dev + o_bt;
  meta.slot_mapping = dev + o_sm;

  const auto key = std::make_tuple(cache.id(), B, MB);
  auto it = graphs_.find(key);
  if (it != graphs_.end() && it->second.epoch != backend_.GraphEpoch()) {
    backend_.DestroyGraph(it->second.id);
    graphs_.erase(it);
    it = graphs_.end();
  }
  Tensor full;
  if (it != graphs_.end()) {
    it->second.last_use = ++graph_clock_;
    C8_RETURN_IF_ERROR(backend_.LaunchGraph(it->second.id));
  } else {
    // Run the step eagerly (its result is this step's; it also sizes every workspace and
    // selects every GEMM plan), then record the same ops.
    QueueStep(meta, dev + o_ids, dev + o_pos, dev + o_rows, B, B, cache, &full);
    Status st = backend_.BeginGraphCapture();
    Tensor unused;
    if (st.ok()) {
      QueueStep(meta, dev + o_ids, dev + o_pos, dev + o_rows, B, B, cache, &unused);
      Result<int64_t> id = backend_.EndGraphCapture();
      if (id.ok()) {
        constexpr size_t kMaxGraphs = 512;
        if (graphs_.size() >= kMaxGraphs) {
          auto lru = graphs_.begin();
          for (auto j = graphs_.begin(); j != graphs_.end(); ++j) {
            if (j->second.last_use < lru->second.last_use) lru = j;
          }
          backend_.DestroyGraph(lru->second.id);
          graphs_.erase(lru);
        }
        graphs_[key] = GraphEntry{*id, backend_.GraphEpoch(), ++graph_clock_};
      } else {
        st = id.status();
      }
    }
    if (!st.ok()) {  // keep serving eagerly
      graph_error_ = st.message();
      DestroyGraphs();
      graph_max_batch_ = 0;
    }
  }
  *logits = Tensor(logits_, DType::kF32, {S, config_.vocab_size});
  return true;
}

void DecoderModel::QueueStep(const AttentionMeta& meta, const int32_t* ids,
                             const int32_t* positions, const int32_t* row_ids, int64_t T, int64_t R,
                             KvCache& cache, Tensor* logits) {
  *logits = Tensor();
  const ModelConfig& c = config_;
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

  backend_.Embedding(embed_, ids, residual);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    Layer& L = layers_[l];
    if (l == 0) {
      backend_.RmsNorm(residual, L.input_norm, eps, normed);
    } else {
      backend_.AddRmsNorm(residual, hidden, L.input_norm, eps, normed);
    }
    backend_.Linear(normed, L.qkv_w, c.attention_bias ? &L.qkv_b : nullptr, qkv);
    backend_.QkNormRope(qkv, positions, c.qk_norm ? &L.q_norm : nullptr,
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
  if (R == 0) return;
  Tensor rows(rows_, at, {R, H});
  backend_.GatherRows(normed, row_ids, rows);
  Tensor out(logits_, DType::kF32, {R, c.vocab_size});
  backend_.Linear(rows, lm_head_, nullptr, out);
  *logits = out;
}

}  // namespace c8
