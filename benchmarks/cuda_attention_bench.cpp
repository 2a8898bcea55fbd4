// Paged attention benchmark of the CUDA backend: C8 int8 and bf16 decode at several
// batch x context shapes (32 q / 8 kv heads, head_dim 128) reporting effective bandwidth
// (K/V bytes + C8 scales read / time), causal prefill without cache and chunked prefill after a
// cached prefix reporting TFLOP/s (causal FLOPs: 4 D Hq x attended keys).
// Times with cudaEvents on the backend stream; median of many reps. Every decode case reads a
// cache far larger than L2 (50 MB), so each rep streams from HBM.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "c8/backend/cuda/cuda_backend.h"

namespace c8 {
namespace {

struct Row {
  std::string what;
  double ms, tbps, tflops;
  double b2b_ms = 0, b2b_tbps = 0;  // decode: 10 back-to-back launches per timing
};

// Median over reps of the time of `inner` back-to-back calls / inner. inner = 1: one launch
// between two events (host launch work included, as a lone eager step sees it); inner > 1: the
// steady state of consecutive launches (as in a replayed CUDA graph of many layers).
double MedianMs(CudaBackend& gpu, int warmup, int reps, const std::function<void()>& fn,
                int inner = 1) {
  auto stream = static_cast<cudaStream_t>(gpu.stream());
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    cudaEventRecord(a, stream);
    for (int k = 0; k < inner; ++k) fn();
    cudaEventRecord(b, stream);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    ms.push_back(t / inner);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// One attention step: S sequences with `cached` tokens each plus `num_new` new tokens.
// dense: the batch is flagged as having no cached keys (AttentionMeta::no_cached_keys), so the
// backend may hand it to cuDNN's fused attention, as the engine does for PrefillNoCache steps.
Row RunStep(CudaBackend& gpu, KvDType dt, int S, int cached, int num_new, int reps,
            bool dense = false) {
  const int Hq = 32, Hkv = 8, D = 128, bs = 16;
  const int ctx = cached + num_new;
  const int blocks_per_seq = (ctx + bs - 1) / bs;
  const int64_t num_blocks = int64_t(S) * blocks_per_seq;
  const size_t esz = KvDTypeSize(dt);
  const size_t cache_bytes = size_t(num_blocks) * Hkv * bs * D * esz;
  std::mt19937 rng(7);
  std::vector<int32_t> ids(num_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  const int T = S * num_new;
  std::vector<int32_t> qs(S + 1), nc(S, cached), slots(T);
  for (int s = 0; s <= S; ++s) qs[s] = s * num_new;
  for (int s = 0; s < S; ++s) {
    for (int i = 0; i < num_new; ++i) {
      const int p = cached + i;
      slots[s * num_new + i] = ids[int64_t(s) * blocks_per_seq + p / bs] * bs + p % bs;
    }
  }
  std::vector<int32_t> ints;
  ints.insert(ints.end(), qs.begin(), qs.end());
  ints.insert(ints.end(), nc.begin(), nc.end());
  ints.insert(ints.end(), ids.begin(), ids.end());
  ints.insert(ints.end(), slots.begin(), slots.end());
  auto* dints = static_cast<int32_t*>(gpu.Malloc(ints.size() * 4));
  gpu.CopyToDevice(dints, ints.data(), ints.size() * 4);
  AttentionMeta m;
  m.num_seqs = S;
  m.num_tokens = T;
  m.block_size = bs;
  m.max_blocks_per_seq = blocks_per_seq;
  m.max_query_len = num_new;
  m.max_context_len = ctx;
  m.no_cached_keys = dense && cached == 0;
  m.query_start = dints;
  m.num_cached = dints + S + 1;
  m.block_tables = dints + 2 * S + 1;
  m.slot_mapping = dints + 2 * S + 1 + num_blocks;
  KvLayerView kv;
  kv.dtype = dt;
  kv.k = gpu.Malloc(cache_bytes);
  kv.v = gpu.Malloc(cache_bytes);
  gpu.Memset(kv.k, 0x13, cache_bytes);
  gpu.Memset(kv.v, 0x3C, cache_bytes);
  std::vector<float> sc(Hkv * D, 0.02f), off(Hkv * D, 1.0f);
  Tensor p[4] = {gpu.UploadF32(sc.data(), {Hkv * D}), gpu.UploadF32(off.data(), {Hkv * D}),
                 gpu.UploadF32(sc.data(), {Hkv * D}), gpu.UploadF32(off.data(), {Hkv * D})};
  if (dt == KvDType::kInt8) {
    kv.k_scale = p[0].as<float>();
    kv.k_offset = p[1].as<float>();
    kv.v_scale = p[2].as<float>();
    kv.v_offset = p[3].as<float>();
  }
  const int64_t W = int64_t(Hq + 2 * Hkv) * D;
  Tensor qkv(gpu.Malloc(size_t(T) * W * 2), DType::kBF16, {T, W});
  gpu.Memset(qkv.data, 0x3C, qkv.nbytes());
  Tensor out(gpu.Malloc(size_t(T) * Hq * D * 2), DType::kBF16, {T, int64_t(Hq) * D});
  AttentionShape shape{Hq, Hkv, D, 1.0f / std::sqrt(float(D))};
  gpu.PlanAttention(shape, m);  // once per step, as the engine does
  gpu.WriteKvCache(qkv, m, shape, kv);
  const double ms = MedianMs(gpu, 2, reps, [&] { gpu.Attention(qkv, m, kv, shape, out); });
  Row r;
  char buf[128];
  if (num_new == 1) {
    snprintf(buf, sizeof buf, "decode %-4s B%-3d L%-6d (%d splits)",
             std::string(KvDTypeName(dt)).c_str(), S, ctx,
             (dt == KvDType::kInt8 ? m.plan.decode_int8 : m.plan.decode_bf16).splits);
    const double bytes =
        double(S) * cached * Hkv * D * 2 * esz + (dt == KvDType::kInt8 ? 4.0 * Hkv * D * 4 : 0.0);
    r = {buf, ms, bytes / (ms * 1e-3) / 1e12, 0.0};
    r.b2b_ms = MedianMs(
        gpu, 2, 10, [&] { gpu.Attention(qkv, m, kv, shape, out); }, 10);
    r.b2b_tbps = bytes / (r.b2b_ms * 1e-3) / 1e12;
  } else {
    if (cached == 0) {
      snprintf(buf, sizeof buf, "prefill %s causal %sT%d%s", std::string(KvDTypeName(dt)).c_str(),
               S > 1 ? (std::to_string(S) + " x ").c_str() : "", num_new,
               dense ? " (engine path)" : " (c8 kernel)");
    } else {
      snprintf(buf, sizeof buf, "prefill %s T%d after %d cached x%d",
               std::string(KvDTypeName(dt)).c_str(), num_new, cached, S);
    }
    // QK^T and PV over the causal keys: 4 D Hq sum_i (cached + i + 1).
    const double keys = double(num_new) * cached + double(num_new) * (num_new + 1) / 2.0;
    const double flops = 4.0 * D * Hq * keys * S;
    r = {buf, ms, 0.0, flops / (ms * 1e-3) / 1e12};
  }
  if (!gpu.status().ok()) r.what += "  ERROR: " + gpu.status().message();
  for (void* q : {static_cast<void*>(dints), kv.k, kv.v, qkv.data, out.data}) gpu.Free(q);
  for (Tensor& t : p) gpu.Free(t.data);
  return r;
}

int Main() {
  auto b = CreateCudaBackend();
  if (!b.ok()) {
    std::fprintf(stderr, "cuda_attention_bench: %s\n", b.message().c_str());
    return 1;
  }
  auto& gpu = static_cast<CudaBackend&>(*b.value());
  std::vector<Row> rows;
  for (KvDType dt : {KvDType::kInt8, KvDType::kBF16}) {
    rows.push_back(RunStep(gpu, dt, 64, 4095, 1, 30));
    rows.push_back(RunStep(gpu, dt, 16, 32767, 1, 20));
    rows.push_back(RunStep(gpu, dt, 1, 131071, 1, 30));
  }
  // C8 decode with the 16-row head tile instead of the swapped tile step (groups <= 8).
  gpu.SetDecodeSwap(false);
  for (auto [S, L] : {std::pair{64, 4095}, std::pair{16, 32767}, std::pair{1, 131071}}) {
    rows.push_back(RunStep(gpu, KvDType::kInt8, S, L, 1, 30));
    rows.back().what += " 16-row";
  }
  gpu.SetDecodeSwap(true);
  // PrefillNoCache: the backend's own kernel, then the engine's path (cuDNN when available).
  rows.push_back(RunStep(gpu, KvDType::kBF16, 1, 0, 4096, 5));
  rows.push_back(RunStep(gpu, KvDType::kBF16, 1, 0, 16384, 5));
  rows.push_back(RunStep(gpu, KvDType::kInt8, 1, 0, 4096, 5));
  rows.push_back(RunStep(gpu, KvDType::kBF16, 1, 0, 4096, 5, true));
  rows.push_back(RunStep(gpu, KvDType::kBF16, 1, 0, 16384, 5, true));
  rows.push_back(RunStep(gpu, KvDType::kInt8, 1, 0, 4096, 5, true));
  rows.push_back(RunStep(gpu, KvDType::kBF16, 8, 0, 1024, 5, true));
  // Chunked prefill / cache hit: 2048 new tokens after a 14336-token int8 / bf16 prefix.
  rows.push_back(RunStep(gpu, KvDType::kInt8, 4, 14336, 2048, 5));
  rows.push_back(RunStep(gpu, KvDType::kBF16, 4, 14336, 2048, 5));
  // Short chunk after a long cached prefix (the prefill kernel's KV split).
  rows.push_back(RunStep(gpu, KvDType::kInt8, 1, 32768, 40, 20));
  rows.push_back(RunStep(gpu, KvDType::kBF16, 1, 32768, 40, 20));
  std::printf("\n%-52s %10s %10s %10s %10s %10s\n", "case (32q/8kv heads, d128)", "ms", "TB/s",
              "TFLOP/s", "b2b ms", "b2b TB/s");
  for (const Row& r : rows) {
    std::printf("%-52s %10.4f %10.3f %10.1f %10.4f %10.3f\n", r.what.c_str(), r.ms, r.tbps,
                r.tflops, r.b2b_ms, r.b2b_tbps);
  }
  return 0;
}

}  // namespace
}  // namespace c8

int main() {
  return c8::Main();
}
