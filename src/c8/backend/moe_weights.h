// Weights of a mixture-of-experts MLP (DeepSeek V2 / V3) as the backend ops see them.
#pragma once

#include <cstdint>
#include <vector>

#include "c8/backend/linear_weight.h"
#include "c8/backend/tensor.h"
#include "c8/formats/model_config.h"

namespace c8 {

// The router: logits = x . weight^T in fp32, then MoeConfig's scoring and top-k rule.
struct MoeRouter {
  Tensor weight;  // (E, H) fp32
  Tensor bias;    // (E) fp32 e_score_correction_bias (noaux_tc), or empty
  MoeConfig config;
};

// Routed experts: expert e computes down_e(silu(gate_e x) * up_e x).
struct MoeExpertWeights {
  std::vector<LinearWeight> gate_up;  // E x (2 I, H): gate rows | up rows
  std::vector<LinearWeight> down;     // E x (H, I)
  int64_t intermediate = 0;           // I
};

}  // namespace c8
