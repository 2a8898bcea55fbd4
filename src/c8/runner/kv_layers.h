// The KV dtype (and C8 parameters) of every layer, resolved from the checkpoint and the
// --kv-cache-dtype flag, for the whole model (workers slice their own heads).
#pragma once

#include <string>
#include <vector>

#include "c8/formats/model_config.h"
#include "c8/kv/kv_cache.h"

namespace c8 {

// `want` is auto (the checkpoint's C8 layers int8, others bf16), bf16, fp32 (all layers) or
// int8 (the checkpoint's C8 layers; an error without scales). With dummy weights (no
// checkpoint) int8 gets synthetic per-channel scales.
Result<std::vector<KvLayerConfig>> ResolveKvLayers(const std::string& model_dir,
                                                   const ModelConfig& config,
                                                   const std::string& want,
                                                   bool dummy_weights = false);

}  // namespace c8
