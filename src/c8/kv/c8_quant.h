// The C8 contract (../shared/DESIGN.md), host reference:
//   quantize:   q = clamp(round_half_even(x / scale + offset), -128, 127)
//   dequantize: x = (q - offset) * scale
#pragma once

#include <cmath>
#include <cstdint>

namespace c8 {

inline int8_t QuantizeC8(float x, float scale, float offset) {
  float y = x / scale + offset;
  // nearbyint rounds half to even in the default rounding mode; NaN maps to 0.
  float r = std::nearbyint(y);
  if (!(r == r)) r = 0.0f;
  if (r < -128.0f) r = -128.0f;
  if (r > 127.0f) r = 127.0f;
  return static_cast<int8_t>(r);
}

inline float DequantizeC8(int8_t q, float scale, float offset) {
  return (static_cast<float>(q) - offset) * scale;
}

}  // namespace c8
