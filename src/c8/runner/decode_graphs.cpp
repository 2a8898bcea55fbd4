#include "c8/runner/decode_graphs.h"

#include <algorithm>

namespace c8 {

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

DecodeGraphs::~DecodeGraphs() {
  DestroyAll();
  backend_.Free(meta_);
}

void DecodeGraphs::Enable(int32_t max_batch) {
  DestroyAll();
  backend_.Free(meta_);
  meta_ = nullptr;
  max_blocks_ = 0;
  error_.clear();
  max_batch_ = backend_.SupportsGraphs() ? std::max(0, max_batch) : 0;
}

void DecodeGraphs::DestroyAll() {
  for (auto& [key, g] : graphs_) backend_.DestroyGraph(g.id);
  graphs_.clear();
}

Result<bool> DecodeGraphs::TryRun(const ForwardBatch& b, KvCache& cache, Tensor* logits) {
  const int32_t S = b.num_seqs(), T = b.num_tokens();
  if (max_batch_ <= 0 || model_.has_kv_observer() || T != S || S > max_batch_ ||
      static_cast<int32_t>(b.logits_rows.size()) != S) {
    return false;
  }
  for (int32_t i = 0; i < S; ++i) {
    if (b.logits_rows[i] != i) return false;
  }
  const int32_t bs = static_cast<int32_t>(cache.spec().block_size);
  const int32_t B = BucketOf(S), Bmax = BucketOf(max_batch_);
  const int32_t cap_blocks = NextPow2(static_cast<int32_t>((model_.max_model_len() + bs - 1) / bs));
  const int32_t MB = std::max(16, NextPow2(std::max(1, b.max_blocks_per_seq)));
  if (MB > cap_blocks) return false;
  if (meta_ == nullptr || max_blocks_ != cap_blocks) {
    DestroyAll();
    backend_.Free(meta_);
    max_blocks_ = cap_blocks;
    meta_ = backend_.Malloc(
        (6 * static_cast<size_t>(Bmax) + 1 + static_cast<size_t>(Bmax) * cap_blocks) * 4);
    if (meta_ == nullptr) return Error("forward: cannot allocate graph metadata");
  }
  C8_RETURN_IF_ERROR(
      model_.EnsureScratch(std::max<int64_t>(T, Bmax), Bmax));  // fixed buffers for every graph

  // Padded metadata: sequences S..B-1 are one-token dummies at position 0 that write nothing
  // (slot -1) and read only the null block.
  const size_t o_ids = 0, o_pos = B, o_qs = 2 * B, o_nc = 3 * B + 1, o_bt = 4 * B + 1,
               o_sm = o_bt + static_cast<size_t>(B) * MB, o_rows = o_sm + B, total = o_rows + B;
  ints_.assign(total, 0);
  int32_t* g = ints_.data();
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
  backend_.CopyToDevice(meta_, g, total * 4);
  const int32_t* dev = static_cast<const int32_t*>(meta_);

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
  backend_.PlanAttention(model_.attention_shape(), meta);
  StepBuffers step{&meta, dev + o_ids, dev + o_pos, dev + o_rows, B, B};

  const auto key = std::make_tuple(cache.id(), B, MB);
  auto it = graphs_.find(key);
  if (it != graphs_.end() && (it->second.backend_epoch != backend_.GraphEpoch() ||
                              it->second.scratch_epoch != model_.scratch_epoch())) {
    backend_.DestroyGraph(it->second.id);
    graphs_.erase(it);
    it = graphs_.end();
  }
  if (it != graphs_.end()) {
    it->second.last_use = ++clock_;
    C8_RETURN_IF_ERROR(backend_.LaunchGraph(it->second.id));
  } else {
    // Run the step eagerly (its result is this step's; it also sizes every workspace and
    // selects every GEMM plan), then record the same ops.
    Tensor full;
    model_.QueueStep(step, cache, &full);
    Status st = backend_.BeginGraphCapture();
    if (st.ok()) {
      Tensor unused;
      model_.QueueStep(step, cache, &unused);
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
        graphs_[key] = Entry{*id, backend_.GraphEpoch(), model_.scratch_epoch(), ++clock_};
      } else {
        st = id.status();
      }
    }
    if (!st.ok()) {  // keep serving eagerly
      error_ = st.message();
      DestroyAll();
      max_batch_ = 0;
    }
  }
  // The model's logits buffer holds (B, vocab); the first S rows are the real sequences.
  *logits = model_.logits(S);
  return true;
}

}  // namespace c8
