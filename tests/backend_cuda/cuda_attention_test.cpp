// CUDA paged attention (tensor-core prefill and decode kernels for bf16 / int8, CUDA-core
// kernel for fp32; all four attention states x {bf16, int8 C8, fp32} caches x head dims
// x GQA groups x block sizes, contexts up to 32k, ragged batches, scrambled block tables)
// against CpuPagedAttention run on the same cache bytes and the same bf16 q/k/v values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include "c8/backend/cpu/cpu_attention.h"
#include "c8/backend/cuda/cuda_kernels.h"
#include "c8/kv/c8_quant.h"
#include "cuda_test_util.h"

namespace c8 {
namespace {

using testing::RandomBf16Values;
using testing::RelErr;

struct Case {
  std::string name;
  std::vector<int32_t> num_cached;  // per sequence
  std::vector<int32_t> num_new;     // per sequence
};

struct Config {
  KvDType dt;
  int Hq, Hkv, D, block_size;
};

std::string Describe(const Case& c, const Config& f) {
  return c.name + " " + std::string(KvDTypeName(f.dt)) + " Hq " + std::to_string(f.Hq) + " Hkv " +
         std::to_string(f.Hkv) + " D " + std::to_string(f.D) + " block " +
         std::to_string(f.block_size);
}

// Runs one step (cached prefix already in the cache, new tokens written then attended) on
// both backends; returns the normalized error of the GPU output.
double RunCase(CudaBackend& gpu, ThreadPool& pool, const Case& c, const Config& f, uint32_t seed) {
  std::mt19937 rng(seed);
  const int S = static_cast<int>(c.num_cached.size());
  const int Hq = f.Hq, Hkv = f.Hkv, D = f.D, bs = f.block_size;
  const int64_t W = int64_t(Hq + 2 * Hkv) * D;
  std::uniform_real_distribution<float> ud(0.5f, 1.5f);
  std::normal_distribution<float> nd;
  std::vector<float> ks(Hkv * D), ko(Hkv * D), vs(Hkv * D), vo(Hkv * D);
  for (int i = 0; i < Hkv * D; ++i) {
    ks[i] = 3.0f / 127 * ud(rng);
    vs[i] = 3.0f / 127 * ud(rng);
    ko[i] = std::round(nd(rng) * 10);
    vo[i] = std::round(nd(rng) * 10);
  }
  // Scrambled block tables with 3 spare blocks.
  int max_blocks = 1, total_blocks = 0;
  std::vector<int32_t> ctx(S);
  for (int s = 0; s < S; ++s) {
    ctx[s] = c.num_cached[s] + c.num_new[s];
    max_blocks = std::max(max_blocks, (ctx[s] + bs - 1) / bs);
    total_blocks += (ctx[s] + bs - 1) / bs;
  }
  const int64_t num_blocks = total_blocks + 3;
  std::vector<int32_t> ids(num_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> tables(size_t(S) * max_blocks, -1);
  for (int s = 0, next = 0; s < S; ++s) {
    for (int b = 0; b < (ctx[s] + bs - 1) / bs; ++b)
      tables[size_t(s) * max_blocks + b] = ids[next++];
  }
  // Cache contents of the cached prefix, written on the host as the cache dtype stores them.
  const size_t elems = size_t(num_blocks) * Hkv * bs * D, esz = KvDTypeSize(f.dt);
  std::vector<uint8_t> kc(elems * esz), vc(elems * esz);
  for (size_t i = 0; i < elems; ++i) {  // garbage everywhere else
    for (size_t b = 0; b < esz; ++b)
      kc[i * esz + b] = vc[i * esz + b] = (f.dt == KvDType::kInt8) ? uint8_t(rng()) : 0x7F;
  }
  for (int s = 0; s < S; ++s) {
    for (int p = 0; p < c.num_cached[s]; ++p) {
      const int64_t block = tables[size_t(s) * max_blocks + p / bs];
      for (int g = 0; g < Hkv; ++g) {
        const size_t row = ((block * Hkv + g) * bs + p % bs) * size_t(D);
        for (int d = 0; d < D; ++d) {
          const float k = Bf16ToF32(F32ToBf16(nd(rng))), v = Bf16ToF32(F32ToBf16(nd(rng)));
          const int ch = g * D + d;
          switch (f.dt) {
            case KvDType::kF32:
              reinterpret_cast<float*>(kc.data())[row + d] = k;
              reinterpret_cast<float*>(vc.data())[row + d] = v;
              break;
            case KvDType::kBF16:
              reinterpret_cast<uint16_t*>(kc.data())[row + d] = F32ToBf16(k);
              reinterpret_cast<uint16_t*>(vc.data())[row + d] = F32ToBf16(v);
              break;
            case KvDType::kInt8:
              reinterpret_cast<int8_t*>(kc.data())[row + d] = QuantizeC8(k, ks[ch], ko[ch]);
              reinterpret_cast<int8_t*>(vc.data())[row + d] = QuantizeC8(v, vs[ch], vo[ch]);
              break;
          }
        }
      }
    }
  }
  // This step's tokens.
  std::vector<int32_t> qs(1, 0), slots;
  for (int s = 0; s < S; ++s) {
    for (int i = 0; i < c.num_new[s]; ++i) {
      const int p = c.num_cached[s] + i;
      slots.push_back(tables[size_t(s) * max_blocks + p / bs] * bs + p % bs);
    }
    qs.push_back(qs.back() + c.num_new[s]);
  }
  const int T = qs.back();
  std::vector<float> qkv = RandomBf16Values(size_t(T) * W, rng);
  AttentionShape shape{Hq, Hkv, D, 1.0f / std::sqrt(static_cast<float>(D))};
  AttentionMeta m;
  m.num_seqs = S;
  m.num_tokens = T;
  m.block_size = bs;
  m.max_blocks_per_seq = max_blocks;
  for (int s = 0; s < S; ++s) {
    m.max_query_len = std::max(m.max_query_len, c.num_new[s]);
    m.max_context_len = std::max(m.max_context_len, ctx[s]);
  }

  // GPU.
  std::vector<int32_t> ints;
  auto append = [&](const std::vector<int32_t>& v) {
    size_t at = ints.size();
    ints.insert(ints.end(), v.begin(), v.end());
    return at;
  };
  const size_t o_qs = append(qs), o_nc = append(c.num_cached), o_bt = append(tables),
               o_sm = append(slots);
  int32_t* dints = static_cast<int32_t*>(gpu.Malloc(ints.size() * 4));
  gpu.CopyToDevice(dints, ints.data(), ints.size() * 4);
  AttentionMeta gm = m;
  gm.query_start = dints + o_qs;
  gm.num_cached = dints + o_nc;
  gm.block_tables = dints + o_bt;
  gm.slot_mapping = dints + o_sm;
  KvLayerView gc;
  gc.dtype = f.dt;
  gc.k = gpu.Malloc(kc.size());
  gc.v = gpu.Malloc(vc.size());
  gpu.CopyToDevice(gc.k, kc.data(), kc.size());
  gpu.CopyToDevice(gc.v, vc.data(), vc.size());
  Tensor params[4];
  const std::vector<float>* hp[4] = {&ks, &ko, &vs, &vo};
  for (int i = 0; i < 4; ++i) params[i] = gpu.UploadF32(hp[i]->data(), {Hkv * D});
  if (f.dt == KvDType::kInt8) {
    gc.k_scale = params[0].as<float>();
    gc.k_offset = params[1].as<float>();
    gc.v_scale = params[2].as<float>();
    gc.v_offset = params[3].as<float>();
  }
  Tensor dqkv = testing::UploadBf16(gpu, qkv, {T, W});
  Tensor dout = testing::Poisoned(gpu, DType::kBF16, {T, int64_t(Hq) * D});
  gpu.WriteKvCache(dqkv, gm, shape, gc);
  gpu.Attention(dqkv, gm, gc, shape, dout);
  std::vector<float> got = testing::Download(gpu, dout);
  EXPECT_TRUE(gpu.status().ok()) << gpu.status().message();
  // The step's plan made once (PlanAttention) gives the same bits as planning per call; a plan
  // made for other metadata (here: a 1-token context, whose splits would not cover this one)
  // is not used.
  {
    AttentionMeta planned = gm;
    gpu.PlanAttention(shape, planned);
    EXPECT_TRUE(planned.plan.planned);
    AttentionMeta stale = gm;
    AttentionMeta tiny = gm;
    tiny.max_context_len = 1;
    gpu.PlanAttention(shape, tiny);
    stale.plan = tiny.plan;
    for (const AttentionMeta* pm : {&planned, &stale}) {
      gpu.Memset(dout.data, 0xFF, dout.nbytes());
      gpu.Attention(dqkv, *pm, gc, shape, dout);
      std::vector<float> again = testing::Download(gpu, dout);
      EXPECT_EQ(std::memcmp(again.data(), got.data(), got.size() * sizeof(float)), 0)
          << c.name << (pm == &planned ? ": planned step" : ": stale plan");
    }
  }

  // CPU on the same bytes.
  m.query_start = qs.data();
  m.num_cached = c.num_cached.data();
  m.block_tables = tables.data();
  m.slot_mapping = slots.data();
  KvLayerView hc{f.dt, kc.data(), vc.data(), ks.data(), ko.data(), vs.data(), vo.data()};
  CpuWriteKvCache(qkv.data(), m, shape, hc, &pool);
  std::vector<float> ref(size_t(T) * Hq * D);
  CpuPagedAttention(qkv.data(), m, hc, shape, ref.data(), &pool);

  for (void* p : {static_cast<void*>(dints), gc.k, gc.v, dqkv.data, dout.data}) gpu.Free(p);
  for (Tensor& t : params) gpu.Free(t.data);
  return RelErr(got, ref);
}

const std::vector<Case>& StateCases() {
  static const std::vector<Case> cases = {
      {"PrefillNoCache", {0, 0, 0}, {1, 37, 130}},
      {"PrefillCacheHit", {16, 48, 96}, {5, 20, 33}},
      {"ChunkedPrefill", {100, 7, 0, 64, 1000}, {1, 19, 23, 1, 64}},
      {"DecodeOnly", {0, 1, 15, 16, 17, 200, 2047}, {1, 1, 1, 1, 1, 1, 1}},
  };
  return cases;
}

// C8_CUDA_QUICK=1 (used under compute-sanitizer) runs a reduced matrix.
bool Quick() {
  const char* e = std::getenv("C8_CUDA_QUICK");
  return e && e[0] == '1';
}

TEST(CudaPagedAttention, AllStatesDtypesHeadDimsGroupsBlockSizes) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  ThreadPool pool(0);
  uint32_t seed = 100;
  const std::vector<KvDType> dts =
      Quick() ? std::vector<KvDType>{KvDType::kBF16, KvDType::kInt8}
              : std::vector<KvDType>{KvDType::kBF16, KvDType::kInt8, KvDType::kF32};
  const std::vector<int> groups = Quick() ? std::vector<int>{1, 3} : std::vector<int>{1, 3, 4, 8};
  const std::vector<int> blocks = Quick() ? std::vector<int>{16} : std::vector<int>{16, 32};
  for (KvDType dt : dts) {
    for (int D : {64, 128}) {
      for (int G : groups) {
        for (int bs : blocks) {
          for (const Case& c : StateCases()) {
            const Config f{dt, 2 * G, 2, D, bs};
            EXPECT_LT(RunCase(*gpu, pool, c, f, seed++), 1e-2) << Describe(c, f);
          }
        }
      }
    }
  }
}

TEST(CudaPagedAttention, LongContextsAndLargeGroups) {
  C8_CUDA_BACKEND_OR_SKIP(gpu);
  ThreadPool pool(0);
  const std::vector<Case> cases = {
      {"DecodeLong", {0, 4095, 32767, 9000}, {1, 1, 1, 1}},
      {"DecodeSingle32k", {32767}, {1}},
      {"ChunkedLong", {32000, 5, 3000}, {40, 1, 1}},
      {"PrefillCacheHitLong", {8192}, {300}},
      {"PrefillNoCache2k", {0, 0}, {2048, 1}},
      // Tensor-core prefill: several row tiles and fresh tiles after a cached prefix whose
      // last tile is partial; a ragged batch mixing tile-edge chunk lengths and decode tokens.
      {"PrefillChunkAfterCache", {1000}, {700}},
      {"PrefillRagged", {0, 5, 64, 3000, 17, 40}, {65, 64, 63, 2, 129, 1}},
      // Prefill KV split (few row tiles after long prefixes): parts of unequal use per
      // sequence, a sequence with a one-tile prefix, a decode token in the batch.
      {"PrefillSplitRagged", {20000, 7, 9000, 4000}, {40, 130, 1, 3}},
  };
  uint32_t seed = 900;
  for (KvDType dt : {KvDType::kBF16, KvDType::kInt8}) {
    for (const Case& c : cases) {
      const Config f{dt, 8, 2, 128, 16};
      EXPECT_LT(RunCase(*gpu, pool, c, f, seed++), 1e-2) << Describe(c, f);
    }
    // Groups larger than one CTA's head chunk, 32/8 heads, odd batch.
    const Config big{dt, 12, 1, 64, 32};
    EXPECT_LT(RunCase(*gpu, pool, StateCases()[2], big, seed++), 1e-2)
        << Describe(StateCases()[2], big);
    // Prefill split with 32 / 8 heads and head dim 64, G = 1 (no packing).
    const Case split{"PrefillSplit32x8", {12000, 3000}, {40, 2}};
    const Config llama64{dt, 32, 8, 64, 16};
    EXPECT_LT(RunCase(*gpu, pool, split, llama64, seed++), 1e-2) << Describe(split, llama64);
    const Config g1{dt, 4, 4, 64, 32};
    EXPECT_LT(RunCase(*gpu, pool, split, g1, seed++), 1e-2) << Describe(split, g1);
    const Case b64{"Decode32x8", std::vector<int32_t>(33, 1000), std::vector<int32_t>(33, 1)};
    const Config llama{dt, 32, 8, 128, 16};
    EXPECT_LT(RunCase(*gpu, pool, b64, llama, seed++), 1e-2) << Describe(b64, llama);
  }
  // C8 decode with groups <= 8 takes the swapped tile step; the 16-row head tile (used for
  // larger groups) must stay right for them too.
  for (bool swap : {false, true}) {
    gpu->SetDecodeSwap(swap);
    for (int G : {1, 3, 8}) {
      for (int D : {64, 128}) {
        const Config f{KvDType::kInt8, 2 * G, 2, D, 16};
        EXPECT_LT(RunCase(*gpu, pool, cases[0], f, seed++), 1e-2)
            << Describe(cases[0], f) << (swap ? " swapped" : " 16-row tile");
      }
    }
  }
  gpu->SetDecodeSwap(true);
}

}  // namespace
}  // namespace c8
