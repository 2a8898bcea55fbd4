// cuDNN prefill attention benchmark (CudnnPrefill, cuda_cudnn_prefill.h): causal attention of
// packed sequences without cached keys, 32 q / 8 kv heads, head_dim 128, bf16. Reports the
// median of many reps (cudaEvents on one stream; warmup first, so the graph build is excluded)
// and TFLOP/s counting causal FLOPs: 4 D Hq sum_seq L (L + 1) / 2.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "c8/backend/cuda/cuda_cudnn_prefill.h"
#include "c8/util/bf16.h"

namespace c8 {
namespace {

constexpr int kHq = 32, kHkv = 8, kD = 128;

#define BENCH_CUDA(x)                                                      \
  do {                                                                     \
    cudaError_t _e = (x);                                                  \
    if (_e != cudaSuccess) {                                               \
      std::fprintf(stderr, "%s failed: %s\n", #x, cudaGetErrorString(_e)); \
      std::exit(1);                                                        \
    }                                                                      \
  } while (0)

struct Case {
  std::string name;
  std::vector<int32_t> lens;  // tokens per sequence
};

// Returns false when cuDNN refused the problem or failed (message printed).
bool RunCase(cuda::CudnnPrefill& prefill, const Case& c, cudaStream_t stream, int reps) {
  const int S = static_cast<int>(c.lens.size());
  std::vector<int32_t> qs(1, 0);
  int32_t max_len = 0;
  double causal_pairs = 0;
  for (int32_t L : c.lens) {
    qs.push_back(qs.back() + L);
    max_len = std::max(max_len, L);
    causal_pairs += double(L) * (L + 1) / 2;
  }
  const int32_t T = qs.back();
  const size_t W = size_t(kHq + 2 * kHkv) * kD;
  std::vector<uint16_t> host(size_t(T) * W);
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& x : host) x = F32ToBf16(nd(rng));
  uint16_t *qkv = nullptr, *out = nullptr;
  int32_t* dqs = nullptr;
  BENCH_CUDA(cudaMalloc(reinterpret_cast<void**>(&qkv), host.size() * 2));
  BENCH_CUDA(cudaMalloc(reinterpret_cast<void**>(&out), size_t(T) * kHq * kD * 2));
  BENCH_CUDA(cudaMalloc(reinterpret_cast<void**>(&dqs), qs.size() * 4));
  BENCH_CUDA(cudaMemcpy(qkv, host.data(), host.size() * 2, cudaMemcpyHostToDevice));
  BENCH_CUDA(cudaMemcpy(dqs, qs.data(), qs.size() * 4, cudaMemcpyHostToDevice));
  const float scale = 1.0f / std::sqrt(float(kD));
  auto run = [&]() {
    return prefill.Run(qkv, dqs, S, T, max_len, kHq, kHkv, kD, scale, out, stream);
  };
  bool ok = true;
  double first_ms = 0;  // first call: graph build (when the bucket is new) + queueing
  for (int i = 0; i < 3 && ok; ++i) {  // graph build + warmup
    const auto t0 = std::chrono::steady_clock::now();
    Result<bool> r = run();
    if (i == 0) {
      first_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    if (!r.ok() || !*r) {
      std::printf("%-28s %s\n", c.name.c_str(),
                  r.ok() ? "unsupported by cuDNN" : r.message().c_str());
      ok = false;
    }
  }
  if (ok) {
    BENCH_CUDA(cudaStreamSynchronize(stream));
    cudaEvent_t a, b;
    BENCH_CUDA(cudaEventCreate(&a));
    BENCH_CUDA(cudaEventCreate(&b));
    std::vector<float> ms;
    for (int i = 0; i < reps && ok; ++i) {
      BENCH_CUDA(cudaEventRecord(a, stream));
      Result<bool> r = run();
      BENCH_CUDA(cudaEventRecord(b, stream));
      BENCH_CUDA(cudaEventSynchronize(b));
      if (!r.ok() || !*r) {
        std::printf("%-28s %s\n", c.name.c_str(), r.ok() ? "unsupported" : r.message().c_str());
        ok = false;
        break;
      }
      float t = 0;
      BENCH_CUDA(cudaEventElapsedTime(&t, a, b));
      ms.push_back(t);
    }
    BENCH_CUDA(cudaEventDestroy(a));
    BENCH_CUDA(cudaEventDestroy(b));
    if (ok) {
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      const double tflops = 4.0 * kD * kHq * causal_pairs / (med * 1e-3) / 1e12;
      std::printf("%-28s %10.4f %10.1f %14.1f\n", c.name.c_str(), med, tflops, first_ms);
    }
  }
  BENCH_CUDA(cudaFree(qkv));
  BENCH_CUDA(cudaFree(out));
  BENCH_CUDA(cudaFree(dqs));
  return ok;
}

int Main() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::printf("no CUDA device\n");
    return 0;
  }
  if (!cuda::CudnnPrefill::Available()) {
    std::printf("cuDNN prefill unavailable (needs cuDNN 9 and sm_90+)\n");
    return 0;
  }
  cudaStream_t stream;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cuda::CudnnPrefill prefill;
  const std::vector<Case> cases = {
      {"prefill T4096 (1 seq)", {4096}},
      {"prefill T16384 (1 seq)", {16384}},
      {"prefill 8 x 512", std::vector<int32_t>(8, 512)},
      {"prefill 4 x 1024", std::vector<int32_t>(4, 1024)},
  };
  std::printf("cuDNN %d prefill attention, Hq %d Hkv %d D %d bf16 (causal FLOPs)\n",
              cuda::CudnnPrefill::CudnnVersion(), kHq, kHkv, kD);
  std::printf("%-28s %10s %10s %14s\n", "case", "ms", "TFLOP/s", "first_call_ms");
  bool all = true;
  for (const Case& c : cases) all = RunCase(prefill, c, stream, 20) && all;
  BENCH_CUDA(cudaStreamDestroy(stream));
  return all ? 0 : 1;
}

}  // namespace
}  // namespace c8

int main() {
  return c8::Main();
}
