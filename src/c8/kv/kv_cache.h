// The paged KV cache storage of one model on one backend: per layer, K and V blocks in
// that layer's dtype (16-bit or C8 int8, chosen at run time per layer) plus, for C8
// layers, the static per-channel scales and offsets.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "c8/backend/backend.h"
#include "c8/kv/kv_cache_spec.h"

namespace c8 {

// C8 parameters of one layer, (num_kv_heads * head_dim) each, host fp32.
struct C8LayerParams {
  std::vector<float> k_scale, k_offset, v_scale, v_offset;
};

struct KvLayerConfig {
  KvDType dtype = KvDType::kBF16;
  C8LayerParams c8;  // used when dtype == kInt8
};

class KvCache {
 public:
  // layers.size() must equal spec.num_layers.
  static Result<std::unique_ptr<KvCache>> Create(Backend& backend, const KvCacheSpec& spec,
                                                 const std::vector<KvLayerConfig>& layers);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  const KvCacheSpec& spec() const { return spec_; }
  KvLayerView& layer(int64_t i) { return views_[i]; }
  KvDType layer_dtype(int64_t i) const { return views_[i].dtype; }
  // Bytes of K+V storage for one token in all layers.
  int64_t BytesPerToken() const;
  int64_t TotalBytes() const { return BytesPerToken() * spec_.block_size * spec_.num_blocks; }
  // Unique over the process (never reused): keys what was captured against this cache.
  uint64_t id() const { return id_; }

 private:
  KvCache(Backend& b, const KvCacheSpec& s) : backend_(b), spec_(s) {
    static std::atomic<uint64_t> next{1};
    id_ = next.fetch_add(1);
  }
  uint64_t id_ = 0;
  Backend& backend_;
  KvCacheSpec spec_;
  std::vector<KvLayerView> views_;
  std::vector<void*> allocations_;
};

}  // namespace c8
