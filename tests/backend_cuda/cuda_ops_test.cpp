// Every non-attention op of the CUDA backend against the CPU backend on random bf16 inputs.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "c8/backend/cpu/cpu_attention.h"
#include "c8/backend/cpu/cpu_backend.h"
#include "c8/kv/c8_quant.h"
#include "cuda_test_util.h"

namespace c8 {
namespace {

using testing::Download;
using testing::Poisoned;
using testing::RandomBf16Values;
using testing::RelErr;
using testing::UploadBf16;

constexpr double kTol = 1e-2;

Tensor HostTensor(std::vector<float>& v, std::initializer_list<int64_t> shape) {
  return Tensor(v.data(), DType::kF32, shape);
}

TEST(CudaBackend, CreateGivesErrorOrHopperBackend) {
  auto r = CreateCudaBackend();
  if (!r.ok()) {
    EXPECT_NE(r.message().find("cuda backend"), std::string::npos) << r.message();
    GTEST_SKIP() << r.message();
  }
  EXPECT_EQ(r.value()->Name(), "cuda");
  EXPECT_EQ(r.value()->ActivationDType(), DType::kBF16);
  auto& gpu = static_cast<CudaBackend&>(*r.value());
  EXPECT_EQ(gpu.device(), 0);
  gpu.BindThread();
  EXPECT_TRUE(gpu.status().ok()) << gpu.status().message();
}

TEST(CudaBackend, MissingDeviceIndexIsAnErrorNamingIt) {
  auto r = CreateCudaBackend(1000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("cuda backend"), std::string::npos) << r.message();
  int count = 0;
  if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0) {
    EXPECT_NE(r.message().find("CUDA device 1000 requested but only " + std::to_string(count) +
                               " present"),
              std::string::npos)
        << r.message();
  }
  cudaGetLastError();
}

TEST(CudaOps, UploadWeightConvertsEveryFloatDtype) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  const int64_t n = 1000;
  std::vector<float> f32(n);
  for (auto& x : f32) x = nd(rng);
  std::vector<uint16_t> f16(n), bf(n);
  for (int64_t i = 0; i < n; ++i) {
    f16[i] = F32ToF16(f32[i]);
    bf[i] = F32ToBf16(f32[i]);
  }
  std::vector<double> f64(f32.begin(), f32.end());
  struct Src {
    const void* p;
    DType dt;
  } srcs[] = {{f32.data(), DType::kF32},
              {f16.data(), DType::kF16},
              {bf.data(), DType::kBF16},
              {f64.data(), DType::kF64}};
  for (const Src& s : srcs) {
    auto t = gpu->UploadWeight(s.p, s.dt, {10, 100});
    ASSERT_TRUE(t.ok()) << t.message();
    EXPECT_EQ(t->dtype, DType::kBF16);
    std::vector<float> got = Download(*gpu, *t);
    for (int64_t i = 0; i < n; ++i) {
      const float want =
          s.dt == DType::kF16 ? Bf16ToF32(F32ToBf16(F16ToF32(f16[i]))) : Bf16ToF32(bf[i]);
      ASSERT_EQ(got[i], want) << DTypeName(s.dt) << " element " << i;
    }
    gpu->Free(t->data);
  }
  int32_t ints[4] = {1, 2, 3, 4};
  EXPECT_FALSE(gpu->UploadWeight(ints, DType::kI32, {4}).ok());
  EXPECT_TRUE(gpu->status().ok()) << gpu->status().message();
}

TEST(CudaOps, EmbeddingAndGatherRows) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  std::mt19937 rng(2);
  for (int64_t H : {72, 33}) {
    const int64_t V = 50, T = 9;
    std::vector<float> table = RandomBf16Values(V * H, rng);
    auto w = gpu->UploadWeight(table.data(), DType::kF32, {V, H});
    ASSERT_TRUE(w.ok());
    std::vector<int32_t> ids = {3, 0, 49, 7, 7, 12, 1, 48, 20};
    int32_t* dids = static_cast<int32_t*>(gpu->Malloc(T * 4));
    gpu->CopyToDevice(dids, ids.data(), T * 4);
    Tensor out = Poisoned(*gpu, DType::kBF16, {T, H});
    gpu->Embedding(*w, dids, 0, out);
    std::vector<float> got = Download(*gpu, out);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < H; ++i) ASSERT_EQ(got[t * H + i], table[ids[t] * H + i]);
    }
    // GatherRows of the embedded rows.
    std::vector<int32_t> rows = {8, 0, 3};
    int32_t* drows = static_cast<int32_t*>(gpu->Malloc(12));
    gpu->CopyToDevice(drows, rows.data(), 12);
    Tensor g = Poisoned(*gpu, DType::kBF16, {3, H});
    gpu->GatherRows(out, drows, g);
    std::vector<float> gg = Download(*gpu, g);
    for (int r = 0; r < 3; ++r) {
      for (int64_t i = 0; i < H; ++i) ASSERT_EQ(gg[r * H + i], got[rows[r] * H + i]);
    }
    for (void* p :
         {w->data, static_cast<void*>(dids), out.data, static_cast<void*>(drows), g.data}) {
      gpu->Free(p);
    }
  }
  EXPECT_TRUE(gpu->status().ok()) << gpu->status().message();
}

// Vocab-parallel lookup: the table holds vocab rows [vocab_begin, vocab_begin + Vr); ids outside
// (below, above, negative) give zero rows. Against the CPU backend on the same table.
TEST(CudaOps, EmbeddingVocabShardMatchesCpu) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(1);
  std::mt19937 rng(21);
  for (int64_t H : {64, 33}) {
    const int64_t Vr = 40, vocab_begin = 80;
    std::vector<float> table = RandomBf16Values(Vr * H, rng);
    auto w = gpu->UploadWeight(table.data(), DType::kF32, {Vr, H});
    ASSERT_TRUE(w.ok()) << w.message();
    auto hw = cpu.UploadWeight(table.data(), DType::kF32, {Vr, H});
    ASSERT_TRUE(hw.ok()) << hw.message();
    // In range: 80, 119, 100, 81; outside: 79, 120, 0, 5000, -1.
    std::vector<int32_t> ids = {80, 79, 119, 120, 0, 100, 5000, -1, 81, 100};
    const int64_t T = static_cast<int64_t>(ids.size());
    int32_t* dids = static_cast<int32_t*>(gpu->Malloc(T * 4));
    gpu->CopyToDevice(dids, ids.data(), T * 4);
    Tensor out = Poisoned(*gpu, DType::kBF16, {T, H});
    gpu->Embedding(*w, dids, vocab_begin, out);
    std::vector<float> got = Download(*gpu, out);
    std::vector<float> ref(T * H, -1.0f);
    Tensor href = HostTensor(ref, {T, H});
    cpu.Embedding(*hw, ids.data(), vocab_begin, href);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t row = ids[t] - vocab_begin;
      const bool here = row >= 0 && row < Vr;
      for (int64_t i = 0; i < H; ++i) {
        ASSERT_EQ(got[t * H + i], ref[t * H + i]) << "token " << t << " dim " << i;
        ASSERT_EQ(got[t * H + i], here ? table[row * H + i] : 0.0f) << "token " << t;
      }
    }
    for (void* p : {w->data, static_cast<void*>(dids), out.data}) gpu->Free(p);
    cpu.Free(hw->data);
  }
  EXPECT_TRUE(gpu->status().ok()) << gpu->status().message();
}

TEST(CudaOps, RmsNormAddRmsNormSiluMulMatchCpu) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(4);
  std::mt19937 rng(3);
  for (int64_t H : {576, 4096, 100}) {
    const int64_t T = 7;
    std::vector<float> x = RandomBf16Values(T * H, rng), res = RandomBf16Values(T * H, rng);
    std::vector<float> w = RandomBf16Values(H, rng, 0.2f, 1.0f);
    auto dw = gpu->UploadWeight(w.data(), DType::kF32, {H});
    ASSERT_TRUE(dw.ok());
    Tensor dx = UploadBf16(*gpu, x, {T, H}), dres = UploadBf16(*gpu, res, {T, H});
    Tensor dout = Poisoned(*gpu, DType::kBF16, {T, H});
    std::vector<float> out(T * H);
    Tensor hx = HostTensor(x, {T, H}), hw = HostTensor(w, {H}), hout = HostTensor(out, {T, H});
    gpu->RmsNorm(dx, *dw, 1e-6f, dout);
    cpu.RmsNorm(hx, hw, 1e-6f, hout);
    EXPECT_LT(RelErr(Download(*gpu, dout), out), kTol) << "RmsNorm H " << H;

    gpu->Memset(dout.data, 0xFF, dout.nbytes());
    gpu->AddRmsNorm(dres, dx, *dw, 1e-5f, dout);
    Tensor hres = HostTensor(res, {T, H});
    cpu.AddRmsNorm(hres, hx, hw, 1e-5f, hout);
    EXPECT_LT(RelErr(Download(*gpu, dout), out), kTol) << "AddRmsNorm out H " << H;
    EXPECT_LT(RelErr(Download(*gpu, dres), res), kTol) << "AddRmsNorm residual H " << H;

    // SiluMul with I = H / 2 over gate_up = x.
    const int64_t I = H / 2;
    Tensor dact = Poisoned(*gpu, DType::kBF16, {T, I});
    std::vector<float> act(T * I);
    Tensor hgu = HostTensor(x, {T, 2 * I}), hact = HostTensor(act, {T, I});
    Tensor dgu = dx;
    dgu.shape = {T, 2 * I};
    gpu->SiluMul(dgu, dact);
    cpu.SiluMul(hgu, hact);
    EXPECT_LT(RelErr(Download(*gpu, dact), act), kTol) << "SiluMul I " << I;
    for (void* p : {dw->data, dx.data, dres.data, dout.data, dact.data}) gpu->Free(p);
  }
  EXPECT_TRUE(gpu->status().ok()) << gpu->status().message();
}

TEST(CudaOps, LinearMatchesCpuForBf16AndF32Outputs) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(4);
  std::mt19937 rng(4);
  struct Shape {
    int64_t T, K, N;
    bool bias, f32_out;
  } shapes[] = {{1, 576, 1728, false, false},
                {7, 576, 320, true, false},
                {33, 1024, 4096, false, false},
                {3, 576, 49152, false, true},
                {130, 256, 96, true, true}};
  for (const Shape& s : shapes) {
    std::vector<float> x = RandomBf16Values(s.T * s.K, rng), w = RandomBf16Values(s.N * s.K, rng);
    std::vector<float> b = RandomBf16Values(s.N, rng);
    auto dw = gpu->UploadWeight(w.data(), DType::kF32, {s.N, s.K});
    auto db = gpu->UploadWeight(b.data(), DType::kF32, {s.N});
    ASSERT_TRUE(dw.ok() && db.ok());
    Tensor dx = UploadBf16(*gpu, x, {s.T, s.K});
    Tensor dy = Poisoned(*gpu, s.f32_out ? DType::kF32 : DType::kBF16, {s.T, s.N});
    std::vector<float> y(s.T * s.N);
    Tensor hx = HostTensor(x, {s.T, s.K}), hw = HostTensor(w, {s.N, s.K}),
           hb = HostTensor(b, {s.N}), hy = HostTensor(y, {s.T, s.N});
    gpu->Linear(dx, *dw, s.bias ? &db.value() : nullptr, dy);
    cpu.Linear(hx, hw, s.bias ? &hb : nullptr, hy);
    EXPECT_LT(RelErr(Download(*gpu, dy), y), kTol)
        << "T " << s.T << " K " << s.K << " N " << s.N << " bias " << s.bias;
    for (void* p : {dw->data, db->data, dx.data, dy.data}) gpu->Free(p);
  }
  EXPECT_TRUE(gpu->status().ok()) << gpu->status().message();
}

TEST(CudaOps, QkNormRopeMatchesCpu) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  CpuBackend cpu(4);
  std::mt19937 rng(5);
  for (int D : {64, 128}) {
    for (bool norm : {false, true}) {
      const int Hq = 6, Hkv = 2, T = 11, max_pos = 4096;
      const int64_t W = int64_t(Hq + 2 * Hkv) * D;
      std::vector<float> qkv = RandomBf16Values(T * W, rng);
      std::vector<float> qn = RandomBf16Values(D, rng, 0.2f, 1.0f);
      std::vector<float> kn = RandomBf16Values(D, rng, 0.2f, 1.0f);
      std::vector<float> cs(int64_t(max_pos) * D);
      for (int p = 0; p < max_pos; ++p) {
        for (int i = 0; i < D / 2; ++i) {
          const double a = p * std::pow(10000.0, -2.0 * i / D);
          cs[int64_t(p) * D + i] = static_cast<float>(std::cos(a));
          cs[int64_t(p) * D + D / 2 + i] = static_cast<float>(std::sin(a));
        }
      }
      std::vector<int32_t> pos = {0, 1, 2, 17, 100, 4095, 33, 34, 35, 2000, 7};
      int32_t* dpos = static_cast<int32_t*>(gpu->Malloc(T * 4));
      gpu->CopyToDevice(dpos, pos.data(), T * 4);
      Tensor dcs = gpu->UploadF32(cs.data(), {max_pos, D});
      auto dqn = gpu->UploadWeight(qn.data(), DType::kF32, {D});
      auto dkn = gpu->UploadWeight(kn.data(), DType::kF32, {D});
      ASSERT_TRUE(dqn.ok() && dkn.ok());
      Tensor dqkv = UploadBf16(*gpu, qkv, {T, W});
      AttentionShape shape{Hq, Hkv, D, 1.0f};
      gpu->QkNormRope(dqkv, dpos, norm ? &dqn.value() : nullptr, norm ? &dkn.value() : nullptr,
                      1e-6f, dcs, shape);
      Tensor hqkv = HostTensor(qkv, {T, W}), hcs = HostTensor(cs, {max_pos, D}),
             hqn = HostTensor(qn, {D}), hkn = HostTensor(kn, {D});
      cpu.QkNormRope(hqkv, pos.data(), norm ? &hqn : nullptr, norm ? &hkn : nullptr, 1e-6f, hcs,
                     shape);
      EXPECT_LT(RelErr(Download(*gpu, dqkv), qkv), kTol) << "D " << D << " norm " << norm;
      for (void* p : {static_cast<void*>(dpos), dcs.data, dqn->data, dkn->data, dqkv.data}) {
        gpu->Free(p);
      }
    }
  }
  EXPECT_TRUE(gpu->status().ok()) << gpu->status().message();
}

// The cache bytes written on the GPU equal the CPU's (exact: same inputs, same formula).
TEST(CudaOps, WriteKvCacheMatchesCpuBytes) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  std::mt19937 rng(6);
  for (KvDType dt : {KvDType::kF32, KvDType::kBF16, KvDType::kInt8}) {
    for (int D : {64, 128}) {
      const int Hq = 8, Hkv = 2, T = 40, bs = 16, num_blocks = 7;
      const int64_t W = int64_t(Hq + 2 * Hkv) * D;
      std::vector<float> qkv = RandomBf16Values(T * W, rng, 2.0f);
      std::vector<float> ks(Hkv * D), ko(Hkv * D), vs(Hkv * D), vo(Hkv * D);
      std::uniform_real_distribution<float> ud(0.5f, 1.5f);
      for (int i = 0; i < Hkv * D; ++i) {
        ks[i] = 3.0f / 127 * ud(rng);
        vs[i] = 3.0f / 127 * ud(rng);
        ko[i] = std::round(ud(rng) * 10 - 10);
        vo[i] = std::round(ud(rng) * 10 - 10);
      }
      std::vector<int32_t> slots(T);
      std::vector<int32_t> perm(num_blocks * bs);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      for (int t = 0; t < T; ++t) slots[t] = t % 9 == 4 ? -1 : perm[t];
      const size_t bytes = size_t(num_blocks) * Hkv * bs * D * KvDTypeSize(dt);
      std::vector<uint8_t> hk(bytes, 0x5A), hv(bytes, 0x5A);
      KvLayerView hc{dt, hk.data(), hv.data(), ks.data(), ko.data(), vs.data(), vo.data()};
      AttentionMeta m;
      m.num_seqs = 1;
      m.num_tokens = T;
      m.block_size = bs;
      m.slot_mapping = slots.data();
      AttentionShape shape{Hq, Hkv, D, 1.0f};
      CpuWriteKvCache(qkv.data(), m, shape, hc, nullptr);

      KvLayerView gc = hc;
      gc.k = gpu->Malloc(bytes);
      gc.v = gpu->Malloc(bytes);
      gpu->CopyToDevice(gc.k, std::vector<uint8_t>(bytes, 0x5A).data(), bytes);
      gpu->CopyToDevice(gc.v, std::vector<uint8_t>(bytes, 0x5A).data(), bytes);
      Tensor tks = gpu->UploadF32(ks.data(), {Hkv * D}), tko = gpu->UploadF32(ko.data(), {Hkv * D});
      Tensor tvs = gpu->UploadF32(vs.data(), {Hkv * D}), tvo = gpu->UploadF32(vo.data(), {Hkv * D});
      gc.k_scale = tks.as<float>();
      gc.k_offset = tko.as<float>();
      gc.v_scale = tvs.as<float>();
      gc.v_offset = tvo.as<float>();
      int32_t* dslots = static_cast<int32_t*>(gpu->Malloc(T * 4));
      gpu->CopyToDevice(dslots, slots.data(), T * 4);
      AttentionMeta gm = m;
      gm.slot_mapping = dslots;
      Tensor dqkv = UploadBf16(*gpu, qkv, {T, W});
      gpu->WriteKvCache(dqkv, gm, shape, gc);
      std::vector<uint8_t> gk(bytes), gv(bytes);
      gpu->CopyToHost(gk.data(), gc.k, bytes);
      gpu->CopyToHost(gv.data(), gc.v, bytes);
      EXPECT_TRUE(gk == hk) << KvDTypeName(dt) << " D " << D << " K bytes differ";
      EXPECT_TRUE(gv == hv) << KvDTypeName(dt) << " D " << D << " V bytes differ";
      for (void* p : {gc.k, gc.v, tks.data, tko.data, tvs.data, tvo.data,
                      static_cast<void*>(dslots), dqkv.data}) {
        gpu->Free(p);
      }
    }
  }
  EXPECT_TRUE(gpu->status().ok()) << gpu->status().message();
}

}  // namespace
}  // namespace c8
