// Per-step attention metadata: which new tokens belong to which sequence, what each
// sequence already has in the paged cache, and where new tokens are written.
//
// Rule for all four attention states (PrefillNoCache, PrefillCacheHit, ChunkedPrefill,
// DecodeOnly): a query token at absolute position p of its sequence attends to keys
// 0..p. Keys written in earlier steps (position < num_cached) are read from the paged
// cache (dequantized in registers for int8); keys of this step come from the fresh
// 16-bit (CPU: fp32) projections.
#pragma once

#include <cstdint>

#include "c8/backend/attention_plan.h"

namespace c8 {

struct AttentionMeta {
  int32_t num_seqs = 0;
  int32_t num_tokens = 0;
  int32_t block_size = 16;
  int32_t max_blocks_per_seq = 0;
  int32_t max_query_len = 0;    // longest run of new tokens of one sequence
  int32_t max_context_len = 0;  // longest num_cached + new tokens
  // Host fact: no sequence has cached keys (every key is fresh: PrefillNoCache for the whole
  // batch). Lets a backend use a dense varlen attention (cuDNN) instead of the paged kernels.
  bool no_cached_keys = false;
  // All pointers are in backend memory (host memory on the CPU backend).
  const int32_t* query_start = nullptr;   // (num_seqs + 1): prefix sums of new tokens
  const int32_t* num_cached = nullptr;    // (num_seqs): tokens already in the cache
  const int32_t* block_tables = nullptr;  // (num_seqs, max_blocks_per_seq): block ids
  const int32_t* slot_mapping = nullptr;  // (num_tokens): cache slot per new token, -1 = skip
  // Filled once per step by Backend::PlanAttention (backend-specific launch decisions).
  AttentionPlan plan;
};

}  // namespace c8
