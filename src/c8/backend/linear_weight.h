// The weight of one linear layer as the backends see it: 16-bit (or fp32) values, or int8 with
// the scales that turn int32 accumulators back into activations (ModelSlim W8A8 / W8A8_DYNAMIC,
// ../shared/reference/next-wave-facts.md section A). The model calls Backend::Linear the same
// way for every format; the backend picks the kernel from `quant`.
//
//   kNone        y = x w^T (+ bias)
//   kW8A8Static  x_q = clamp(round_half_even(x / input_scale + input_offset), -128, 127)
//                (per-tensor activation quantization), acc = x_q w_q^T (int32),
//                y = acc * scale[n] + shift[n] (+ bias)
//                scale = deq_scale = input_scale * weight_scale; shift = quant_bias * deq_scale
//                (the checkpoint's int32 quant_bias, which folds the float bias and the
//                zero-point correction -input_offset * sum_k w_q[n, k]; under tensor
//                parallelism each rank's shift carries its own columns' correction)
//   kW8A8Dynamic s_t = max_k |x[t, k]| / 127 (per token, symmetric), x_q = round_half_even(
//                x / s_t), y = acc * scale[n] * s_t (+ bias); scale = weight_scale
#pragma once

#include <cstdint>

#include "c8/backend/tensor.h"

namespace c8 {

enum class LinearQuant : uint8_t { kNone, kW8A8Static, kW8A8Dynamic };

const char* LinearQuantName(LinearQuant q);

struct LinearWeight {
  Tensor w;  // (N, K): the backend's weight dtype (kNone) or int8
  LinearQuant quant = LinearQuant::kNone;
  Tensor scale;  // (N) fp32: deq_scale (static) or weight_scale (dynamic)
  Tensor shift;  // (N) fp32 (static): quant_bias * deq_scale for this rank's columns
  float input_scale = 1.0f, input_offset = 0.0f;  // static activation quantization

  LinearWeight() = default;
  // A 16-bit weight (implicit: every plain weight is a LinearWeight).
  LinearWeight(const Tensor& t) : w(t) {}  // NOLINT(google-explicit-constructor)

  bool quantized() const { return quant != LinearQuant::kNone; }
};

inline const char* LinearQuantName(LinearQuant q) {
  switch (q) {
    case LinearQuant::kNone:
      return "FLOAT";
    case LinearQuant::kW8A8Static:
      return "W8A8";
    case LinearQuant::kW8A8Dynamic:
      return "W8A8_DYNAMIC";
  }
  return "?";
}

// The activation quantization of W8A8 (the CPU reference; kernels must match it bit for bit on
// the same fp32 input): round half to even, then clamp.
inline int8_t QuantizeActivation(float x, float inv_scale, float offset) {
  float q = __builtin_nearbyintf(x * inv_scale + offset);
  q = q < -128.0f ? -128.0f : (q > 127.0f ? 127.0f : q);
  return static_cast<int8_t>(q);
}

}  // namespace c8
