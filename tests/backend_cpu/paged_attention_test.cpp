// CPU paged attention (every attention state, every KV dtype) against a dense reference
// on random data with scrambled block tables.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "c8/backend/cpu/cpu_attention.h"
#include "c8/kv/c8_quant.h"
#include "c8/util/bf16.h"

namespace c8 {
namespace {

struct Case {
  std::string name;
  std::vector<int32_t> num_cached;  // per sequence
  std::vector<int32_t> num_new;     // per sequence
};

// What the cache returns for a value written into it.
float RoundTrip(float x, KvDType dt, float scale, float offset) {
  switch (dt) {
    case KvDType::kF32:
      return x;
    case KvDType::kBF16:
      return Bf16ToF32(F32ToBf16(x));
    case KvDType::kInt8:
      return DequantizeC8(QuantizeC8(x, scale, offset), scale, offset);
  }
  return x;
}

void RunCase(const Case& c, KvDType dt, int Hq, int Hkv, int D, int block_size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.5f, 1.5f);
  const int S = static_cast<int>(c.num_cached.size());
  const int64_t stride = static_cast<int64_t>(Hq + 2 * Hkv) * D;
  // Per-channel C8 parameters (asymmetric).
  std::vector<float> ks(Hkv * D), ko(Hkv * D), vs(Hkv * D), vo(Hkv * D);
  for (int i = 0; i < Hkv * D; ++i) {
    ks[i] = 3.0f / 127 * ud(rng);
    vs[i] = 3.0f / 127 * ud(rng);
    ko[i] = std::round(nd(rng) * 10);
    vo[i] = std::round(nd(rng) * 10);
  }
  // Full K/V of every sequence (positions 0..ctx-1), random.
  std::vector<int32_t> ctx(S);
  int max_blocks = 0, total_blocks = 0;
  for (int s = 0; s < S; ++s) {
    ctx[s] = c.num_cached[s] + c.num_new[s];
    max_blocks = std::max(max_blocks, (ctx[s] + block_size - 1) / block_size);
    total_blocks += (ctx[s] + block_size - 1) / block_size;
  }
  std::vector<std::vector<float>> K(S), V(S);  // (ctx, Hkv, D)
  for (int s = 0; s < S; ++s) {
    K[s].resize(static_cast<size_t>(ctx[s]) * Hkv * D);
    V[s].resize(K[s].size());
    for (auto& x : K[s]) x = nd(rng);
    for (auto& x : V[s]) x = nd(rng);
  }
  // Scrambled block ids.
  std::vector<int32_t> ids(total_blocks + 3);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> tables(static_cast<size_t>(S) * max_blocks, -1);
  int next = 0;
  for (int s = 0; s < S; ++s) {
    for (int b = 0; b < (ctx[s] + block_size - 1) / block_size; ++b) {
      tables[s * max_blocks + b] = ids[next++];
    }
  }
  const int64_t num_blocks = total_blocks + 3;
  const int64_t elems = num_blocks * Hkv * block_size * D;
  std::vector<uint8_t> kc(elems * KvDTypeSize(dt)), vc(elems * KvDTypeSize(dt));
  KvLayerView cache;
  cache.dtype = dt;
  cache.k = kc.data();
  cache.v = vc.data();
  cache.k_scale = ks.data();
  cache.k_offset = ko.data();
  cache.v_scale = vs.data();
  cache.v_offset = vo.data();

  // Step 1: write the cached prefix of every sequence through CpuWriteKvCache.
  auto build_meta = [&](const std::vector<int32_t>& cached, const std::vector<int32_t>& n_new,
                        std::vector<int32_t>& qs, std::vector<int32_t>& slots,
                        std::vector<float>& qkv) {
    qs.assign(1, 0);
    slots.clear();
    qkv.clear();
    for (int s = 0; s < S; ++s) {
      for (int i = 0; i < n_new[s]; ++i) {
        const int pos = cached[s] + i;
        slots.push_back(tables[s * max_blocks + pos / block_size] * block_size + pos % block_size);
        const size_t row = qkv.size();
        qkv.resize(row + stride);
        for (int h = 0; h < Hq * D; ++h) qkv[row + h] = nd(rng);
        for (int j = 0; j < Hkv * D; ++j) {
          qkv[row + Hq * D + j] = K[s][static_cast<size_t>(pos) * Hkv * D + j];
          qkv[row + (Hq + Hkv) * D + j] = V[s][static_cast<size_t>(pos) * Hkv * D + j];
        }
      }
      qs.push_back(qs.back() + n_new[s]);
    }
  };
  AttentionShape shape{Hq, Hkv, D, 1.0f / std::sqrt(static_cast<float>(D))};
  {
    std::vector<int32_t> zeros(S, 0), qs, slots;
    std::vector<float> qkv;
    build_meta(zeros, c.num_cached, qs, slots, qkv);
    AttentionMeta m;
    m.num_seqs = S;
    m.num_tokens = qs.back();
    m.block_size = block_size;
    m.max_blocks_per_seq = max_blocks;
    m.query_start = qs.data();
    m.num_cached = zeros.data();
    m.block_tables = tables.data();
    m.slot_mapping = slots.data();
    CpuWriteKvCache(qkv.data(), m, shape, cache, nullptr);
  }
  // Step 2: the step under test: new tokens after the cached prefix.
  std::vector<int32_t> qs, slots;
  std::vector<float> qkv;
  build_meta(c.num_cached, c.num_new, qs, slots, qkv);
  AttentionMeta m;
  m.num_seqs = S;
  m.num_tokens = qs.back();
  m.block_size = block_size;
  m.max_blocks_per_seq = max_blocks;
  m.query_start = qs.data();
  m.num_cached = c.num_cached.data();
  m.block_tables = tables.data();
  m.slot_mapping = slots.data();
  std::vector<float> out(static_cast<size_t>(m.num_tokens) * Hq * D, NAN);
  ThreadPool pool(2);
  CpuPagedAttention(qkv.data(), m, cache, shape, out.data(), &pool);

  // Dense reference in double: cached keys read back as the cache stores them.
  double err = 0, ref_norm = 0;
  for (int s = 0; s < S; ++s) {
    for (int i = 0; i < c.num_new[s]; ++i) {
      const int t = qs[s] + i, pos = c.num_cached[s] + i;
      for (int h = 0; h < Hq; ++h) {
        const int g = h / (Hq / Hkv);
        std::vector<double> sc(pos + 1);
        double mx = -1e300;
        for (int j = 0; j <= pos; ++j) {
          double dot = 0;
          for (int d = 0; d < D; ++d) {
            float k = K[s][(static_cast<size_t>(j) * Hkv + g) * D + d];
            if (j < c.num_cached[s]) k = RoundTrip(k, dt, ks[g * D + d], ko[g * D + d]);
            dot += static_cast<double>(qkv[t * stride + h * D + d]) * k;
          }
          sc[j] = dot * shape.scale;
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (auto& x : sc) sum += (x = std::exp(x - mx));
        for (int d = 0; d < D; ++d) {
          double acc = 0;
          for (int j = 0; j <= pos; ++j) {
            float v = V[s][(static_cast<size_t>(j) * Hkv + g) * D + d];
            if (j < c.num_cached[s]) v = RoundTrip(v, dt, vs[g * D + d], vo[g * D + d]);
            acc += sc[j] * v;
          }
          const double ref = acc / sum;
          const double got = out[(static_cast<size_t>(t) * Hq + h) * D + d];
          ASSERT_FALSE(std::isnan(got)) << "unwritten output";
          err += (got - ref) * (got - ref);
          ref_norm += ref * ref;
        }
      }
    }
  }
  const double rel = std::sqrt(err / ref_norm);
  EXPECT_LT(rel, 2e-6) << c.name << " dtype " << KvDTypeName(dt) << " Hq " << Hq << " Hkv " << Hkv
                       << " D " << D << " block " << block_size;
}

TEST(PagedAttention, AllStatesAllDtypesMatchDenseReference) {
  const std::vector<Case> cases = {
      {"PrefillNoCache", {0, 0, 0}, {1, 37, 70}},
      {"PrefillCacheHit", {16, 48, 32}, {5, 20, 33}},
      {"ChunkedPrefill", {100, 7, 0, 64}, {1, 19, 23, 1}},
      {"DecodeOnly", {1, 15, 16, 17, 200}, {1, 1, 1, 1, 1}},
  };
  uint32_t seed = 1;
  for (KvDType dt : {KvDType::kF32, KvDType::kBF16, KvDType::kInt8}) {
    for (const Case& c : cases) {
      RunCase(c, dt, 8, 2, 64, 16, seed++);
      RunCase(c, dt, 9, 3, 64, 32, seed++);
      RunCase(c, dt, 4, 4, 128, 16, seed++);
    }
  }
}

TEST(C8Quant, RoundHalfToEvenClampAndOffset) {
  EXPECT_EQ(QuantizeC8(0.5f, 1.0f, 0.0f), 0);  // half to even
  EXPECT_EQ(QuantizeC8(1.5f, 1.0f, 0.0f), 2);
  EXPECT_EQ(QuantizeC8(2.5f, 1.0f, 0.0f), 2);
  EXPECT_EQ(QuantizeC8(-0.5f, 1.0f, 0.0f), 0);
  EXPECT_EQ(QuantizeC8(-1.5f, 1.0f, 0.0f), -2);
  EXPECT_EQ(QuantizeC8(1000.0f, 1.0f, 0.0f), 127);  // clamps
  EXPECT_EQ(QuantizeC8(-1000.0f, 1.0f, 0.0f), -128);
  EXPECT_EQ(QuantizeC8(0.0f, 0.1f, 5.0f), 5);  // offset shifts the zero point
  EXPECT_EQ(QuantizeC8(1.0f, 0.1f, -3.0f), 7);
  EXPECT_FLOAT_EQ(DequantizeC8(7, 0.1f, -3.0f), 1.0f);
  EXPECT_FLOAT_EQ(DequantizeC8(-128, 2.0f, 0.5f), -257.0f);
}

}  // namespace
}  // namespace c8
