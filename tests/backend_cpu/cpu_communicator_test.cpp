// CpuCommunicator: sums in rank order (bit-identical on every rank), column gathers, and a
// failing rank that wakes the others with its cause instead of leaving them blocked.
#include "c8/backend/cpu/cpu_communicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <random>
#include <thread>
#include <vector>

namespace c8 {
namespace {

Tensor F32(std::vector<float>& v, std::vector<int64_t> shape) {
  Tensor t;
  t.data = v.data();
  t.dtype = DType::kF32;
  t.ndim = static_cast<int>(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) t.shape[i] = shape[i];
  return t;
}

// Runs fn(rank) on N threads and joins them.
void OnRanks(int n, const std::function<void(int)>& fn) {
  std::vector<std::thread> ts;
  for (int r = 0; r < n; ++r) ts.emplace_back(fn, r);
  for (auto& t : ts) t.join();
}

TEST(CpuCommunicator, AllReduceSumsInRankOrderOnEveryRank) {
  for (int n : {1, 2, 3, 4}) {
    auto comms = CreateCpuCommunicators(n);
    const int64_t count = 1001;  // not a multiple of the rank count
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1e3f, 1e3f);
    std::vector<std::vector<float>> x(static_cast<size_t>(n));
    for (auto& v : x) {
      v.resize(count);
      for (float& f : v) f = u(rng);
    }
    // The reference: float sums in rank order.
    std::vector<float> want(count, 0.0f);
    for (int r = 0; r < n; ++r)
      for (int64_t i = 0; i < count; ++i) want[i] += x[r][i];
    OnRanks(n, [&](int r) {
      Tensor t = F32(x[r], {7, 143});
      comms[r]->AllReduceSum(t);
    });
    for (int r = 0; r < n; ++r) {
      ASSERT_TRUE(comms[r]->status().ok()) << comms[r]->status().message();
      for (int64_t i = 0; i < count; ++i) ASSERT_EQ(x[r][i], want[i]) << "n " << n << " r " << r;
    }
  }
}

TEST(CpuCommunicator, AllGatherColumnsPlacesEachRanksBlock) {
  const int n = 3;
  auto comms = CreateCpuCommunicators(n);
  const std::vector<int64_t> cols = {4, 4, 2};  // uneven, padded to Cp = 4
  const int64_t R = 3, Cp = 4, C = 10;
  std::vector<std::vector<float>> in(n), out(n, std::vector<float>(R * C, -1.0f));
  for (int r = 0; r < n; ++r) {
    in[r].resize(R * Cp);
    for (int64_t i = 0; i < R; ++i)
      for (int64_t j = 0; j < Cp; ++j) in[r][i * Cp + j] = 100.0f * r + 10.0f * i + j;
  }
  OnRanks(n, [&](int r) {
    Tensor a = F32(in[r], {R, Cp});
    Tensor b = F32(out[r], {R, C});
    comms[r]->AllGatherColumns(a, cols, b);
  });
  for (int r = 0; r < n; ++r) {
    ASSERT_TRUE(comms[r]->status().ok());
    int64_t c0 = 0;
    for (int k = 0; k < n; ++k) {
      for (int64_t i = 0; i < R; ++i)
        for (int64_t j = 0; j < cols[k]; ++j)
          EXPECT_EQ(out[r][i * C + c0 + j], 100.0f * k + 10.0f * i + j);
      c0 += cols[k];
    }
  }
}

TEST(CpuCommunicator, AbortWakesBlockedRanksWithTheCause) {
  const int n = 3;
  auto comms = CreateCpuCommunicators(n);
  std::vector<std::vector<float>> x(n, std::vector<float>(8, 1.0f));
  // Ranks 0 and 1 enter a collective; rank 2 fails before it and aborts.
  OnRanks(n, [&](int r) {
    if (r == 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      comms[r]->Abort("rank 2: out of memory in layer 5");
      return;
    }
    Tensor t = F32(x[r], {8});
    comms[r]->AllReduceSum(t);
  });
  for (int r = 0; r < 2; ++r) {
    const Status st = comms[r]->status();
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("rank " + std::to_string(r)), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("out of memory in layer 5"), std::string::npos) << st.message();
  }
  // Later collectives return at once.
  Tensor t = F32(x[0], {8});
  comms[0]->AllReduceSum(t);
  EXPECT_FALSE(comms[0]->status().ok());
}

TEST(CpuCommunicator, ABadCallOnOneRankReleasesTheOthers) {
  const int n = 2;
  auto comms = CreateCpuCommunicators(n);
  std::vector<float> a(4, 1.0f);
  std::vector<float> b(4, 1.0f);
  OnRanks(n, [&](int r) {
    Tensor t = F32(r == 0 ? a : b, {4});
    if (r == 1) t.dtype = DType::kBF16;  // rejected by rank 1 before it meets the others
    comms[r]->AllReduceSum(t);
  });
  const Status s1 = comms[1]->status();
  ASSERT_FALSE(s1.ok());
  EXPECT_NE(s1.message().find("only fp32"), std::string::npos) << s1.message();
  const Status s0 = comms[0]->status();
  ASSERT_FALSE(s0.ok());
  EXPECT_NE(s0.message().find("rank 1: all-reduce: only fp32"), std::string::npos) << s0.message();
}

}  // namespace
}  // namespace c8
