// NcclCommunicator against host sums and concatenations: one CUDA backend per GPU (2 ranks when
// two GPUs are present, else a 1-rank communicator), each driven by its own thread as the
// tensor-parallel workers do. All-reduce of random bf16 and fp32 data (every rank must get the
// same bits), all-gather of uneven column blocks (5 and 3 columns, padded to 5; the padding must
// not leak), the same collectives replayed from CUDA graphs, and Abort waking every rank.
#include "c8/backend/cuda/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "c8/backend/cpu/cpu_backend.h"
#include "cuda_test_util.h"

namespace c8 {
namespace {

using testing::RandomBf16Values;

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

struct Ranks {
  std::vector<std::unique_ptr<CudaBackend>> gpus;
  std::vector<std::unique_ptr<Communicator>> comms;
  int size() const { return static_cast<int>(gpus.size()); }
  // Runs fn(rank) on one thread per rank (each bound to its GPU), all at once.
  void Run(const std::function<void(int)>& fn) {
    std::vector<std::thread> threads;
    for (int r = 0; r < size(); ++r) {
      threads.emplace_back([this, r, &fn] {
        gpus[r]->BindThread();
        fn(r);
      });
    }
    for (auto& t : threads) t.join();
  }
};

// Up to two ranks, or an empty Ranks with *skip set.
Ranks MakeRanks(std::string* skip) {
  Ranks ranks;
#ifndef C8_WITH_NCCL
  *skip = "built without NCCL";
  if (ranks.size() == 0) return ranks;
#endif
  // Never NVLink multicast on shared machines (a user's own setting wins).
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  const int n = std::min(DeviceCount(), 2);
  if (n == 0) {
    *skip = "no CUDA device";
    return ranks;
  }
  for (int r = 0; r < n; ++r) {
    auto b = CreateCudaBackend(r);
    if (!b.ok()) {
      *skip = b.message();
      ranks.gpus.clear();
      return ranks;
    }
    ranks.gpus.emplace_back(static_cast<CudaBackend*>(std::move(b).value().release()));
  }
  std::vector<Backend*> ptrs;
  for (auto& g : ranks.gpus) ptrs.push_back(g.get());
  auto comms = CreateNcclCommunicators(ptrs);
  EXPECT_TRUE(comms.ok()) << comms.message();
  if (!comms.ok()) {
    *skip = comms.message();
    ranks.gpus.clear();
    return ranks;
  }
  ranks.comms = std::move(comms).value();
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(ranks.comms[r]->rank(), r);
    EXPECT_EQ(ranks.comms[r]->size(), n);
  }
  return ranks;
}

#define C8_NCCL_RANKS_OR_SKIP(var) \
  std::string _skip;               \
  Ranks var = MakeRanks(&_skip);   \
  if (var.size() == 0) GTEST_SKIP() << _skip

// The inputs of one rank and what every rank must get back.
struct Data {
  static constexpr int64_t kRows = 4, kPad = 5;     // gather: (4, 5) padded blocks
  std::vector<std::vector<float>> bf, f32, blocks;  // per rank
  std::vector<float> bf_sum, f32_sum, gathered;
  std::vector<int64_t> cols;
  int64_t total_cols = 0;

  Data(int n, uint32_t seed) {
    std::mt19937 rng(seed);
    const size_t nbf = 7 * 100, nf = 1000;
    bf_sum.assign(nbf, 0.0f);
    f32_sum.assign(nf, 0.0f);
    for (int r = 0; r < n; ++r) {
      bf.push_back(RandomBf16Values(nbf, rng));
      f32.push_back(RandomBf16Values(nf, rng, 3.0f));
      for (size_t i = 0; i < nbf; ++i) bf_sum[i] += bf[r][i];
      for (size_t i = 0; i < nf; ++i) f32_sum[i] += f32[r][i];
    }
    // Uneven columns: 5 and 3 of 5 (one rank: 3 of 5).
    cols = n == 2 ? std::vector<int64_t>{5, 3} : std::vector<int64_t>{3};
    for (int64_t c : cols) total_cols += c;
    gathered.assign(kRows * total_cols, 0.0f);
    std::normal_distribution<float> nd;
    int64_t col0 = 0;
    for (int r = 0; r < n; ++r) {
      std::vector<float> b(kRows * kPad, 1e30f);  // padding must not reach out
      for (int64_t i = 0; i < kRows; ++i) {
        for (int64_t j = 0; j < cols[r]; ++j) {
          b[i * kPad + j] = nd(rng);
          gathered[i * total_cols + col0 + j] = b[i * kPad + j];
        }
      }
      blocks.push_back(b);
      col0 += cols[r];
    }
  }
};

// Device buffers of one rank.
struct RankBuffers {
  Tensor bf, f32, in, out;
  RankBuffers(CudaBackend& gpu, const Data& d, int r) {
    bf = testing::UploadBf16(gpu, d.bf[r], {7, 100});
    f32 = gpu.UploadF32(d.f32[r].data(), {1000});
    in = gpu.UploadF32(d.blocks[r].data(), {Data::kRows, Data::kPad});
    out = testing::Poisoned(gpu, DType::kF32, {Data::kRows, d.total_cols});
  }
  void Reset(CudaBackend& gpu, const Data& d, int r) {
    std::vector<uint16_t> bits = testing::ToBf16Bits(d.bf[r]);
    gpu.CopyToDevice(bf.data, bits.data(), bf.nbytes());
    gpu.CopyToDevice(f32.data, d.f32[r].data(), f32.nbytes());
    gpu.Memset(out.data, 0xFF, out.nbytes());
  }
  void Free(CudaBackend& gpu) {
    for (Tensor* t : {&bf, &f32, &in, &out}) gpu.Free(t->data);
  }
};

struct Got {
  std::vector<float> bf, f32, gathered;
};

void Check(const Data& d, const std::vector<Got>& got) {
  for (size_t r = 0; r < got.size(); ++r) {
    ASSERT_EQ(got[r].bf.size(), d.bf_sum.size());
    for (size_t i = 0; i < d.bf_sum.size(); ++i) {
      // bf16 sums round once per add.
      ASSERT_NEAR(got[r].bf[i], d.bf_sum[i], 1e-2 * std::fabs(d.bf_sum[i]) + 1e-6)
          << "rank " << r << " bf16 element " << i;
    }
    for (size_t i = 0; i < d.f32_sum.size(); ++i) {
      ASSERT_NEAR(got[r].f32[i], d.f32_sum[i], 1e-6 * std::fabs(d.f32_sum[i]) + 1e-6)
          << "rank " << r << " fp32 element " << i;
    }
    ASSERT_EQ(got[r].gathered, d.gathered) << "rank " << r;
    // Every rank holds the same sums, bit for bit.
    EXPECT_EQ(std::memcmp(got[r].bf.data(), got[0].bf.data(), got[0].bf.size() * 4), 0);
    EXPECT_EQ(std::memcmp(got[r].f32.data(), got[0].f32.data(), got[0].f32.size() * 4), 0);
  }
}

TEST(NcclCommunicator, AllReduceAndAllGatherMatchHost) {
  C8_NCCL_RANKS_OR_SKIP(ranks);
  const int n = ranks.size();
  Data d(n, 41);
  std::vector<Got> got(n);
  ranks.Run([&](int r) {
    CudaBackend& gpu = *ranks.gpus[r];
    Communicator& comm = *ranks.comms[r];
    RankBuffers b(gpu, d, r);
    comm.AllReduceSum(b.bf);
    comm.AllReduceSum(b.f32);
    comm.AllGatherColumns(b.in, d.cols, b.out);
    got[r].bf = testing::Download(gpu, b.bf);
    got[r].f32 = testing::Download(gpu, b.f32);
    got[r].gathered = testing::Download(gpu, b.out);
    EXPECT_TRUE(comm.status().ok()) << comm.status().message();
    EXPECT_TRUE(gpu.status().ok()) << gpu.status().message();
    b.Free(gpu);
  });
  Check(d, got);
}

TEST(NcclCommunicator, CollectivesReplayFromCudaGraphs) {
  C8_NCCL_RANKS_OR_SKIP(ranks);
  const int n = ranks.size();
  Data d(n, 42);
  std::vector<Got> got(n);
  ranks.Run([&](int r) {
    CudaBackend& gpu = *ranks.gpus[r];
    Communicator& comm = *ranks.comms[r];
    RankBuffers b(gpu, d, r);
    // Eager first (connections, staging), as the engine's first step of a graph key is.
    comm.AllReduceSum(b.bf);
    comm.AllReduceSum(b.f32);
    comm.AllGatherColumns(b.in, d.cols, b.out);
    gpu.Synchronize();
    b.Reset(gpu, d, r);
    gpu.Synchronize();
    Status s = gpu.BeginGraphCapture();
    if (!s.ok()) {
      ADD_FAILURE() << s.message();
      return comm.Abort("rank " + std::to_string(r) + " could not capture");  // wake the others
    }
    comm.AllReduceSum(b.bf);
    comm.AllReduceSum(b.f32);
    comm.AllGatherColumns(b.in, d.cols, b.out);
    auto id = gpu.EndGraphCapture();
    ASSERT_TRUE(id.ok()) << id.message();
    for (int rep = 0; rep < 2; ++rep) {  // the graph runs on fresh inputs each time
      b.Reset(gpu, d, r);
      s = gpu.LaunchGraph(*id);
      ASSERT_TRUE(s.ok()) << s.message();
      got[r].bf = testing::Download(gpu, b.bf);
      got[r].f32 = testing::Download(gpu, b.f32);
      got[r].gathered = testing::Download(gpu, b.out);
    }
    gpu.DestroyGraph(*id);
    EXPECT_TRUE(comm.status().ok()) << comm.status().message();
    EXPECT_TRUE(gpu.status().ok()) << gpu.status().message();
    b.Free(gpu);
  });
  Check(d, got);
}

TEST(NcclCommunicator, GatherStagingCannotGrowInsideCapture) {
  C8_NCCL_RANKS_OR_SKIP(ranks);
  const int n = ranks.size();
  Data d(n, 43);
  ranks.Run([&](int r) {
    CudaBackend& gpu = *ranks.gpus[r];
    Communicator& comm = *ranks.comms[r];
    RankBuffers b(gpu, d, r);
    ASSERT_TRUE(gpu.BeginGraphCapture().ok());
    comm.AllGatherColumns(b.in, d.cols, b.out);  // no staging yet
    auto id = gpu.EndGraphCapture();
    EXPECT_FALSE(id.ok());
    EXPECT_NE(id.message().find("Reserve"), std::string::npos) << id.message();
    EXPECT_TRUE(gpu.status().ok()) << gpu.status().message();  // restored after the capture
    EXPECT_TRUE(comm.status().ok()) << comm.status().message();
    auto* nccl = static_cast<NcclCommunicator*>(&comm);
    EXPECT_TRUE(nccl->Reserve(size_t(n) * Data::kRows * Data::kPad * 4).ok());
    EXPECT_EQ(nccl->device(), r);
    b.Free(gpu);
  });
}

TEST(NcclCommunicator, AbortReachesEveryRank) {
  C8_NCCL_RANKS_OR_SKIP(ranks);
  ranks.comms[0]->Abort("test abort");
  for (int r = 0; r < ranks.size(); ++r) {
    Status s = ranks.comms[r]->status();
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("test abort"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("NCCL rank " + std::to_string(r)), std::string::npos) << s.message();
  }
  // Later collectives are skipped, not issued on the aborted communicators.
  Data d(ranks.size(), 44);
  ranks.Run([&](int r) {
    RankBuffers b(*ranks.gpus[r], d, r);
    ranks.comms[r]->AllReduceSum(b.f32);
    EXPECT_EQ(testing::Download(*ranks.gpus[r], b.f32), d.f32[r]);
    b.Free(*ranks.gpus[r]);
  });
}

TEST(NcclCommunicator, FactoryRefusesNonCudaBackends) {
  EXPECT_FALSE(CreateNcclCommunicators({}).ok());
  CpuBackend cpu(1);
  auto r = CreateNcclCommunicators({&cpu});
  ASSERT_FALSE(r.ok());
#ifdef C8_WITH_NCCL
  EXPECT_NE(r.message().find("not a CUDA backend"), std::string::npos) << r.message();
#else
  EXPECT_NE(r.message().find("NCCL support is not built in"), std::string::npos) << r.message();
#endif
}

}  // namespace
}  // namespace c8
