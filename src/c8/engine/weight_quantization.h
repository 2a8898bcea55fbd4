// `c8 quantize`'s engine side: calibrates every linear's input per channel over calibration
// text, plans SmoothQuant (moves activation outliers into the weights: per input channel j,
// s_j = max|X_j|^alpha / max|W_:j|^(1 - alpha); X' = X / s folded into the preceding op: the
// RMSNorm weight (and bias) before q|k|v and gate|up, the v_proj rows before o_proj (one scale
// per KV channel, shared by its GQA group), the up_proj rows before down_proj; W' = W * s) and
// the static activation ranges after it, then writes the ModelSlim checkpoint
// (formats/modelslim_writer.h). With C8 the KV scales are calibrated on the quantized model
// itself (the K/V it will serve) and written into the same checkpoint (W8A8C8).
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include "c8/engine/kv_calibration.h"
#include "c8/engine/model_bundle.h"
#include "c8/formats/modelslim_writer.h"

namespace c8 {

// Per-channel min / max of the input of each linear site of each layer: site 0 (q|k|v), 1
// (o_proj), 2 (gate|up), 3 (down_proj).
struct ActivationStats {
  struct Channels {
    std::vector<float> min, max;
  };
  std::vector<std::array<Channels, 4>> layers;
};

// Runs the model over `tokens` (sequences of options.seq_len, prefill only). One rank only.
Result<ActivationStats> CalibrateActivations(ModelBundle& bundle,
                                             const std::vector<int32_t>& tokens,
                                             const CalibrationOptions& options);

// Fills options->ranges (every quantized linear's input range, after smoothing) and, for
// alpha > 0, the smoothing scales and replaced norm weights. `src`: the 16-bit weights.
Status PlanQuantization(const ActivationStats& stats, const WeightStore& src,
                        const ModelConfig& config, float alpha, ModelSlimWriteOptions* options);

}  // namespace c8
