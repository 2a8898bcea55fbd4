// W8A8 linears on the GPU against the CPU backend (itself checked against fp64 in
// tests/backend_cpu/cpu_int8_linear_test.cpp): the same int8 activations, exact int32 sums and
// the same fp32 epilogue, so fp32 outputs agree to the last bit; bf16 outputs to bf16 rounding.
// Shapes cuBLASLt's IMMA takes (K, N multiples of 4), odd ones (the plain kernel), and the
// decode-shaped kernel (K % 64 == 0, up to 128 tokens; split K, row and token tails).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "c8/backend/cpu/cpu_backend.h"
#include "cuda_test_util.h"

namespace c8 {
namespace {

using namespace c8::testing;  // NOLINT

Tensor HostTensor(std::vector<float>& v, std::initializer_list<int64_t> shape) {
  return Tensor(v.data(), DType::kF32, shape);
}

TEST(CudaQuantLinear, MatchesCpuStaticAndDynamic) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(4);
  std::mt19937 rng(21);
  struct Shape {
    int64_t T, K, N;
    LinearQuant quant;
    bool bias, f32_out;
  } shapes[] = {
      {1, 5120, 1024, LinearQuant::kW8A8Static, false, true},
      {7, 576, 320, LinearQuant::kW8A8Dynamic, true, true},
      {64, 1024, 4096, LinearQuant::kW8A8Dynamic, false, true},
      {130, 256, 96, LinearQuant::kW8A8Static, true, true},
      {5, 37, 13, LinearQuant::kW8A8Static, false, true},  // odd: the plain kernel
      {3, 50, 22, LinearQuant::kW8A8Dynamic, true, true},
      {33, 512, 768, LinearQuant::kW8A8Dynamic, false, false},  // bf16 out
      {100, 640, 200, LinearQuant::kW8A8Static, true, true},    // two token chunks, row tail
      {3, 25600, 72, LinearQuant::kW8A8Dynamic, false, true},   // many K splits
      {16, 8192, 5120, LinearQuant::kW8A8Static, false, true},
      {9, 64, 40, LinearQuant::kW8A8Dynamic, true, false},
  };
  std::uniform_int_distribution<int> wd(-127, 127);
  for (const Shape& s : shapes) {
    SCOPED_TRACE(std::string(LinearQuantName(s.quant)) + " T " + std::to_string(s.T) + " K " +
                 std::to_string(s.K) + " N " + std::to_string(s.N));
    std::vector<float> x = RandomBf16Values(s.T * s.K, rng, 2.0f);
    std::vector<int8_t> w(s.N * s.K);
    for (auto& v : w) v = static_cast<int8_t>(wd(rng));
    std::vector<float> scale = RandomBf16Values(s.N, rng, 1e-3f, 3e-3f);
    std::vector<float> shift = RandomBf16Values(s.N, rng, 0.1f);
    std::vector<float> b = RandomBf16Values(s.N, rng);
    LinearWeight hw;
    hw.w = Tensor(w.data(), DType::kI8, {s.N, s.K});
    hw.quant = s.quant;
    hw.scale = HostTensor(scale, {s.N});
    if (s.quant == LinearQuant::kW8A8Static) {
      hw.shift = HostTensor(shift, {s.N});
      hw.input_scale = 0.04f;
      hw.input_offset = -2.0f;
    }
    LinearWeight dw = hw;
    auto up_w = gpu->UploadBytes(w.data(), DType::kI8, {s.N, s.K});
    ASSERT_TRUE(up_w.ok());
    dw.w = *up_w;
    dw.scale = gpu->UploadF32(scale.data(), {s.N});
    if (hw.shift.data) dw.shift = gpu->UploadF32(shift.data(), {s.N});
    auto db = gpu->UploadWeight(b.data(), DType::kF32, {s.N});
    ASSERT_TRUE(db.ok());
    Tensor dx = UploadBf16(*gpu, x, {s.T, s.K});
    Tensor dy = Poisoned(*gpu, s.f32_out ? DType::kF32 : DType::kBF16, {s.T, s.N});
    std::vector<float> y(s.T * s.N);
    Tensor hx = HostTensor(x, {s.T, s.K}), hb = HostTensor(b, {s.N}),
           hy = HostTensor(y, {s.T, s.N});
    cpu.Linear(hx, hw, s.bias ? &hb : nullptr, hy);
    // Decode-shaped kernel on (twice: its split-K workspace must be left zero), then off.
    for (int64_t small_m : {int64_t{128}, int64_t{128}, int64_t{0}}) {
      SCOPED_TRACE("small-M max tokens " + std::to_string(small_m));
      gpu->SetInt8SmallMMaxTokens(small_m);
      gpu->Linear(dx, dw, s.bias ? &db.value() : nullptr, dy);
      const std::vector<float> got = Download(*gpu, dy);
      ASSERT_TRUE(gpu->status().ok()) << gpu->status().message();
      if (s.f32_out) {
        int64_t diff = 0;
        for (size_t i = 0; i < y.size(); ++i) diff += got[i] != y[i];
        EXPECT_EQ(diff, 0) << "fp32 outputs differ from the CPU in " << diff << " of " << y.size();
      } else {
        EXPECT_LT(RelErr(got, y), 4e-3);
      }
    }
    gpu->SetInt8SmallMMaxTokens(8);
    for (void* p : {dw.w.data, dw.scale.data, dw.shift.data, db->data, dx.data, dy.data}) {
      gpu->Free(p);
    }
  }
}

// Decode- and prefill-shaped W8A8 GEMMs at the Qwen3-32B shapes beside bf16 of the same shape:
// int8 weight bytes per second (decode) and TOP/s (prefill), printed for the record.
TEST(CudaQuantLinear, BenchmarkQwen3_32BShapes) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  struct Shape {
    const char* name;
    int64_t N, K;
  } shapes[] = {
      {"qkv", 10240, 5120}, {"o", 5120, 8192}, {"gate_up", 51200, 5120}, {"down", 5120, 25600}};
  for (const Shape& s : shapes) {
    std::vector<int8_t> w(static_cast<size_t>(s.N * s.K), 3);
    auto dq = gpu->UploadBytes(w.data(), DType::kI8, {s.N, s.K});
    std::vector<float> scale(s.N, 1e-3f);
    std::vector<float> wf(static_cast<size_t>(s.N * s.K), 0.01f);
    auto dbf = gpu->UploadWeight(wf.data(), DType::kF32, {s.N, s.K});
    ASSERT_TRUE(dq.ok() && dbf.ok());
    LinearWeight q;
    q.w = *dq;
    q.quant = LinearQuant::kW8A8Dynamic;
    q.scale = gpu->UploadF32(scale.data(), {s.N});
    for (int64_t T : {1, 16, 64, 128, 256, 8192}) {
      std::mt19937 rng(1);
      std::vector<float> x = RandomBf16Values(T * s.K, rng);
      Tensor dx = UploadBf16(*gpu, x, {T, s.K});
      Tensor dy = Poisoned(*gpu, DType::kBF16, {T, s.N});
      auto time = [&](const LinearWeight& lw) {
        for (int i = 0; i < 3; ++i) gpu->Linear(dx, lw, nullptr, dy);
        gpu->Synchronize();
        const int iters = T >= 8192 ? 10 : 50;
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < iters; ++i) gpu->Linear(dx, lw, nullptr, dy);
        gpu->Synchronize();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
      };
      // The decode-shaped kernel (up to 256 tokens here) and cuBLASLt's IMMA on the same shape.
      gpu->SetInt8SmallMMaxTokens(256);
      const double tsm = T <= 256 ? time(q) : 0.0;
      gpu->SetInt8SmallMMaxTokens(0);
      const double tlt = time(q);
      gpu->SetInt8SmallMMaxTokens(8);
      const double tbf = time(LinearWeight(*dbf));
      const double ti8 = tsm > 0.0 ? std::min(tsm, tlt) : tlt;
      const double ops = 2.0 * T * s.N * s.K;
      std::printf(
          "w8a8-bench %-8s T %5ld N %6ld K %6ld: small-M %.4f ms (%.2f TB/s) | cuBLASLt %.4f ms "
          "(%.2f TB/s) | best int8 %.0f TOP/s | bf16 %.4f ms (%.2f TB/s, %.0f TFLOP/s) | "
          "speedup %.2fx\n",
          s.name, static_cast<long>(T), static_cast<long>(s.N), static_cast<long>(s.K), tsm * 1e3,
          tsm > 0.0 ? s.N * s.K / tsm / 1e12 : 0.0, tlt * 1e3, s.N * s.K / tlt / 1e12,
          ops / ti8 / 1e12, tbf * 1e3, 2.0 * s.N * s.K / tbf / 1e12, ops / tbf / 1e12, tbf / ti8);
      gpu->Free(dx.data);
      gpu->Free(dy.data);
    }
    for (void* p : {dq->data, dbf->data, q.scale.data}) gpu->Free(p);
  }
  EXPECT_TRUE(gpu->status().ok()) << gpu->status().message();
}

}  // namespace
}  // namespace c8
