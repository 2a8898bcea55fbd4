// cuDNN prefill attention (CudnnPrefill, cuda_cudnn_prefill.h) against CpuPagedAttention run
// with no cached keys (PrefillNoCache) on the same bf16 q/k/v values: ragged batches (batch
// buckets padded with empty sequences), head dims 64 / 128, GQA groups 1 / 3 / 4 / 8, a 4k
// sequence, the cache-hit path (bitwise equal results), unsupported problems (Ok(false), output
// untouched), stream capture and invalid arguments. Skips without a device or without cuDNN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "c8/backend/cpu/cpu_attention.h"
#include "c8/backend/cuda/cuda_cudnn_prefill.h"
#include "cuda_test_util.h"

namespace c8 {
namespace {

using cuda::CudnnPrefill;
using testing::RandomBf16Values;
using testing::RelErr;

#define C8_CUDNN_OR_SKIP(gpu)                         \
  C8_CUDA_BACKEND_OR_SKIP(gpu);                       \
  if (!CudnnPrefill::Available())                     \
  GTEST_SKIP() << "cuDNN prefill unavailable (build " \
                  "without cuDNN, cuDNN < 9 or pre-sm_90)"

// C8_CUDA_QUICK=1 (used under compute-sanitizer) runs a reduced matrix.
bool Quick() {
  const char* e = std::getenv("C8_CUDA_QUICK");
  return e && e[0] == '1';
}

struct Problem {
  std::vector<int32_t> lens;  // tokens per sequence
  int Hq, Hkv, D;
};

std::string Describe(const Problem& p) {
  std::string s = "lens {";
  for (size_t i = 0; i < p.lens.size() && i < 12; ++i)
    s += (i ? "," : "") + std::to_string(p.lens[i]);
  if (p.lens.size() > 12) s += ",... (" + std::to_string(p.lens.size()) + " seqs)";
  return s + "} Hq " + std::to_string(p.Hq) + " Hkv " + std::to_string(p.Hkv) + " D " +
         std::to_string(p.D);
}

// Device inputs of one problem plus the host copies the CPU reference reads.
struct Inputs {
  std::vector<int32_t> qs;  // (S + 1)
  std::vector<float> qkv;   // (T, W) bf16-exact
  int32_t T = 0, max_len = 0;
  int32_t* dqs = nullptr;
  Tensor dqkv, dout;
};

Inputs Upload(CudaBackend& gpu, const Problem& p, uint32_t seed) {
  Inputs in;
  std::mt19937 rng(seed);
  in.qs.push_back(0);
  for (int32_t L : p.lens) {
    in.qs.push_back(in.qs.back() + L);
    in.max_len = std::max(in.max_len, L);
  }
  in.T = in.qs.back();
  const int64_t W = int64_t(p.Hq + 2 * p.Hkv) * p.D;
  // Spread 1.5: sharper softmax than stddev 1, still far from saturation.
  in.qkv = RandomBf16Values(size_t(in.T) * W, rng, 1.5f);
  in.dqs = static_cast<int32_t*>(gpu.Malloc(in.qs.size() * 4));
  gpu.CopyToDevice(in.dqs, in.qs.data(), in.qs.size() * 4);
  in.dqkv = testing::UploadBf16(gpu, in.qkv, {in.T, W});
  in.dout = testing::Poisoned(gpu, DType::kBF16, {in.T, int64_t(p.Hq) * p.D});
  return in;
}

void FreeInputs(CudaBackend& gpu, Inputs& in) {
  gpu.Free(in.dqs);
  gpu.Free(in.dqkv.data);
  gpu.Free(in.dout.data);
}

Result<bool> RunGpu(CudnnPrefill& prefill, CudaBackend& gpu, const Problem& p, Inputs& in) {
  return prefill.Run(static_cast<const uint16_t*>(in.dqkv.data), in.dqs,
                     static_cast<int32_t>(p.lens.size()), in.T, in.max_len, p.Hq, p.Hkv, p.D,
                     1.0f / std::sqrt(static_cast<float>(p.D)),
                     static_cast<uint16_t*>(in.dout.data), static_cast<cudaStream_t>(gpu.stream()));
}

std::vector<float> CpuReference(ThreadPool& pool, const Problem& p, const Inputs& in) {
  const int S = static_cast<int>(p.lens.size());
  std::vector<int32_t> cached(S, 0);
  AttentionMeta m;
  m.num_seqs = S;
  m.num_tokens = in.T;
  m.max_query_len = in.max_len;
  m.max_context_len = in.max_len;
  m.query_start = in.qs.data();
  m.num_cached = cached.data();
  KvLayerView none;  // no cached keys: the cache is never read
  AttentionShape shape{p.Hq, p.Hkv, p.D, 1.0f / std::sqrt(static_cast<float>(p.D))};
  std::vector<float> ref(size_t(in.T) * p.Hq * p.D);
  CpuPagedAttention(in.qkv.data(), m, none, shape, ref.data(), &pool);
  return ref;
}

// Largest normalized error over the sequences (||got - ref|| / ||ref|| of each sequence's rows),
// so a wrong short sequence next to a long one is not averaged away.
double WorstSeqErr(const Problem& p, const Inputs& in, const std::vector<float>& got,
                   const std::vector<float>& ref) {
  const size_t row = size_t(p.Hq) * p.D;
  double worst = 0;
  for (size_t s = 0; s + 1 < in.qs.size(); ++s) {
    const size_t a = in.qs[s] * row, b = in.qs[s + 1] * row;
    if (a == b) continue;
    std::vector<float> g(got.begin() + a, got.begin() + b), r(ref.begin() + a, ref.begin() + b);
    worst = std::max(worst, RelErr(g, r));
  }
  return worst;
}

// Runs one problem on both sides; returns the worst per-sequence error (inf when cuDNN refused).
double RunCase(CudnnPrefill& prefill, CudaBackend& gpu, ThreadPool& pool, const Problem& p,
               uint32_t seed) {
  Inputs in = Upload(gpu, p, seed);
  Result<bool> r = RunGpu(prefill, gpu, p, in);
  std::vector<float> got = testing::Download(gpu, in.dout);
  FreeInputs(gpu, in);
  EXPECT_TRUE(gpu.status().ok()) << gpu.status().message();
  if (!r.ok()) {
    ADD_FAILURE() << Describe(p) << ": " << r.message();
    return INFINITY;
  }
  if (!*r) {
    ADD_FAILURE() << Describe(p) << ": cuDNN refused the problem";
    return INFINITY;
  }
  return WorstSeqErr(p, in, got, CpuReference(pool, p, in));
}

std::vector<int32_t> RandomLens(std::mt19937& rng, int n, int max_len) {
  std::uniform_int_distribution<int> ud(1, max_len);
  std::vector<int32_t> lens(n);
  for (auto& L : lens) L = ud(rng);
  return lens;
}

TEST(CudnnPrefill, RaggedBatchesHeadDimsGroups) {
  C8_CUDNN_OR_SKIP(gpu);
  ThreadPool pool(0);
  CudnnPrefill prefill;
  std::mt19937 rng(5);
  uint32_t seed = 300;
  const std::vector<int> groups = Quick() ? std::vector<int>{1, 4} : std::vector<int>{1, 3, 4, 8};
  for (int D : {64, 128}) {
    for (int G : groups) {
      std::vector<std::vector<int32_t>> batches = {
          {1, 17, 300, 64},                       // b = 4, s = 512
          {5, 130, 1},                            // b = 4 with one empty padding entry
          RandomLens(rng, Quick() ? 3 : 5, 2000)  // b = 8 (3 empty entries), s up to 2048
      };
      for (const auto& lens : batches) {
        const Problem p{lens, 2 * G, 2, D};
        EXPECT_LT(RunCase(prefill, *gpu, pool, p, seed++), 1e-2) << Describe(p);
      }
    }
  }
}

TEST(CudnnPrefill, LongSequenceAndManyShortOnes) {
  C8_CUDNN_OR_SKIP(gpu);
  ThreadPool pool(0);
  CudnnPrefill prefill;
  std::mt19937 rng(9);
  uint32_t seed = 700;
  std::vector<Problem> problems = {
      {{4096}, 8, 2, 128},
      {{64, 64, 1, 63, 65}, 32, 8, 128},       // 32 / 8 heads (Llama-style)
      {RandomLens(rng, 40, 64), 4, 4, 64},     // b = 64 with 24 empty entries, s = 64
      {RandomLens(rng, 9, 1000), 12, 4, 128},  // b = 16
  };
  if (!Quick()) problems.push_back({{4096}, 16, 2, 64});
  for (const Problem& p : problems) {
    EXPECT_LT(RunCase(prefill, *gpu, pool, p, seed++), 1e-2) << Describe(p);
  }
}

// Same bucket twice (cache hit, with another problem of the bucket in between): bitwise equal.
TEST(CudnnPrefill, CacheHitGivesIdenticalResults) {
  C8_CUDNN_OR_SKIP(gpu);
  ThreadPool pool(0);
  CudnnPrefill prefill;
  const Problem a{{100, 33, 200}, 8, 2, 128};  // b = 4, s = 256
  const Problem b{{256, 7}, 8, 2, 128};        // b = 2, s = 256: another bucket
  const Problem c{{250, 1, 1, 9}, 8, 2, 128};  // b = 4, s = 256: same bucket as a
  Inputs in = Upload(*gpu, a, 41);
  Result<bool> r1 = RunGpu(prefill, *gpu, a, in);
  ASSERT_TRUE(r1.ok() && *r1) << r1.message();
  std::vector<float> first = testing::Download(*gpu, in.dout);
  const int graphs = prefill.CachedGraphs();
  EXPECT_EQ(graphs, 1);
  for (const Problem* other : {&b, &c}) {
    Inputs o = Upload(*gpu, *other, 42);
    Result<bool> r = RunGpu(prefill, *gpu, *other, o);
    EXPECT_TRUE(r.ok() && *r) << r.message();
    FreeInputs(*gpu, o);
  }
  EXPECT_EQ(prefill.CachedGraphs(), 2);  // c reused a's graph
  gpu->Memset(in.dout.data, 0xFF, in.dout.nbytes());
  Result<bool> r2 = RunGpu(prefill, *gpu, a, in);
  ASSERT_TRUE(r2.ok() && *r2) << r2.message();
  std::vector<float> second = testing::Download(*gpu, in.dout);
  EXPECT_EQ(prefill.CachedGraphs(), 2);
  ASSERT_EQ(first.size(), second.size());
  EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0);
  EXPECT_LT(WorstSeqErr(a, in, second, CpuReference(pool, a, in)), 1e-2);
  FreeInputs(*gpu, in);
  EXPECT_TRUE(gpu->status().ok()) << gpu->status().message();
}

// Problems the cuDNN path does not take answer Ok(false) and leave `out` as it was: head_dim 100
// (not a multiple of 8) and 512 (past the fused engines' 256; cuDNN 9.14 itself would run it on
// an unfused engine). Should a problem be taken, the result must be right instead.
TEST(CudnnPrefill, UnsupportedProblemLeavesOutputUntouched) {
  C8_CUDNN_OR_SKIP(gpu);
  CudnnPrefill prefill;
  for (int D : {100, 512}) {
    const Problem p{{3, 20}, 4, 2, D};
    Inputs in = Upload(*gpu, p, 77);
    for (int call = 0; call < 2; ++call) {
      Result<bool> r = RunGpu(prefill, *gpu, p, in);
      ASSERT_TRUE(r.ok()) << Describe(p) << ": " << r.message();
      EXPECT_FALSE(*r) << Describe(p) << ": taken by the cuDNN path, expected Ok(false)";
    }
    std::vector<uint16_t> bits(size_t(in.dout.numel()));
    gpu->CopyToHost(bits.data(), in.dout.data, bits.size() * 2);
    EXPECT_TRUE(std::all_of(bits.begin(), bits.end(), [](uint16_t x) { return x == 0xFFFF; }))
        << Describe(p) << ": output written although Ok(false)";
    FreeInputs(*gpu, in);
  }
  EXPECT_EQ(prefill.CachedGraphs(), 0);
  EXPECT_TRUE(gpu->status().ok()) << gpu->status().message();
}

// Under stream capture (the backend's CUDA graphs): a call that would build a graph answers
// Ok(false) and records nothing; a cached bucket is recorded, and the replay matches the eager run.
TEST(CudnnPrefill, StreamCapture) {
  C8_CUDNN_OR_SKIP(gpu);
  ThreadPool pool(0);
  CudnnPrefill prefill;
  const Problem p{{37, 200, 5}, 8, 2, 64};  // b = 4, s = 256
  Inputs in = Upload(*gpu, p, 91);
  ASSERT_TRUE(gpu->BeginGraphCapture().ok());
  Result<bool> r = RunGpu(prefill, *gpu, p, in);
  Result<int64_t> id = gpu->EndGraphCapture();
  EXPECT_TRUE(r.ok() && !*r) << r.message();
  if (id.ok()) gpu->DestroyGraph(*id);
  EXPECT_EQ(prefill.CachedGraphs(), 0);

  r = RunGpu(prefill, *gpu, p, in);  // eager: builds the graph
  ASSERT_TRUE(r.ok() && *r) << r.message();
  std::vector<float> eager = testing::Download(*gpu, in.dout);
  gpu->Memset(in.dout.data, 0xFF, in.dout.nbytes());
  ASSERT_TRUE(gpu->BeginGraphCapture().ok());
  r = RunGpu(prefill, *gpu, p, in);
  id = gpu->EndGraphCapture();
  ASSERT_TRUE(r.ok() && *r) << r.message();
  ASSERT_TRUE(id.ok()) << id.message();
  ASSERT_TRUE(gpu->LaunchGraph(*id).ok());
  std::vector<float> replay = testing::Download(*gpu, in.dout);
  gpu->DestroyGraph(*id);
  ASSERT_EQ(eager.size(), replay.size());
  EXPECT_EQ(std::memcmp(eager.data(), replay.data(), eager.size() * sizeof(float)), 0);
  EXPECT_LT(WorstSeqErr(p, in, replay, CpuReference(pool, p, in)), 1e-2);
  FreeInputs(*gpu, in);
  EXPECT_TRUE(gpu->status().ok()) << gpu->status().message();
}

TEST(CudnnPrefill, InvalidArgumentsAndEmptyProblems) {
  C8_CUDNN_OR_SKIP(gpu);
  CudnnPrefill prefill;
  auto stream = static_cast<cudaStream_t>(gpu->stream());
  uint16_t* buf = static_cast<uint16_t*>(gpu->Malloc(4096));
  int32_t* qs = static_cast<int32_t*>(gpu->Malloc(64));
  // Hq not a multiple of Hkv.
  Result<bool> bad = prefill.Run(buf, qs, 1, 4, 4, 6, 4, 64, 0.125f, buf, stream);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("cudnn prefill"), std::string::npos) << bad.message();
  // max_query_len larger than the batch.
  EXPECT_FALSE(prefill.Run(buf, qs, 1, 4, 5, 4, 4, 64, 0.125f, buf, stream).ok());
  // Nothing to do.
  Result<bool> empty = prefill.Run(buf, qs, 0, 0, 0, 4, 4, 64, 0.125f, buf, stream);
  EXPECT_TRUE(empty.ok() && *empty) << empty.message();
  gpu->Free(buf);
  gpu->Free(qs);
  EXPECT_EQ(prefill.CachedGraphs(), 0);
}

}  // namespace
}  // namespace c8
