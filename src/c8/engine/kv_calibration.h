// C8 calibration: per-channel min/max of K (after RoPE and QK-norm) and V of every layer
// over calibration text, turned into static scales and offsets.
//   asymmetric: scale = (max - min) / 255, offset = -128 - min / scale   (min -> -128, max -> 127)
//   symmetric:  scale = max(|min|, |max|) / 127, offset = 0              (ModelSlim's recipe)
#pragma once

#include <vector>

#include "c8/engine/model_bundle.h"
#include "c8/formats/c8_checkpoint.h"

namespace c8 {

struct KvRangeStats {
  // (num_layers, channels) each.
  std::vector<std::vector<float>> k_min, k_max, v_min, v_max;
  int64_t tokens = 0;

  void Init(int64_t layers, int64_t channels);
  void Observe(int64_t layer, const float* k, const float* v, int64_t T, int64_t channels);
};

C8LayerScales ScalesFromRange(const std::vector<float>& k_min, const std::vector<float>& k_max,
                              const std::vector<float>& v_min, const std::vector<float>& v_max,
                              bool symmetric);

struct CalibrationOptions {
  int64_t seq_len = 512;   // tokens per calibration sequence
  int64_t max_tokens = 0;  // 0 = all of the text
  bool symmetric = false;
  ProgressFn progress;
};

// The calibration text cut to options.max_tokens and the sequence length (options.seq_len, at
// most max_model_len); errors when the text is empty or one sequence does not fit the cache.
struct CalibrationText {
  std::vector<int32_t> tokens;
  int64_t seq_len = 0;
};
Result<CalibrationText> PrepareCalibration(Executor& ex, const std::vector<int32_t>& tokens,
                                           const CalibrationOptions& options);

// Prefills `tokens` as independent sequences of `seq_len` tokens (the last one shorter) through
// every rank's own cache (blocks 1..), logits discarded, for calibration observers; reports
// progress per sequence under `label`. Stops at the first failing sequence.
Status PrefillForCalibration(Executor& ex, const std::vector<int32_t>& tokens, int64_t seq_len,
                             const ProgressFn& progress, const std::string& label);

// Runs the model over `tokens` (split into sequences of seq_len) and returns per-layer scales.
Result<std::vector<C8LayerScales>> CalibrateKv(ModelBundle& bundle,
                                               const std::vector<int32_t>& tokens,
                                               const CalibrationOptions& options,
                                               KvRangeStats* stats_out = nullptr);

}  // namespace c8
