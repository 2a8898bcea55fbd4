// Writes a ModelSlim W8A8 / W8A8_DYNAMIC checkpoint (../shared/reference/next-wave-facts.md
// A.1-A.4) from a 16-bit Hugging Face directory: the 7 linears of every decoder layer
// quantized (per-channel symmetric int8 weights), everything else FLOAT in its own dtype, all
// in quant_model_weights.safetensors with quant_model_description.json beside it; other files
// of the source (config, tokenizer, generation config) copied. Optionally the C8 KV-cache
// tensors (kv_cache_type C8), which makes it a W8A8C8 checkpoint.
//
// Smoothing (optional, options.column_scale / row_scale / overrides) is applied to the float
// weights first; the checkpoint stays an ordinary ModelSlim one (the scales live in the norm
// weights, v_proj and up_proj rows, as anti-outlier smoothing leaves them).
//
// W8A8 (static) per linear: weight I8 (out, in); input_scale, input_offset F32 (1) from the
// calibrated input range [lo, hi] (lo <= 0 <= hi): scale = (hi - lo) / 255, offset = -128 -
// round(lo / scale) (asymmetric min/max); deq_scale (out) = input_scale * weight_scale, F32 for
// bf16 / fp32 models and I64 holding the float32 bits for fp16 models; quant_bias I32 (out) =
// round(bias / deq - offset * sum_k W_q); the float bias, when the layer has one, stays as a
// FLOAT tensor. W8A8_DYNAMIC: weight I8, weight_scale F32 (out, 1), weight_offset F32 zeros.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "c8/formats/c8_checkpoint.h"
#include "c8/formats/model_config.h"
#include "c8/formats/safetensors.h"
#include "c8/util/status.h"

namespace c8 {

// Input range of one linear layer's activations.
struct ActivationRange {
  float lo = 0.0f, hi = 0.0f;
};

struct ModelSlimWriteOptions {
  // "W8A8", "W8A8_DYNAMIC", or "W8A8_MIX": attention linears static, MLP linears dynamic (the
  // msModelSlim DeepSeek recipe; model_quant_type W8A8_DYNAMIC, per-tensor types tell which).
  std::string scheme;
  // W8A8: the input range of every linear, by its prefix ("model.layers.0.self_attn.q_proj").
  std::map<std::string, ActivationRange> ranges;
  // SmoothQuant (migrating activation outliers into the weights, applied before quantizing):
  // W[n, k] *= column_scale[prefix][k]; W[n, :] *= row_scale[prefix][n] (its bias too);
  // `overrides` replace FLOAT tensors (e.g. norm weights divided by the smoothing scales),
  // written as F32.
  std::map<std::string, std::vector<float>> column_scale, row_scale, overrides;
  // Per-layer C8 KV scales (empty: no C8 KV cache).
  std::vector<C8LayerScales> kv_scales;
  std::map<std::string, std::string> metadata;  // safetensors __metadata__
  bool overwrite = false;                       // out_dir may exist (files are replaced)
};

// The 7 quantized linears of a decoder layer, in writing order.
std::vector<std::string> QuantizedLinearNames(int64_t layer);

Status WriteModelSlimCheckpoint(const std::string& src_dir, const std::string& out_dir,
                                const ModelConfig& config, const WeightStore& src,
                                const ModelSlimWriteOptions& options);

}  // namespace c8
