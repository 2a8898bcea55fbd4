// Rotary position embedding tables (rotate-half convention, as Hugging Face models use),
// with the rope_scaling types of formats/model_config.h.
#pragma once

#include <vector>

#include "c8/formats/model_config.h"

namespace c8 {

// Inverse frequencies (head_dim / 2) and the attention factor applied to cos/sin.
struct RopeFrequencies {
  std::vector<float> inv_freq;
  float attention_factor = 1.0f;
};

RopeFrequencies ComputeRopeFrequencies(const ModelConfig& config);

// (max_positions, head_dim) = [cos (D/2) | sin (D/2)] per position, times attention_factor.
std::vector<float> BuildRopeTable(const ModelConfig& config, int64_t max_positions);

}  // namespace c8
