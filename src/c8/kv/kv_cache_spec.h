// What a KV cache stores: chosen at run time, never by a build flag.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace c8 {

// kF32 exists for exact CPU comparisons; kBF16 is the "16-bit" cache; kInt8 is C8.
enum class KvDType : uint8_t { kF32, kBF16, kInt8 };

inline size_t KvDTypeSize(KvDType t) {
  return t == KvDType::kF32 ? 4 : t == KvDType::kBF16 ? 2 : 1;
}

inline std::string_view KvDTypeName(KvDType t) {
  return t == KvDType::kF32 ? "fp32" : t == KvDType::kBF16 ? "bf16" : "int8";
}

inline std::optional<KvDType> ParseKvDType(std::string_view s) {
  if (s == "fp32" || s == "float32") return KvDType::kF32;
  if (s == "bf16" || s == "bfloat16") return KvDType::kBF16;
  if (s == "int8" || s == "c8") return KvDType::kInt8;
  return std::nullopt;
}

// Layout of one layer's K (and V) storage:
//   (num_blocks, num_kv_heads, block_size, head_dim), elements of `dtype`.
// A token's slot is block_id * block_size + offset_in_block.
// MLA models (ModelConfig::is_mla): one latent "head", K = the kv_lora_rank latent (16-bit or
// int8), V = the qk_rope_head_dim roped key, (num_blocks, 1, block_size, v_head_dim), kept
// 16-bit even when the latent is int8 (v_16bit).
struct KvCacheSpec {
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;
  int64_t num_blocks = 0;
  int64_t v_head_dim = 0;  // 0: head_dim
  bool v_16bit = false;

  int64_t v_dim() const { return v_head_dim > 0 ? v_head_dim : head_dim; }
  int64_t ElementsPerBlock() const { return num_kv_heads * block_size * head_dim; }
  int64_t VElementsPerBlock() const { return num_kv_heads * block_size * v_dim(); }
  KvDType VDType(KvDType k_dtype) const {
    return v_16bit && k_dtype == KvDType::kInt8 ? KvDType::kBF16 : k_dtype;
  }
  // K + V bytes of one token in one layer whose K dtype is `dtype`.
  int64_t LayerBytesPerToken(KvDType dtype) const {
    return num_kv_heads * (head_dim * static_cast<int64_t>(KvDTypeSize(dtype)) +
                           v_dim() * static_cast<int64_t>(KvDTypeSize(VDType(dtype))));
  }
};

}  // namespace c8
