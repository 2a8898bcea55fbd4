// The op interface every backend (cpu/, cuda/) implements. Model code is written only
// against this interface. Activations are row-major (tokens, features) in
// ActivationDType(); weights are whatever UploadWeight produced.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "c8/backend/attention_meta.h"
#include "c8/backend/linear_weight.h"
#include "c8/backend/moe_weights.h"
#include "c8/backend/tensor.h"
#include "c8/kv/kv_cache_spec.h"
#include "c8/sampling/sampling_rows.h"
#include "c8/util/status.h"

namespace c8 {

struct TensorView;

// One layer of the paged KV cache as the attention ops see it.
struct KvLayerView {
  KvDType dtype = KvDType::kBF16;
  void* k = nullptr;  // (num_blocks, num_kv_heads, block_size, head_dim)
  void* v = nullptr;  // (num_blocks, num_kv_heads, block_size, head_dim or v_head_dim)
  // C8 only: per-channel static parameters, (num_kv_heads * head_dim) fp32 each.
  const float* k_scale = nullptr;
  const float* k_offset = nullptr;
  const float* v_scale = nullptr;
  const float* v_offset = nullptr;
  KvDType v_dtype = KvDType::kBF16;  // MLA's rope part (16-bit when the latent is int8)
};

struct AttentionShape {
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  float scale = 1.0f;    // softmax scale, 1/sqrt(head_dim) unless the model says otherwise
  int32_t rope_dim = 0;  // MLA only: the roped key's width (head_dim is the latent's)
};

struct DeviceMemory {
  size_t free_bytes = 0;
  size_t total_bytes = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Device memory for KV sizing (--gpu-memory-utilization); none on the CPU backend.
  virtual std::optional<DeviceMemory> MemoryInfo() { return std::nullopt; }
  virtual std::string Name() const = 0;
  // The first failure of any queued op (sticky; asynchronous backends record it when it
  // happens), or Ok. The CPU backend runs ops at once and never records one.
  virtual Status status() const { return Status::Ok(); }
  // Makes the calling thread the one that drives this backend (CUDA: selects its device).
  // Worker threads call it once before their first op.
  virtual void BindThread() {}
  virtual DType ActivationDType() const = 0;

  // Memory (bytes). Free(nullptr) is a no-op.
  virtual void* Malloc(size_t bytes) = 0;
  virtual void Free(void* ptr) = 0;
  virtual void CopyToDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual void CopyToHost(void* dst, const void* src, size_t bytes) = 0;
  virtual void Memset(void* dst, int value, size_t bytes) = 0;
  virtual void Synchronize() = 0;

  // Converts float data (any float dtype, `count` elements) into a new weight buffer of
  // the backend's weight dtype; returns a tensor of the given shape.
  virtual Result<Tensor> UploadWeight(const void* src, DType src_dtype,
                                      std::initializer_list<int64_t> shape) = 0;
  // fp32 host data -> backend fp32 buffer (scales, rope tables).
  virtual Tensor UploadF32(const float* src, std::initializer_list<int64_t> shape) = 0;
  // Host bytes of `dtype` copied as they are into a new backend buffer (int8 weights).
  Result<Tensor> UploadBytes(const void* src, DType dtype, std::initializer_list<int64_t> shape) {
    Tensor t(nullptr, dtype, shape);
    t.data = Malloc(t.nbytes());
    if (t.data == nullptr) {
      return Error(Name() + " backend: cannot allocate " + std::to_string(t.nbytes()) +
                   " bytes for a weight");
    }
    CopyToDevice(t.data, src, t.nbytes());
    return t;
  }

  // Vocab-parallel lookup: table holds the rows of vocab ids [vocab_begin, vocab_begin + Vr).
  // out(t, :) = table(ids[t] - vocab_begin, :) when that row is here, else zeros (the other
  // ranks' rows arrive through an all-reduce).   table (Vr, H) weight; ids (T) int32; out (T, H).
  virtual void Embedding(const Tensor& table, const int32_t* ids, int64_t vocab_begin,
                         Tensor& out) = 0;
  // out = x / rms(x) * w.   x, out (T, H); w (H).
  virtual void RmsNorm(const Tensor& x, const Tensor& w, float eps, Tensor& out) = 0;
  // residual += x; out = RmsNorm(residual).   residual, x, out (T, H).
  virtual void AddRmsNorm(Tensor& residual, const Tensor& x, const Tensor& w, float eps,
                          Tensor& out) = 0;
  // y = x w^T (+ bias).   x (T, K); w (N, K) 16-bit, or int8 with its scales (W8A8 static /
  // dynamic, backend/linear_weight.h); bias (N) or null; y (T, N).
  virtual void Linear(const Tensor& x, const LinearWeight& w, const Tensor* bias, Tensor& y) = 0;
  // y (T, N) += bias (N) on every row.
  virtual void AddBias(Tensor& y, const Tensor& bias) = 0;
  // out = silu(gate) * up.   gate_up (T, 2I) = [gate | up]; out (T, I).
  virtual void SiluMul(const Tensor& gate_up, Tensor& out) = 0;
  // In place on qkv (T, (Hq + 2 Hkv) D) = [q | k | v]: optional per-head RMSNorm of q and k
  // (q_norm, k_norm (D) or null), then rotate-half RoPE of q and k with
  // rope_cos_sin (max_pos, D) = [cos (D/2) | sin (D/2)] at positions (T).
  virtual void QkNormRope(Tensor& qkv, const int32_t* positions, const Tensor* q_norm,
                          const Tensor* k_norm, float eps, const Tensor& rope_cos_sin,
                          const AttentionShape& shape) = 0;
  // Writes the k and v parts of qkv into their cache slots (quantizing for int8:
  // q = clamp(round_half_even(x / scale + offset), -128, 127)).
  virtual void WriteKvCache(const Tensor& qkv, const AttentionMeta& meta,
                            const AttentionShape& shape, KvLayerView& cache) = 0;
  // out (T, Hq D): causal paged attention for every new token (rule in attention_meta.h).
  virtual void Attention(const Tensor& qkv, const AttentionMeta& meta, const KvLayerView& cache,
                         const AttentionShape& shape, Tensor& out) = 0;
  // Host-side launch decisions for one step (split counts, kernel choice), made once from the
  // step's metadata and stored in meta.plan; every layer's Attention then reuses them. A meta
  // whose plan was never filled makes each Attention call plan for itself.
  virtual void PlanAttention(const AttentionShape& shape, AttentionMeta& meta) {}
  // out(i, :) = x(rows[i], :).   x (T, H); rows (R) int32 backend memory; out (R, H).
  virtual void GatherRows(const Tensor& x, const int32_t* rows, Tensor& out) = 0;
  // Copies a (R, V) fp32-or-activation tensor to host fp32.
  virtual void ToHostF32(const Tensor& x, float* host) = 0;
  // Samples one token per row of `rows` from logits (R, V) fp32 backend memory (row
  // SamplingRow::logits_row) with the host Sampler's semantics (sampling_rows.h); only the
  // token ids and requested logprobs come back. `out` gets one entry per row, in order; a bad
  // row (NaN / +inf logits, out-of-range ids, every token masked) gets its own error. A non-Ok
  // Status means the whole call failed (bad shapes, device error).
  virtual Status SampleRows(const Tensor& logits, const SamplingRows& rows,
                            std::vector<SampledToken>* out) = 0;

  // ---- MLA and MoE (DeepSeek V2 / V3) ---------------------------------------------------
  // In place, RoPE on dims [offset, offset + R) of each of `heads` heads of x (T, heads *
  // head_stride), R = rope_cos_sin.dim(1), at positions (T): frequency i rotates the pair
  // (i, i + R/2) (rotate-half), or (2i, 2i + 1) when `interleaved` (DeepSeek's layout).
  virtual void Rope(Tensor& x, int64_t heads, int64_t head_stride, int64_t offset,
                    const int32_t* positions, const Tensor& rope_cos_sin, bool interleaved) = 0;
  // Per-head products: y[t, h * y_stride + y_offset + n] = sum_k w[h, n, k] *
  // x[t, h * x_stride + x_offset + k].   w (H, N, K) weight; x, y activations.
  virtual void HeadMatmul(const Tensor& x, int64_t x_stride, int64_t x_offset, const Tensor& w,
                          Tensor& y, int64_t y_stride, int64_t y_offset) = 0;
  // Writes the latent (T, r) into cache.k and the roped key k_pe (T, R) into cache.v at
  // meta.slot_mapping (int8 latent: C8 quantization with the per-channel k_scale / k_offset;
  // the rope part stays 16-bit).
  virtual void WriteMlaCache(const Tensor& latent, const Tensor& k_pe, const AttentionMeta& meta,
                             KvLayerView& cache) = 0;
  // Absorbed MLA attention (rule of attention_meta.h; every key, this step's too, is read from
  // the cache: WriteMlaCache first). score(t, h, j) = scale * (q_lat[t, h] . c_j +
  // q_rope[t, h] . kpe_j); out[t, h] = sum_j softmax_j * c_j.   q_lat (T, H * r); q_rope: the
  // roped query at x[t, h * rope_stride + rope_offset + i] of q (T, H * rope_stride); out
  // (T, H * r); shape: num_heads H, head_dim r, rope_dim R, scale.
  virtual void MlaAttention(const Tensor& q_lat, const Tensor& q, int64_t rope_stride,
                            int64_t rope_offset, const AttentionMeta& meta,
                            const KvLayerView& cache, const AttentionShape& shape, Tensor& out) = 0;
  // Routing: topk_ids (T, k) int32 and topk_w (T, k) fp32 for x (T, H) (moe_weights.h).
  virtual void MoeRoute(const Tensor& x, const MoeRouter& router, Tensor& topk_ids,
                        Tensor& topk_w) = 0;
  // out (T, H) += sum_j topk_w[t, j] * expert_{topk_ids[t, j]}(x[t]) with SwiGLU experts.
  virtual void MoeExperts(const Tensor& x, const Tensor& topk_ids, const Tensor& topk_w,
                          const MoeExpertWeights& experts, Tensor& out) = 0;

  // ---- Graphs (CUDA graphs on the GPU; the CPU backend has none) -------------------------
  // Between BeginGraphCapture and EndGraphCapture the ops are recorded, not run; the recorded
  // sequence becomes a graph that LaunchGraph replays with the same pointers and shapes. No
  // copies, allocations or synchronizations may be issued while capturing. A failed capture
  // leaves the backend usable (the error is returned, not recorded as sticky).
  virtual bool SupportsGraphs() const { return false; }
  virtual Status BeginGraphCapture() { return Error(Name() + " backend: no graph support"); }
  virtual Result<int64_t> EndGraphCapture() { return Error(Name() + " backend: no graph support"); }
  virtual Status LaunchGraph(int64_t /*id*/) {
    return Error(Name() + " backend: no graph support");
  }
  virtual void DestroyGraph(int64_t /*id*/) {}
  // Bumped whenever the backend reallocates a buffer that captured graphs may use (its
  // attention workspace): graphs captured under an older epoch must not be launched.
  virtual uint64_t GraphEpoch() const { return 0; }
};

struct BackendOptions {
  std::string device = "auto";  // auto | cpu | cuda
  int num_threads = 0;          // CPU: 0 = all cores
  int device_index = 0;         // CUDA: which GPU (tensor-parallel rank r uses GPU r)
};

Result<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options);

}  // namespace c8
