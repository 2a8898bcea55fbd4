// Dequantization of ggml tensor data to float32 (reference semantics of ggml's
// dequantize_row_* functions).
//
// Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
// Block layouts (bytes; d/m/dmin are float16 unless noted):
//   Q4_0 [32]:  d | qs[16]                 x = (nibble - 8) * d
//   Q4_1 [32]:  d | m | qs[16]             x = nibble * d + m
//   Q5_0 [32]:  d | qh[4] | qs[16]         x = ((nibble | hbit << 4) - 16) * d
//   Q5_1 [32]:  d | m | qh[4] | qs[16]     x = (nibble | hbit << 4) * d + m
//   Q8_0 [32]:  d | qs[32] (int8)          x = q * d
//   Q2_K [256]: scales[16] | qs[64] | d | dmin
//   Q3_K [256]: hmask[32] | qs[64] | scales[12] | d
//   Q4_K [256]: d | dmin | scales[12] | qs[128]
//   Q5_K [256]: d | dmin | scales[12] | qh[32] | qs[128]
//   Q6_K [256]: ql[128] | qh[64] | scales[16] (int8) | d
// In 32-element blocks nibble j (< 16) is the low half of qs[j], element j + 16 the high half.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "c8/formats/gguf.h"
#include "c8/util/status.h"

namespace c8 {

// True when DequantizeRow supports the ggml type number.
bool CanDequantize(uint32_t type);

// Dequantizes `n` elements starting at `src` into dst[0..n). `n` must be a multiple of the
// type's block size; `src` must hold n / block_size * type_size bytes.
// Errors: unsupported/unknown type, bad n.
Status DequantizeRow(uint32_t type, const void* src, int64_t n, float* dst);

// Dequantizes a whole tensor of a GGUF file (ggml order; row-major [ne[n-1], ..., ne[0]]).
// Errors name the file and the tensor.
Result<std::vector<float>> DequantizeTensor(const GgufFile& file, const GgufTensorInfo& tensor);

}  // namespace c8
