#include "c8/runner/worker.h"

#include <algorithm>

#include "c8/runner/kv_layers.h"

namespace c8 {

std::vector<KvLayerConfig> SliceKvLayers(const std::vector<KvLayerConfig>& layers,
                                         const ShardSpec& shard, int64_t head_dim) {
  std::vector<KvLayerConfig> out = layers;
  const size_t c0 = static_cast<size_t>(shard.kv_head_begin * head_dim);
  const size_t n = static_cast<size_t>(shard.num_kv_heads * head_dim);
  for (KvLayerConfig& lc : out) {
    if (lc.dtype != KvDType::kInt8) continue;
    for (std::vector<float>* v :
         {&lc.c8.k_scale, &lc.c8.k_offset, &lc.c8.v_scale, &lc.c8.v_offset}) {
      if (v->size() >= c0 + n) *v = std::vector<float>(v->begin() + c0, v->begin() + c0 + n);
    }
  }
  return out;
}

Result<std::unique_ptr<Worker>> Worker::Create(const WorkerConfig& config,
                                               std::unique_ptr<Backend> backend,
                                               Communicator* comm) {
  std::unique_ptr<Worker> w(new Worker());
  w->backend_ = std::move(backend);
  w->comm_ = comm;
  w->backend_->BindThread();
  C8_ASSIGN_OR_RETURN(w->model_,
                      LoadModel(config.model_dir, *w->backend_, config.load, config.shard, comm));
  w->graphs_ = std::make_unique<DecodeGraphs>(*w->backend_, *w->model_);
  return w;
}

Worker::~Worker() {
  graphs_.reset();
  cache_.reset();
  model_.reset();
  if (backend_) backend_->Free(meta_ints_);
}

KvCacheSpec Worker::CacheSpec(int64_t block_size, int64_t num_blocks) const {
  return MakeKvCacheSpec(model_->config(), model_->shard().num_kv_heads, block_size, num_blocks);
}

int64_t Worker::KvBytesPerBlock(const std::vector<KvLayerConfig>& layers,
                                int64_t block_size) const {
  const KvCacheSpec spec = CacheSpec(block_size, 0);
  int64_t bytes = 0;
  for (const auto& lc : layers) bytes += block_size * spec.LayerBytesPerToken(lc.dtype);
  return bytes;
}

Status Worker::CreateKvCache(const std::vector<KvLayerConfig>& layers, int64_t block_size,
                             int64_t num_blocks) {
  const KvCacheSpec spec = CacheSpec(block_size, num_blocks);
  cache_.reset();
  C8_ASSIGN_OR_RETURN(
      cache_,
      KvCache::Create(*backend_, spec, SliceKvLayers(layers, model_->shard(), spec.head_dim)));
  return Status::Ok();
}

Status Worker::ProfileActivationPeak(int64_t tokens, int64_t rows,
                                     const std::vector<KvLayerConfig>& layers, int64_t block_size) {
  const int64_t T = std::max<int64_t>(1, std::min<int64_t>(tokens, model_->max_model_len() - 1));
  const int64_t R = std::max<int64_t>(1, std::min<int64_t>(rows, T));
  const KvCacheSpec spec = CacheSpec(block_size, (T + block_size - 1) / block_size + 1);
  C8_ASSIGN_OR_RETURN(
      auto cache,
      KvCache::Create(*backend_, spec, SliceKvLayers(layers, model_->shard(), spec.head_dim)));
  ForwardBatch fb;
  const int32_t bs = static_cast<int32_t>(block_size);
  for (int32_t i = 0; i < T; ++i) {
    fb.token_ids.push_back(i % static_cast<int32_t>(model_->config().vocab_size));
    fb.positions.push_back(i);
    fb.slot_mapping.push_back(bs + i);
  }
  for (int64_t r = T - R; r < T; ++r) fb.logits_rows.push_back(static_cast<int32_t>(r));
  fb.query_start = {0, static_cast<int32_t>(T)};
  fb.num_cached = {0};
  fb.max_blocks_per_seq = static_cast<int32_t>(spec.num_blocks - 1);
  for (int32_t i = 0; i < fb.max_blocks_per_seq; ++i) fb.block_tables.push_back(1 + i);
  std::vector<float> logits;
  Status st = ForwardHost(fb, *cache, &logits);
  backend_->Synchronize();
  return st.WithContext("activation profile run of " + std::to_string(T) + " tokens");
}

Status CheckForwardBatch(const ForwardBatch& b, const ModelConfig& c, int64_t max_model_len) {
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
    if (p < 0 || p >= max_model_len) {
      return Error("forward: position " + std::to_string(p) + " beyond max_model_len " +
                   std::to_string(max_model_len));
    }
  }
  return Status::Ok();
}

Status Worker::Forward(const ForwardBatch& b, KvCache& cache, Tensor* logits) {
  *logits = Tensor();
  C8_RETURN_IF_ERROR(CheckForwardBatch(b, model_->config(), model_->max_model_len()));
  {
    C8_ASSIGN_OR_RETURN(const bool done, graphs_->TryRun(b, cache, logits));
    if (done) return Status::Ok();
  }
  const int64_t T = b.num_tokens(), S = b.num_seqs(),
                R = static_cast<int64_t>(b.logits_rows.size());
  C8_RETURN_IF_ERROR(model_->EnsureScratch(T, R));

  // Integer metadata in one backend buffer: ids | positions | query_start | num_cached |
  // block_tables | slot_mapping | logits_rows.
  ints_.clear();
  auto append = [&](const std::vector<int32_t>& v) {
    const size_t at = ints_.size();
    ints_.insert(ints_.end(), v.begin(), v.end());
    return at;
  };
  const size_t o_ids = append(b.token_ids), o_pos = append(b.positions),
               o_qs = append(b.query_start), o_nc = append(b.num_cached),
               o_bt = append(b.block_tables), o_sm = append(b.slot_mapping),
               o_rows = append(b.logits_rows);
  if (ints_.size() * 4 > meta_ints_capacity_) {
    backend_->Free(meta_ints_);
    meta_ints_capacity_ = 0;
    meta_ints_ = backend_->Malloc(ints_.size() * 4 * 2);
    if (meta_ints_ == nullptr) return Error("forward: cannot allocate step metadata");
    meta_ints_capacity_ = ints_.size() * 4 * 2;
  }
  backend_->CopyToDevice(meta_ints_, ints_.data(), ints_.size() * 4);
  const int32_t* dev = static_cast<const int32_t*>(meta_ints_);

  AttentionMeta meta;
  meta.num_seqs = static_cast<int32_t>(S);
  meta.num_tokens = static_cast<int32_t>(T);
  meta.block_size = static_cast<int32_t>(cache.spec().block_size);
  meta.max_blocks_per_seq = b.max_blocks_per_seq;
  meta.no_cached_keys = true;
  for (int64_t s = 0; s < S; ++s) {
    const int32_t q = b.query_start[s + 1] - b.query_start[s];
    meta.max_query_len = std::max(meta.max_query_len, q);
    meta.max_context_len = std::max(meta.max_context_len, b.num_cached[s] + q);
    meta.no_cached_keys = meta.no_cached_keys && b.num_cached[s] == 0;
  }
  meta.query_start = dev + o_qs;
  meta.num_cached = dev + o_nc;
  meta.block_tables = dev + o_bt;
  meta.slot_mapping = dev + o_sm;
  backend_->PlanAttention(model_->attention_shape(), meta);
  model_->QueueStep(StepBuffers{&meta, dev + o_ids, dev + o_pos, dev + o_rows, T, R}, cache,
                    logits);
  return Health();
}

Status Worker::Health() const {
  C8_RETURN_IF_ERROR(backend_->status());
  if (comm_ != nullptr) C8_RETURN_IF_ERROR(comm_->status());
  return Status::Ok();
}

Status Worker::ForwardHost(const ForwardBatch& b, KvCache& cache, std::vector<float>* logits) {
  Tensor out;
  C8_RETURN_IF_ERROR(Forward(b, cache, &out));
  if (out.data == nullptr) {
    logits->clear();
    return Status::Ok();
  }
  logits->resize(static_cast<size_t>(out.numel()));
  backend_->ToHostF32(out, logits->data());
  return Health();
}

Status Worker::Execute(const StepInput& in, bool sample, StepOutput* out) {
  if (!cache_) return Error("worker: no KV cache (CreateKvCache first)");
  Tensor logits;
  C8_RETURN_IF_ERROR(Forward(in.batch, *cache_, &logits));
  out->sampled.clear();
  if (sample && !in.sampling.rows.empty()) {
    if (in.before_sampling) in.before_sampling();  // overlaps the queued forward pass
    C8_RETURN_IF_ERROR(backend_->SampleRows(logits, in.sampling, &out->sampled));
  } else if (!sample) {
    backend_->Synchronize();  // the step's collectives have completed on this rank
  }
  // Every rank reports its own device and collective errors (rank 0 also through sampling).
  return Health();
}

}  // namespace c8
