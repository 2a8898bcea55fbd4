// Per-step attention launch decisions (Backend::PlanAttention fills them once from the step's
// metadata; every layer's Attention call reuses them). Plain data: it is copied into graphs'
// metadata and compared by nothing. A default-constructed plan (planned == false) tells the
// backend to plan inside each Attention call.
#pragma once

#include <cstdint>

namespace c8 {

// A KV split: the context of a sequence is cut into `splits` parts of `part_len` keys (or
// `part_len` 64-key tiles for the prefill split), merged by a reduce kernel when splits > 1.
struct KvSplitPlan {
  int32_t splits = 1;
  int32_t part_len = 1;
};

struct AttentionPlan {
  bool planned = false;
  // What the plan was made from: an Attention call whose shape or metadata differ from these
  // plans for itself (a stale plan is never used).
  int32_t num_heads = 0, num_kv_heads = 0, head_dim = 0;
  int32_t num_seqs = 0, num_tokens = 0, max_query_len = 0, max_context_len = 0;
  bool no_cached_keys = false;

  // ---- CUDA backend -------------------------------------------------------------------------
  // PrefillNoCache step through cuDNN (unless the stream is being captured or cuDNN declines
  // the problem at run time: then the paged kernels below run).
  bool use_cudnn = false;
  // Tensor-core split-KV decode kernel, per cache dtype (the resident CTAs per SM differ).
  KvSplitPlan decode_bf16, decode_int8;
  // CUDA-core split-KV kernel (fp32 caches).
  KvSplitPlan decode_f32;
  // Tensor-core prefill kernel's split of the cached prefix (part_len in 64-key tiles).
  KvSplitPlan prefill{1, 1 << 30};
};

}  // namespace c8
