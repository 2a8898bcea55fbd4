// C8 KV-cache parameters stored in a checkpoint, ModelSlim layout:
//   <dir>/quant_model_description.json with "kv_cache_type": "C8" (older: "kv_quant_type"),
//   tensors model.layers.N.self_attn.{k,v}_proj.kv_cache_{scale,offset}.
// Layer selection: if the description names any layer's k_proj.kv_cache_scale, exactly those
// layers are C8 (the others stay 16-bit); otherwise kv_cache_type C8 makes every layer C8.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "c8/formats/model_config.h"
#include "c8/formats/safetensors.h"
#include "c8/util/status.h"

namespace c8 {

// Per-channel parameters of one layer, each (num_kv_heads * head_dim) fp32
// (a per-tensor value in the checkpoint is broadcast).
struct C8LayerScales {
  std::vector<float> k_scale, k_offset, v_scale, v_offset;
  // MLA only (calibration output): the absorbed query's per-head scale (ModelSlim fa_q.scale);
  // its presence makes WriteC8ModelDir write the FAKQuant layout.
  std::vector<float> q_scale;
};

struct C8Checkpoint {
  bool present = false;                              // the description asks for C8 at all
  std::vector<std::optional<C8LayerScales>> layers;  // (num_layers): nullopt = 16-bit layer
  int64_t num_c8_layers() const;
};

std::string C8TensorName(int64_t layer, char kv /*'k' or 'v'*/, const char* what /*scale|offset*/);

// Reads the description (absent file: present = false) and, when C8, every layer's
// tensors with validation: finite, scale > 0, length num_kv_heads * head_dim or 1.
Result<C8Checkpoint> LoadC8Checkpoint(const std::string& model_dir, const ModelConfig& config,
                                      const WeightStore& weights);

}  // namespace c8
