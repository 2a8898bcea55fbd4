#include "c8/kv/kv_cache.h"

#include <cmath>
#include <string>

namespace c8 {

Result<std::unique_ptr<KvCache>> KvCache::Create(Backend& backend, const KvCacheSpec& spec,
                                                 const std::vector<KvLayerConfig>& layers) {
  if (static_cast<int64_t>(layers.size()) != spec.num_layers) {
    return Error("KV cache: " + std::to_string(layers.size()) + " layer configs for " +
                 std::to_string(spec.num_layers) + " layers");
  }
  if (spec.block_size <= 0 || spec.block_size % 16 != 0) {
    return Error("KV cache: block size must be a positive multiple of 16, got " +
                 std::to_string(spec.block_size));
  }
  if (spec.num_blocks <= 0) return Error("KV cache: no memory for even one block");
  std::unique_ptr<KvCache> cache(new KvCache(backend, spec));
  const int64_t channels = spec.num_kv_heads * spec.head_dim;
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    const KvLayerConfig& lc = layers[l];
    KvLayerView v;
    v.dtype = lc.dtype;
    v.v_dtype = spec.VDType(lc.dtype);
    const size_t bytes =
        static_cast<size_t>(spec.num_blocks * spec.ElementsPerBlock()) * KvDTypeSize(lc.dtype);
    const size_t v_bytes =
        static_cast<size_t>(spec.num_blocks * spec.VElementsPerBlock()) * KvDTypeSize(v.v_dtype);
    v.k = backend.Malloc(bytes);
    v.v = backend.Malloc(v_bytes);
    if (!v.k || !v.v) {
      return Error("KV cache: cannot allocate " + std::to_string(bytes + v_bytes) +
                   " bytes for layer " + std::to_string(l));
    }
    cache->allocations_.push_back(v.k);
    cache->allocations_.push_back(v.v);
    if (lc.dtype == KvDType::kInt8) {
      const std::vector<float>* params[4] = {&lc.c8.k_scale, &lc.c8.k_offset, &lc.c8.v_scale,
                                             &lc.c8.v_offset};
      const char* names[4] = {"k_scale", "k_offset", "v_scale", "v_offset"};
      const float* dev[4];
      for (int i = 0; i < 4; ++i) {
        if (i >= 2 && spec.v_16bit) {  // MLA: the rope part is not quantized
          dev[i] = nullptr;
          continue;
        }
        if (static_cast<int64_t>(params[i]->size()) != channels) {
          return Error("KV cache: layer " + std::to_string(l) + " C8 " + names[i] + " has " +
                       std::to_string(params[i]->size()) + " values, expected " +
                       std::to_string(channels));
        }
        Tensor t = backend.UploadF32(params[i]->data(), {channels});
        cache->allocations_.push_back(t.data);
        dev[i] = t.as<float>();
      }
      v.k_scale = dev[0];
      v.k_offset = dev[1];
      v.v_scale = dev[2];
      v.v_offset = dev[3];
    }
    cache->views_.push_back(v);
  }
  return cache;
}

KvCache::~KvCache() {
  for (void* p : allocations_) backend_.Free(p);
}

int64_t KvCache::BytesPerToken() const {
  int64_t total = 0;
  for (const auto& v : views_) {
    total += spec_.LayerBytesPerToken(v.dtype);
  }
  return total;
}

}  // namespace c8
