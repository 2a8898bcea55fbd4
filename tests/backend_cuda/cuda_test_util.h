// Helpers of the CUDA backend tests: backend creation (tests skip without a device), bf16
// uploads with the host fp32 copy the CPU reference gets, and normalized errors.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "c8/backend/cuda/cuda_backend.h"
#include "c8/util/bf16.h"

namespace c8::testing {

// Null (and the test skipped by the caller's GTEST_SKIP) when no CUDA device is present.
inline std::unique_ptr<CudaBackend> MakeCudaBackend(std::string* why) {
  auto r = CreateCudaBackend();
  if (!r.ok()) {
    *why = r.message();
    return nullptr;
  }
  return std::unique_ptr<CudaBackend>(static_cast<CudaBackend*>(std::move(r).value().release()));
}

#define C8_CUDA_BACKEND_OR_SKIP(var)                                              \
  std::string _why;                                                               \
  std::unique_ptr<::c8::CudaBackend> var = ::c8::testing::MakeCudaBackend(&_why); \
  if (!var) GTEST_SKIP() << "no CUDA device: " << _why

// Random values rounded to bf16 (so the CPU reference sees exactly what the GPU sees).
inline std::vector<float> RandomBf16Values(size_t n, std::mt19937& rng, float stddev = 1.0f,
                                           float mean = 0.0f) {
  std::normal_distribution<float> nd(mean, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = Bf16ToF32(F32ToBf16(nd(rng)));
  return v;
}

inline std::vector<uint16_t> ToBf16Bits(const std::vector<float>& v) {
  std::vector<uint16_t> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = F32ToBf16(v[i]);
  return b;
}

// Device bf16 tensor holding `v` (already bf16-exact).
inline Tensor UploadBf16(Backend& b, const std::vector<float>& v,
                         std::initializer_list<int64_t> shape) {
  Tensor t(nullptr, DType::kBF16, shape);
  t.data = b.Malloc(t.nbytes());
  std::vector<uint16_t> bits = ToBf16Bits(v);
  b.CopyToDevice(t.data, bits.data(), t.nbytes());
  return t;
}

// Device tensor of `shape` filled with 0xFF bytes (bf16/fp32 NaN) so unwritten outputs show.
inline Tensor Poisoned(Backend& b, DType dt, std::initializer_list<int64_t> shape) {
  Tensor t(nullptr, dt, shape);
  t.data = b.Malloc(t.nbytes());
  b.Memset(t.data, 0xFF, t.nbytes());
  return t;
}

inline std::vector<float> Download(Backend& b, const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  b.ToHostF32(t, v.data());
  return v;
}

// ||got - ref|| / ||ref||; any NaN in `got` gives +inf.
inline double RelErr(const std::vector<float>& got, const std::vector<float>& ref) {
  double e = 0, r = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(got[i])) return INFINITY;
    e += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    r += double(ref[i]) * ref[i];
  }
  return std::sqrt(e / (r > 0 ? r : 1));
}

}  // namespace c8::testing
