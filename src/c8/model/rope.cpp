#include "c8/model/rope.h"

#include <algorithm>
#include <cmath>

namespace c8 {

RopeFrequencies ComputeRopeFrequencies(const ModelConfig& c) {
  const int64_t dim = c.head_dim;
  const double base = c.rope_theta;
  const RopeScaling& rs = c.rope_scaling;
  RopeFrequencies out;
  out.inv_freq.resize(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) {
    // Computed in float32 as transformers does, so tables match bit for bit where possible.
    float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    out.inv_freq[i] = 1.0f / std::pow(static_cast<float>(base), exponent);
  }
  switch (rs.type) {
    case RopeScaling::Type::kNone:
      break;
    case RopeScaling::Type::kLinear:
      for (float& f : out.inv_freq) f = f / static_cast<float>(rs.factor);
      break;
    case RopeScaling::Type::kLlama3: {
      const double old_len = static_cast<double>(rs.original_max_position_embeddings);
      const double low_wavelen = old_len / rs.low_freq_factor;
      const double high_wavelen = old_len / rs.high_freq_factor;
      for (float& f : out.inv_freq) {
        const float wavelen = static_cast<float>(2 * M_PI) / f;
        float scaled = wavelen > low_wavelen ? f / static_cast<float>(rs.factor) : f;
        const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        if (medium) {
          const float smooth = static_cast<float>((old_len / wavelen - rs.low_freq_factor) /
                                                  (rs.high_freq_factor - rs.low_freq_factor));
          scaled = (1 - smooth) * scaled / static_cast<float>(rs.factor) + smooth * scaled;
        }
        f = scaled;
      }
      break;
    }
    case RopeScaling::Type::kYarn: {
      const double factor = rs.factor;
      auto get_mscale = [](double scale, double m) {
        return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
      };
      double attention = rs.attention_factor;
      if (attention <= 0) {
        attention = (rs.mscale != 0 && rs.mscale_all_dim != 0)
                        ? get_mscale(factor, rs.mscale) / get_mscale(factor, rs.mscale_all_dim)
                        : get_mscale(factor, 1.0);
      }
      out.attention_factor = static_cast<float>(attention);
      const double orig = rs.original_max_position_embeddings > 0
                              ? static_cast<double>(rs.original_max_position_embeddings)
                              : static_cast<double>(c.max_position_embeddings);
      auto correction_dim = [&](double rotations) {
        return (dim * std::log(orig / (rotations * 2 * M_PI))) / (2 * std::log(base));
      };
      double low = correction_dim(rs.beta_fast), high = correction_dim(rs.beta_slow);
      if (rs.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, static_cast<double>(dim - 1));
      if (low == high) high += 0.001;
      for (int64_t i = 0; i < dim / 2; ++i) {
        const float pos_freq =
            std::pow(static_cast<float>(base), static_cast<float>(2 * i) / static_cast<float>(dim));
        const float extrap = 1.0f / pos_freq;
        const float interp = 1.0f / (static_cast<float>(factor) * pos_freq);
        float ramp = static_cast<float>((static_cast<double>(i) - low) / (high - low));
        ramp = std::clamp(ramp, 0.0f, 1.0f);
        const float extrap_factor = 1.0f - ramp;
        out.inv_freq[i] = interp * (1 - extrap_factor) + extrap * extrap_factor;
      }
      break;
    }
  }
  return out;
}

std::vector<float> BuildRopeTable(const ModelConfig& c, int64_t max_positions) {
  const RopeFrequencies f = ComputeRopeFrequencies(c);
  const int64_t D = c.head_dim, half = D / 2;
  std::vector<float> table(static_cast<size_t>(max_positions * D));
  for (int64_t p = 0; p < max_positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * f.inv_freq[i];
      table[p * D + i] = std::cos(angle) * f.attention_factor;
      table[p * D + half + i] = std::sin(angle) * f.attention_factor;
    }
  }
  return table;
}

}  // namespace c8
