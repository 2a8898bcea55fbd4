// `c8 quantize`'s engine side: calibrates the input range of every linear of a 16-bit model
// over calibration text (for static W8A8), then writes the ModelSlim checkpoint
// (formats/modelslim_writer.h); with C8 the KV scales are calibrated on the quantized model
// itself (the K/V it will serve) and written into the same checkpoint (W8A8C8).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "c8/engine/kv_calibration.h"
#include "c8/engine/model_bundle.h"
#include "c8/formats/modelslim_writer.h"

namespace c8 {

// Min / max of every linear's input over `tokens` (sequences of options.seq_len, prefill
// only), keyed by linear prefix (q, k and v share theirs; gate and up too). One rank only.
Result<std::map<std::string, ActivationRange>> CalibrateActivations(
    ModelBundle& bundle, const std::vector<int32_t>& tokens, const CalibrationOptions& options);

}  // namespace c8
