// The KV dtype (and C8 parameters) of every layer, resolved from the checkpoint and the
// --kv-cache-dtype flag, for the whole model (workers slice their own heads).
#pragma once

#include <string>
#include <vector>

#include "c8/formats/model_config.h"
#include "c8/kv/kv_cache.h"

namespace c8 {

// The cache geometry of `config` for a rank holding `num_kv_heads` KV heads.
inline KvCacheSpec MakeKvCacheSpec(const ModelConfig& config, int64_t num_kv_heads,
                                   int64_t block_size, int64_t num_blocks) {
  KvCacheSpec spec;
  spec.num_layers = config.num_layers;
  spec.num_kv_heads = num_kv_heads;
  spec.head_dim = config.head_dim;
  spec.v_head_dim = config.cache_v_dim();
  spec.v_16bit = config.is_mla();
  spec.block_size = block_size;
  spec.num_blocks = num_blocks;
  return spec;
}

// `want` is auto (the checkpoint's C8 layers int8, others bf16), bf16, fp32 (all layers) or
// int8 (the checkpoint's C8 layers; an error without scales). With dummy weights (no
// checkpoint) int8 gets synthetic per-channel scales.
Result<std::vector<KvLayerConfig>> ResolveKvLayers(const std::string& model_dir,
                                                   const ModelConfig& config,
                                                   const std::string& want,
                                                   bool dummy_weights = false);

}  // namespace c8
