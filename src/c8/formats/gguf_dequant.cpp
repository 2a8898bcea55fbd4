// ggml block formats -> float32. See gguf_dequant.h for the block layouts.
#include "c8/formats/gguf_dequant.h"

#include <cstring>

#include "c8/util/bf16.h"

namespace c8 {
namespace {

constexpr int kQK = 32;    // elements per block of the legacy quants
constexpr int kQKK = 256;  // elements per K-quant super-block

inline float LoadF16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

void DeqF32(const uint8_t* src, int64_t n, float* y) {
  std::memcpy(y, src, n * sizeof(float));
}

void DeqF16(const uint8_t* src, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = LoadF16(src + 2 * i);
}

void DeqBF16(const uint8_t* src, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    y[i] = Bf16ToF32(h);
  }
}

// Q4_0: d | qs[16]
void DeqQ4_0(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 18, y += kQK) {
    const float d = LoadF16(b);
    const uint8_t* qs = b + 2;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
      y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

// Q4_1: d | m | qs[16]
void DeqQ4_1(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 20, y += kQK) {
    const float d = LoadF16(b);
    const float m = LoadF16(b + 2);
    const uint8_t* qs = b + 4;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
      y[j + kQK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

// Q5_0: d | qh[4] (bit j = 5th bit of element j) | qs[16]
void DeqQ5_0(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 22, y += kQK) {
    const float d = LoadF16(b);
    uint32_t qh;
    std::memcpy(&qh, b + 2, 4);
    const uint8_t* qs = b + 6;
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = (qh >> j) & 1;
      const int h1 = (qh >> (j + kQK / 2)) & 1;
      y[j] = static_cast<float>(((qs[j] & 0x0F) | (h0 << 4)) - 16) * d;
      y[j + kQK / 2] = static_cast<float>(((qs[j] >> 4) | (h1 << 4)) - 16) * d;
    }
  }
}

// Q5_1: d | m | qh[4] | qs[16]
void DeqQ5_1(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 24, y += kQK) {
    const float d = LoadF16(b);
    const float m = LoadF16(b + 2);
    uint32_t qh;
    std::memcpy(&qh, b + 4, 4);
    const uint8_t* qs = b + 8;
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = (qh >> j) & 1;
      const int h1 = (qh >> (j + kQK / 2)) & 1;
      y[j] = static_cast<float>((qs[j] & 0x0F) | (h0 << 4)) * d + m;
      y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) | (h1 << 4)) * d + m;
    }
  }
}

// Q8_0: d | int8 qs[32]
void DeqQ8_0(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 34, y += kQK) {
    const float d = LoadF16(b);
    const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(qs[j]) * d;
  }
}

// Q2_K: scales[16] (low nibble scale, high nibble min) | qs[64] | d | dmin.
// Element e = h*128 + s*32 + l (h half, s 2-bit shift index, l < 32) is
// (qs[h*32 + l] >> 2s) & 3, in 16-element group e/16.
void DeqQ2_K(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 84, y += kQKK) {
    const uint8_t* scales = b;
    const uint8_t* qs = b + 16;
    const float d = LoadF16(b + 80);
    const float dmin = LoadF16(b + 82);
    for (int e = 0; e < kQKK; ++e) {
      const int h = e / 128, s = (e / 32) % 4, l = e % 32;
      const uint8_t sc = scales[e / 16];
      const float dl = d * static_cast<float>(sc & 0x0F);
      const float ml = dmin * static_cast<float>(sc >> 4);
      const int q = (qs[h * 32 + l] >> (2 * s)) & 3;
      y[e] = dl * static_cast<float>(q) - ml;
    }
  }
}

// Q3_K: hmask[32] | qs[64] | scales[12] (16 packed 6-bit values, offset 32) | d.
// Element e (h, s, l as in Q2_K): low bits (qs[h*32 + l] >> 2s) & 3; minus 4 unless bit e/32
// of hmask[l] is set.
void DeqQ3_K(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 110, y += kQKK) {
    const uint8_t* hmask = b;
    const uint8_t* qs = b + 32;
    const uint8_t* sc = b + 96;
    const float d = LoadF16(b + 108);
    int scales[16];
    for (int k = 0; k < 16; ++k) {
      const int lo = k < 8 ? (sc[k] & 0x0F) : (sc[k - 8] >> 4);
      const int hi = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
      scales[k] = (lo | (hi << 4)) - 32;
    }
    for (int e = 0; e < kQKK; ++e) {
      const int h = e / 128, s = (e / 32) % 4, l = e % 32;
      const int lowq = (qs[h * 32 + l] >> (2 * s)) & 3;
      const int high = (hmask[l] >> (e / 32)) & 1;
      const int q = lowq - (high ? 0 : 4);
      const float dl = d * static_cast<float>(scales[e / 16]);
      y[e] = dl * static_cast<float>(q);
    }
  }
}

// 8 packed 6-bit (scale, min) pairs of Q4_K/Q5_K:
//   j < 4: sc = s[j] & 63, m = s[j+4] & 63
//   j >= 4: sc = (s[j+4] & 15) | ((s[j-4] >> 6) << 4), m = (s[j+4] >> 4) | ((s[j] >> 6) << 4)
inline void ScaleMinK4(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K: d | dmin | scales[12] | qs[128]. Element e = c*64 + n*32 + l (c chunk, n nibble) is
// (qs[c*32 + l] >> 4n) & 15, in 32-element sub-block e/32.
void DeqQ4_K(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 144, y += kQKK) {
    const float d = LoadF16(b);
    const float dmin = LoadF16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qs = b + 16;
    for (int sb = 0; sb < 8; ++sb) {
      int sc, m;
      ScaleMinK4(sb, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      const int c = sb / 2, n = sb % 2;
      for (int l = 0; l < 32; ++l) {
        const int q = (qs[c * 32 + l] >> (4 * n)) & 0x0F;
        y[sb * 32 + l] = d1 * static_cast<float>(q) - m1;
      }
    }
  }
}

// Q5_K: d | dmin | scales[12] | qh[32] | qs[128]. As Q4_K plus a 5th bit: bit e/32 of qh[l].
void DeqQ5_K(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 176, y += kQKK) {
    const float d = LoadF16(b);
    const float dmin = LoadF16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + 48;
    for (int sb = 0; sb < 8; ++sb) {
      int sc, m;
      ScaleMinK4(sb, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      const int c = sb / 2, n = sb % 2;
      for (int l = 0; l < 32; ++l) {
        const int q = ((qs[c * 32 + l] >> (4 * n)) & 0x0F) | (((qh[l] >> sb) & 1) << 4);
        y[sb * 32 + l] = d1 * static_cast<float>(q) - m1;
      }
    }
  }
}

// Q6_K: ql[128] | qh[64] | int8 scales[16] | d. Element e = h*128 + r (r < 128):
// low 4 bits (ql[h*64 + r%64] >> 4*(r/64)) & 15, high 2 bits (qh[h*32 + r%32] >> 2*(r/32)) & 3,
// q - 32 scaled by d * scales[e/16].
void DeqQ6_K(const uint8_t* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, b += 210, y += kQKK) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
    const float d = LoadF16(b + 208);
    for (int e = 0; e < kQKK; ++e) {
      const int h = e / 128, r = e % 128;
      const int lo = (ql[h * 64 + r % 64] >> (4 * (r / 64))) & 0x0F;
      const int hi = (qh[h * 32 + r % 32] >> (2 * (r / 32))) & 3;
      const int q = (lo | (hi << 4)) - 32;
      const float dl = d * static_cast<float>(scales[e / 16]);
      y[e] = dl * static_cast<float>(q);
    }
  }
}

using DeqFn = void (*)(const uint8_t*, int64_t, float*);

// For block types the second argument is the block count, for F32/F16/BF16 the element count.
DeqFn GetDeqFn(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32:
      return DeqF32;
    case GgmlType::kF16:
      return DeqF16;
    case GgmlType::kBF16:
      return DeqBF16;
    case GgmlType::kQ4_0:
      return DeqQ4_0;
    case GgmlType::kQ4_1:
      return DeqQ4_1;
    case GgmlType::kQ5_0:
      return DeqQ5_0;
    case GgmlType::kQ5_1:
      return DeqQ5_1;
    case GgmlType::kQ8_0:
      return DeqQ8_0;
    case GgmlType::kQ2_K:
      return DeqQ2_K;
    case GgmlType::kQ3_K:
      return DeqQ3_K;
    case GgmlType::kQ4_K:
      return DeqQ4_K;
    case GgmlType::kQ5_K:
      return DeqQ5_K;
    case GgmlType::kQ6_K:
      return DeqQ6_K;
    default:
      return nullptr;
  }
}

}  // namespace

bool CanDequantize(uint32_t type) {
  return GetDeqFn(type) != nullptr;
}

Status DequantizeRow(uint32_t type, const void* src, int64_t n, float* dst) {
  const GgmlTypeInfo* info = GetGgmlTypeInfo(type);
  if (!info) return Error("unknown GGML type " + std::to_string(type));
  DeqFn fn = GetDeqFn(type);
  if (!fn) return Error(std::string("dequantizing GGML type ") + info->name + " is not supported");
  if (n < 0 || n % info->block_size != 0) {
    return Error("element count " + std::to_string(n) + " is not a multiple of the " + info->name +
                 " block size " + std::to_string(info->block_size));
  }
  fn(static_cast<const uint8_t*>(src), n / info->block_size, dst);
  return Status::Ok();
}

Result<std::vector<float>> DequantizeTensor(const GgufFile& file, const GgufTensorInfo& t) {
  const std::string what = file.path() + ": tensor '" + t.name + "'";
  const GgmlTypeInfo* info = GetGgmlTypeInfo(t.type);
  if (!info) return Error(what + ": unknown GGML type " + std::to_string(t.type));
  const int64_t n = t.NumElements();
  if (static_cast<uint64_t>(n / info->block_size * info->type_size) != t.nbytes) {
    return Error(what + ": byte size " + std::to_string(t.nbytes) + " does not match its shape");
  }
  std::vector<float> out(static_cast<size_t>(n));
  Status st = DequantizeRow(t.type, t.data, n, out.data());
  if (!st.ok()) return st.WithContext(what);
  return out;
}

}  // namespace c8
