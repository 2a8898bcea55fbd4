#include "c8/model/tensor_parallel.h"

#include <algorithm>
#include <string>

namespace c8 {

namespace {

// [begin, end) of part `r` of `n` over `total` items in units of `unit` (total % unit == 0).
std::pair<int64_t, int64_t> Part(int64_t total, int64_t unit, int r, int n) {
  const int64_t units = total / unit;
  return {units * r / n * unit, units * (r + 1) / n * unit};
}

std::string ValidSizes(const ModelConfig& c) {
  std::string out;
  for (int n = 1; n <= 64; ++n) {
    const bool ok = n <= c.num_kv_heads ? true : n % c.num_kv_heads == 0 && c.num_heads % n == 0;
    if (ok && n <= c.intermediate_size && n <= c.vocab_size) {
      out += (out.empty() ? "" : ", ") + std::to_string(n);
    }
  }
  return out;
}

}  // namespace

Result<ShardSpec> MakeShardSpec(const ModelConfig& c, int rank, int size) {
  if (size < 1) return Error("--tensor-parallel-size must be >= 1, got " + std::to_string(size));
  if (rank < 0 || rank >= size) return Error("tensor-parallel rank out of range");
  const int64_t Hq = c.num_heads, Hkv = c.num_kv_heads;
  if (Hkv <= 0 || Hq % Hkv != 0) {
    return Error("config.json: num_attention_heads " + std::to_string(Hq) +
                 " is not a multiple of num_key_value_heads " + std::to_string(Hkv));
  }
  const int64_t G = Hq / Hkv;
  ShardSpec s;
  s.rank = rank;
  s.size = size;
  if (size <= Hkv) {
    const auto [b, e] = Part(Hkv, 1, rank, size);
    s.kv_head_begin = b;
    s.num_kv_heads = e - b;
    s.q_head_begin = b * G;
    s.num_heads = (e - b) * G;
  } else {
    if (size % Hkv != 0 || Hq % size != 0) {
      return Error("--tensor-parallel-size " + std::to_string(size) +
                   ": with more ranks than num_key_value_heads (" + std::to_string(Hkv) +
                   ") the ranks must be a multiple of it and divide num_attention_heads (" +
                   std::to_string(Hq) + ") in config.json; sizes that work: " + ValidSizes(c));
    }
    const int64_t replicas = size / Hkv;
    s.kv_head_begin = rank / replicas;
    s.num_kv_heads = 1;
    s.num_heads = Hq / size;
    s.q_head_begin = rank * s.num_heads;
  }
  const int64_t I = c.intermediate_size;
  if (I < size) {
    return Error("--tensor-parallel-size " + std::to_string(size) + " exceeds intermediate_size " +
                 std::to_string(I) + " in config.json");
  }
  int64_t unit = 1;
  for (int64_t u : {64, 8}) {
    if (I % u == 0 && I / u >= size) {
      unit = u;
      break;
    }
  }
  const auto [ib, ie] = Part(I, unit, rank, size);
  s.inter_begin = ib;
  s.intermediate = ie - ib;
  const int64_t V = c.vocab_size;
  if (V < size) return Error("--tensor-parallel-size exceeds vocab_size in config.json");
  s.vocab_block = (V + size - 1) / size;
  for (int r = 0; r < size; ++r) {
    s.vocab_cols.push_back(std::clamp<int64_t>(V - r * s.vocab_block, 0, s.vocab_block));
  }
  s.vocab_begin = rank * s.vocab_block;
  s.vocab_rows = s.vocab_cols[static_cast<size_t>(rank)];
  if (s.vocab_rows == 0) {
    return Error("--tensor-parallel-size " + std::to_string(size) + " leaves rank " +
                 std::to_string(rank) + " no vocabulary rows (vocab_size " + std::to_string(V) +
                 ")");
  }
  return s;
}

}  // namespace c8
