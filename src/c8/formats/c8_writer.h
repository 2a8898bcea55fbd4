// Writes a C8 model directory from a source model directory and calibrated scales:
//   - every source file linked (symlink), weights never copied;
//   - kv_cache_scales.safetensors with the four fp32 C8 tensors of every layer (MLA scales,
//     those with a q_scale: ModelSlim's fa_q / fa_k / fa_v scales and int8 offsets);
//   - model.safetensors.index.json mapping every tensor to its file;
//   - quant_model_description.json in the ModelSlim layout ("kv_cache_type": "C8", every
//     tensor listed with its type: "FLOAT" or "C8"; MLA: "fa_quant_type": "FAKQuant" and the
//     fa tensors typed "FAQuant").
#pragma once

#include <map>
#include <string>
#include <vector>

#include "c8/formats/c8_checkpoint.h"
#include "c8/formats/safetensors.h"

namespace c8 {

Status WriteC8ModelDir(const std::string& src_dir, const std::string& out_dir,
                       const WeightStore& weights, const std::vector<C8LayerScales>& scales,
                       const std::map<std::string, std::string>& metadata);

}  // namespace c8
