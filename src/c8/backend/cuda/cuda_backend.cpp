// CudaBackend: device memory, copies ordered on the backend's stream, weight upload, and the
// dispatch of every op to its kernel launcher (cuda_kernels.h) or to cuBLASLt.
#include "c8/backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "c8/backend/cuda/cuda_backend_state.h"
#include "c8/backend/cuda/cuda_kernels.h"
#include "c8/backend/cuda/cuda_linear.h"
#include "c8/util/bf16.h"

namespace c8 {

namespace {

bool IsBf16(const Tensor& t) {
  return t.dtype == DType::kBF16;
}
uint16_t* Bf16Ptr(const Tensor& t) {
  return static_cast<uint16_t*>(t.data);
}

}  // namespace

Result<std::unique_ptr<Backend>> CreateCudaBackend(int device) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();  // clear the sticky-free error
    return Error(std::string("cuda backend: no CUDA device available (") +
                 (err != cudaSuccess ? cudaGetErrorString(err) : "0 devices") + ")");
  }
  if (device < 0 || device >= count) {
    return Error("cuda backend: CUDA device " + std::to_string(device) + " requested but only " +
                 std::to_string(count) + " present");
  }
  const std::string dev = "device " + std::to_string(device);
  err = cudaSetDevice(device);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return Error("cuda backend: cannot select " + dev + ": " + cudaGetErrorString(err));
  }
  auto st = std::make_unique<CudaBackendState>();
  st->device = device;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return Error("cuda backend: cannot query " + dev);
  }
  if (prop.major != 9) {
    return Error("cuda backend: " + dev + " (" + std::string(prop.name) + ", sm_" +
                 std::to_string(prop.major) + std::to_string(prop.minor) +
                 ") is not Hopper; this build has sm_90a kernels only");
  }
  st->ctx.device = device;
  st->ctx.num_sms = prop.multiProcessorCount;
  if (cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking) != cudaSuccess) {
    cudaGetLastError();
    return Error("cuda backend: cannot create a stream on " + dev);
  }
  Status s = st->gemm.Init();
  if (!s.ok()) {
    cudaStreamDestroy(st->stream);
    return s.WithContext("cuda backend (" + dev + ")");
  }
  return std::unique_ptr<Backend>(new CudaBackend(std::move(st)));
}

CudaBackend::CudaBackend(std::unique_ptr<CudaBackendState> state) : s_(std::move(state)) {}

CudaBackend::~CudaBackend() {
  // Release on the backend's device, whichever thread destroys it; the thread's current device
  // is restored afterwards.
  ScopedDevice on(s_->device);
  cudaStreamSynchronize(s_->stream);
  s_->cudnn.reset();
  for (auto& [id, exec] : s_->graphs) cudaGraphExecDestroy(exec);
  for (auto& st : s_->staging) {
    if (st.host) cudaFreeHost(st.host);
    if (st.done) cudaEventDestroy(st.done);
  }
  if (s_->workspace) cudaFree(s_->workspace);
  if (s_->qlinear_buf) cudaFree(s_->qlinear_buf);
  if (s_->small_m_ws) cudaFree(s_->small_m_ws);
  if (s_->sample_buf) cudaFree(s_->sample_buf);
  cudaStreamDestroy(s_->stream);
  s_.reset();  // cuBLASLt and cuDNN handles and buffers, on this device too
}

void CudaBackend::BindThread() {
  s_->Check(cudaSetDevice(s_->device), "cudaSetDevice in BindThread");
}

int CudaBackend::device() const {
  return s_->device;
}

void CudaBackend::SetDecodeSwap(bool on) {
  s_->ctx.decode_swap = on;
}

void CudaBackend::SetInt8SmallMMaxTokens(int64_t tokens) {
  s_->int8_small_m_max_tokens = std::max<int64_t>(0, tokens);
}

bool CudaBackend::capturing() const {
  return s_->capturing;
}
void CudaBackend::RecordError(const std::string& msg) {
  s_->Fail(msg);
}
void CudaBackend::BumpGraphEpoch() {
  ++s_->graph_epoch;
}

Status CudaBackend::status() const {
  return s_->error;
}
void* CudaBackend::stream() const {
  return s_->stream;
}

void* CudaBackend::Malloc(size_t bytes) {
  ScopedDevice on(s_->device);
  void* p = nullptr;
  if (!s_->Check(cudaMalloc(&p, bytes == 0 ? 256 : bytes),
                 ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str())) {
    return nullptr;
  }
  return p;
}

void CudaBackend::Free(void* ptr) {
  if (!ptr) return;
  ScopedDevice on(s_->device);
  // Work queued on the stream may still read the buffer.
  s_->Check(cudaStreamSynchronize(s_->stream), "synchronize before free");
  s_->Check(cudaFree(ptr), "cudaFree");
}

// The copy is ordered after earlier ops on the stream and the caller may reuse `src` at once.
// Copies up to kStagedCopyMax bytes go through a pinned staging slot, so the call returns without
// waiting for the work queued before it (a pageable source can make the driver wait); larger
// ones (weights at load time) are staged by the driver.
void CudaBackend::CopyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  ScopedDevice on(s_->device);  // the staging events belong to the backend's device
  constexpr size_t kStagedCopyMax = 64u << 20;
  if (bytes <= kStagedCopyMax && !s_->capturing) {
    CudaBackendState::Staging& st = s_->staging[s_->next_staging];
    s_->next_staging ^= 1;
    if (st.pending) {
      s_->Check(cudaEventSynchronize(st.done), "wait for a staging slot");
      st.pending = false;
    }
    if (st.done == nullptr &&
        !s_->Check(cudaEventCreateWithFlags(&st.done, cudaEventDisableTiming), "staging event")) {
      return;
    }
    if (st.bytes < bytes) {
      if (st.host) cudaFreeHost(st.host);
      st.host = nullptr;
      st.bytes = 0;
      const size_t want = std::max<size_t>(bytes + bytes / 2, 1u << 20);
      if (cudaMallocHost(&st.host, want) == cudaSuccess) {
        st.bytes = want;
      } else {
        cudaGetLastError();
        st.host = nullptr;
      }
    }
    if (st.host) {
      std::memcpy(st.host, src, bytes);
      if (s_->Check(cudaMemcpyAsync(dst, st.host, bytes, cudaMemcpyHostToDevice, s_->stream),
                    "copy to device")) {
        st.pending = s_->Check(cudaEventRecord(st.done, s_->stream), "staging event record");
      }
      return;
    }
  }
  s_->Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s_->stream), "copy to device");
}

void CudaBackend::CopyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  ScopedDevice on(s_->device);
  s_->Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s_->stream), "copy to host");
  s_->Check(cudaStreamSynchronize(s_->stream), "synchronize after copy to host");
}

void CudaBackend::Memset(void* dst, int value, size_t bytes) {
  if (bytes == 0) return;
  ScopedDevice on(s_->device);
  s_->Check(cudaMemsetAsync(dst, value, bytes, s_->stream), "memset");
}

void CudaBackend::Synchronize() {
  s_->Check(cudaStreamSynchronize(s_->stream), "synchronize");
}

Result<Tensor> CudaBackend::UploadWeight(const void* src, DType src_dtype,
                                         std::initializer_list<int64_t> shape) {
  if (!IsFloat(src_dtype)) {
    return Error("cuda backend: weight dtype " + std::string(DTypeName(src_dtype)) +
                 " is not supported (F32, F16, BF16, F64)");
  }
  ScopedDevice on(s_->device);
  Tensor t(nullptr, DType::kBF16, shape);
  const int64_t n = t.numel();
  const size_t src_bytes = static_cast<size_t>(n) * DTypeSize(src_dtype);
  void* dst = nullptr;
  if (cudaMalloc(&dst, static_cast<size_t>(n) * 2 + 16) != cudaSuccess) {
    cudaGetLastError();
    return Error("cuda backend: out of device memory uploading a weight of " + std::to_string(n) +
                 " elements");
  }
  if (src_dtype == DType::kBF16) {
    if (cudaMemcpyAsync(dst, src, src_bytes, cudaMemcpyHostToDevice, s_->stream) != cudaSuccess) {
      cudaFree(dst);
      return Error("cuda backend: weight upload failed");
    }
  } else {
    void* staging = nullptr;
    if (cudaMalloc(&staging, src_bytes + 16) != cudaSuccess) {
      cudaGetLastError();
      cudaFree(dst);
      return Error("cuda backend: out of device memory staging a weight of " +
                   std::to_string(src_bytes) + " bytes");
    }
    cudaError_t e = cudaMemcpyAsync(staging, src, src_bytes, cudaMemcpyHostToDevice, s_->stream);
    if (e == cudaSuccess) {
      cuda::LaunchConvertToBf16(staging, src_dtype, n, static_cast<uint16_t*>(dst), s_->stream);
      e = cudaGetLastError();
    }
    cudaError_t e2 = cudaStreamSynchronize(s_->stream);
    cudaFree(staging);
    if (e != cudaSuccess || e2 != cudaSuccess) {
      cudaFree(dst);
      return Error(std::string("cuda backend: weight conversion failed: ") +
                   cudaGetErrorString(e != cudaSuccess ? e : e2));
    }
  }
  t.data = dst;
  return t;
}

Tensor CudaBackend::UploadF32(const float* src, std::initializer_list<int64_t> shape) {
  Tensor t(nullptr, DType::kF32, shape);
  t.data = Malloc(t.nbytes());
  if (t.data) CopyToDevice(t.data, src, t.nbytes());
  return t;
}

void CudaBackend::Embedding(const Tensor& table, const int32_t* ids, int64_t vocab_begin,
                            Tensor& out) {
  if (table.dtype != out.dtype) return s_->Fail("Embedding: table and out dtypes differ");
  if (table.dim(1) != out.dim(1)) return s_->Fail("Embedding: table and out widths differ");
  const int64_t row_bytes = table.dim(1) * static_cast<int64_t>(DTypeSize(table.dtype));
  cuda::LaunchEmbedding(table.data, table.dim(0), ids, vocab_begin, out.dim(0), row_bytes, out.data,
                        s_->stream);
  s_->CheckLaunch("Embedding");
}

void CudaBackend::RmsNorm(const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  if (!IsBf16(x) || !IsBf16(out)) return s_->Fail("RmsNorm: x and out must be bf16");
  cuda::LaunchRmsNorm(Bf16Ptr(x), w.data, w.dtype == DType::kF32, eps, x.dim(0), x.dim(1),
                      Bf16Ptr(out), s_->stream);
  s_->CheckLaunch("RmsNorm");
}

void CudaBackend::AddRmsNorm(Tensor& residual, const Tensor& x, const Tensor& w, float eps,
                             Tensor& out) {
  if (!IsBf16(x) || !IsBf16(out) || !IsBf16(residual)) {
    return s_->Fail("AddRmsNorm: residual, x and out must be bf16");
  }
  cuda::LaunchAddRmsNorm(Bf16Ptr(residual), Bf16Ptr(x), w.data, w.dtype == DType::kF32, eps,
                         x.dim(0), x.dim(1), Bf16Ptr(out), s_->stream);
  s_->CheckLaunch("AddRmsNorm");
}

void CudaBackend::Linear(const Tensor& x, const LinearWeight& lw, const Tensor* bias, Tensor& y) {
  if (lw.quantized()) return QuantLinear(x, lw, bias, y);
  const Tensor& w = lw.w;
  if (!IsBf16(x) || !IsBf16(w)) return s_->Fail("Linear: x and w must be bf16");
  if (y.dtype != DType::kBF16 && y.dtype != DType::kF32) {
    return s_->Fail("Linear: y must be bf16 or fp32");
  }
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  if (w.dim(1) != K) {
    return s_->Fail("Linear: x (" + std::to_string(T) + ", " + std::to_string(K) + ") and w (" +
                    std::to_string(N) + ", " + std::to_string(w.dim(1)) + ") do not match");
  }
  const bool y_f32 = y.dtype == DType::kF32;
  Status st = s_->gemm.Run(x.data, w.data, y.data, y_f32, T, N, K, s_->stream);
  if (!st.ok()) return s_->Fail(st.message());
  if (bias) {
    cuda::LaunchAddBias(y.data, y_f32, bias->data, bias->dtype == DType::kF32, T, N, s_->stream);
    s_->CheckLaunch("Linear bias");
  }
}

void CudaBackend::QuantLinear(const Tensor& x, const LinearWeight& lw, const Tensor* bias,
                              Tensor& y) {
  const Tensor& w = lw.w;
  if (!IsBf16(x) || w.dtype != DType::kI8 || lw.scale.dtype != DType::kF32) {
    return s_->Fail("Linear: W8A8 needs bf16 x, int8 w and fp32 scales");
  }
  if (y.dtype != DType::kBF16 && y.dtype != DType::kF32) {
    return s_->Fail("Linear: y must be bf16 or fp32");
  }
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  if (w.dim(1) != K) {
    return s_->Fail("Linear: x (" + std::to_string(T) + ", " + std::to_string(K) +
                    ") and int8 w (" + std::to_string(N) + ", " + std::to_string(w.dim(1)) +
                    ") do not match");
  }
  if (T == 0) return;
  // int8 x | token scales | int32 accumulators, each 256-byte aligned.
  auto align = [](size_t n) { return (n + 255) / 256 * 256; };
  const size_t b_q = align(static_cast<size_t>(T * K)), b_s = align(static_cast<size_t>(T) * 4);
  const size_t need = b_q + b_s + static_cast<size_t>(T * N) * 4;
  {
    ScopedDevice on(s_->device);
    if (!s_->Grow(&s_->qlinear_buf, &s_->qlinear_bytes, need, need + need / 4,
                  "Linear: the W8A8 buffer")) {
      return;
    }
  }
  char* buf = static_cast<char*>(s_->qlinear_buf);
  auto* xq = reinterpret_cast<int8_t*>(buf);
  auto* tok = reinterpret_cast<float*>(buf + b_q);
  auto* acc = reinterpret_cast<int32_t*>(buf + b_q + b_s);
  const bool dynamic = lw.quant == LinearQuant::kW8A8Dynamic;
  cuda::LaunchQuantizeActivations(Bf16Ptr(x), T, K, dynamic, 1.0f / lw.input_scale, lw.input_offset,
                                  xq, tok, s_->stream);
  s_->CheckLaunch("Linear: quantize activations");
  cuda::Int8Epilogue ep;
  ep.scale = static_cast<const float*>(lw.scale.data);
  ep.tok_scale = dynamic ? tok : nullptr;
  ep.shift = lw.shift.data ? static_cast<const float*>(lw.shift.data) : nullptr;
  ep.bias = bias ? bias->data : nullptr;
  ep.bias_f32 = bias && bias->dtype == DType::kF32;
  ep.y = y.data;
  ep.y_f32 = y.dtype == DType::kF32;
  if (T <= s_->int8_small_m_max_tokens && cuda::Int8SmallMTakes(T, N, K)) {
    // Sized for the largest token count this path takes, so a decode batch that grows does
    // not reallocate (and invalidate captured graphs) step after step.
    const size_t ws_need = cuda::Int8SmallMWorkspaceBytes(std::max<int64_t>(T, 64), N);
    const size_t ws_want = std::max(
        ws_need,
        cuda::Int8SmallMWorkspaceBytes(std::max<int64_t>(s_->int8_small_m_max_tokens, 64), N));
    if (ws_need > s_->small_m_ws_bytes) {
      ScopedDevice on(s_->device);
      if (!s_->Grow(&s_->small_m_ws, &s_->small_m_ws_bytes, ws_need, ws_want,
                    "Linear: the W8A8 split-K workspace")) {
        return;
      }
      if (!s_->Check(cudaMemsetAsync(s_->small_m_ws, 0, s_->small_m_ws_bytes, s_->stream),
                     "Linear: zero the W8A8 split-K workspace")) {
        return;
      }
    }
    cuda::LaunchInt8GemmSmallM(xq, static_cast<const int8_t*>(w.data), T, N, K, ep, s_->small_m_ws,
                               s_->ctx.num_sms, s_->stream);
    s_->CheckLaunch("Linear: small-M int8 GEMM");
    return;
  }
  if (cuda::CublasLtGemm::CanRunInt8(N, K)) {
    Status st = s_->gemm.RunInt8(xq, w.data, acc, T, N, K, s_->stream);
    if (!st.ok()) return s_->Fail(st.message());
  } else {
    cuda::LaunchInt8Gemm(xq, static_cast<const int8_t*>(w.data), T, N, K, acc, s_->stream);
    s_->CheckLaunch("Linear: int8 GEMM");
  }
  cuda::LaunchDequantize(acc, T, N, ep.scale, ep.tok_scale, ep.shift, ep.bias, ep.bias_f32, ep.y,
                         ep.y_f32, s_->stream);
  s_->CheckLaunch("Linear: dequantize");
}

namespace {
constexpr const char* kNoDeepseek =
    " is not on the CUDA backend yet: DeepSeek (MLA / MoE) models run with --device cpu";
}  // namespace

void CudaBackend::Rope(Tensor&, int64_t, int64_t, int64_t, const int32_t*, const Tensor&, bool) {
  s_->Fail(std::string("Rope") + kNoDeepseek);
}
void CudaBackend::HeadMatmul(const Tensor&, int64_t, int64_t, const Tensor&, Tensor&, int64_t,
                             int64_t) {
  s_->Fail(std::string("HeadMatmul") + kNoDeepseek);
}
void CudaBackend::WriteMlaCache(const Tensor&, const Tensor&, const AttentionMeta&, KvLayerView&) {
  s_->Fail(std::string("WriteMlaCache") + kNoDeepseek);
}
void CudaBackend::MlaAttention(const Tensor&, const Tensor&, int64_t, int64_t, const AttentionMeta&,
                               const KvLayerView&, const AttentionShape&, Tensor&) {
  s_->Fail(std::string("MlaAttention") + kNoDeepseek);
}
void CudaBackend::MoeRoute(const Tensor&, const MoeRouter&, Tensor&, Tensor&) {
  s_->Fail(std::string("MoeRoute") + kNoDeepseek);
}
void CudaBackend::MoeExperts(const Tensor&, const Tensor&, const Tensor&, const MoeExpertWeights&,
                             Tensor&) {
  s_->Fail(std::string("MoeExperts") + kNoDeepseek);
}

void CudaBackend::AddBias(Tensor& y, const Tensor& bias) {
  cuda::LaunchAddBias(y.data, y.dtype == DType::kF32, bias.data, bias.dtype == DType::kF32,
                      y.dim(0), y.dim(1), s_->stream);
  s_->CheckLaunch("AddBias");
}

void CudaBackend::SiluMul(const Tensor& gate_up, Tensor& out) {
  if (!IsBf16(gate_up) || !IsBf16(out)) return s_->Fail("SiluMul: tensors must be bf16");
  cuda::LaunchSiluMul(Bf16Ptr(gate_up), out.dim(0), out.dim(1), Bf16Ptr(out), s_->stream);
  s_->CheckLaunch("SiluMul");
}

void CudaBackend::QkNormRope(Tensor& qkv, const int32_t* positions, const Tensor* q_norm,
                             const Tensor* k_norm, float eps, const Tensor& rope_cos_sin,
                             const AttentionShape& shape) {
  if (!IsBf16(qkv) || rope_cos_sin.dtype != DType::kF32) {
    return s_->Fail("QkNormRope: qkv must be bf16 and rope_cos_sin fp32");
  }
  if (shape.head_dim > 256 || shape.head_dim % 2) {
    return s_->Fail("QkNormRope: head_dim " + std::to_string(shape.head_dim) +
                    " unsupported (even, <= 256)");
  }
  const bool norm_f32 = (q_norm && q_norm->dtype == DType::kF32);
  if (q_norm && k_norm && q_norm->dtype != k_norm->dtype) {
    return s_->Fail("QkNormRope: q_norm and k_norm dtypes differ");
  }
  cuda::LaunchQkNormRope(Bf16Ptr(qkv), positions, q_norm ? q_norm->data : nullptr,
                         k_norm ? k_norm->data : nullptr, norm_f32, eps, rope_cos_sin.as<float>(),
                         qkv.dim(0), shape.num_heads, shape.num_kv_heads, shape.head_dim,
                         s_->stream);
  s_->CheckLaunch("QkNormRope");
}

namespace {

std::string CheckAttentionShape(const AttentionShape& shape, const KvLayerView& cache) {
  if (shape.head_dim != 64 && shape.head_dim != 128) {
    return "head_dim " + std::to_string(shape.head_dim) + " unsupported (64, 128)";
  }
  if (shape.num_kv_heads <= 0 || shape.num_heads % shape.num_kv_heads != 0) {
    return "num_heads " + std::to_string(shape.num_heads) + " not a multiple of num_kv_heads " +
           std::to_string(shape.num_kv_heads);
  }
  if (cache.dtype == KvDType::kInt8 &&
      (!cache.k_scale || !cache.k_offset || !cache.v_scale || !cache.v_offset)) {
    return "int8 cache without C8 scales/offsets";
  }
  return "";
}

}  // namespace

void CudaBackend::WriteKvCache(const Tensor& qkv, const AttentionMeta& meta,
                               const AttentionShape& shape, KvLayerView& cache) {
  if (!IsBf16(qkv)) return s_->Fail("WriteKvCache: qkv must be bf16");
  const std::string bad = CheckAttentionShape(shape, cache);
  if (!bad.empty()) return s_->Fail("WriteKvCache: " + bad);
  cuda::LaunchWriteKvCache(Bf16Ptr(qkv), meta, shape, cache, s_->stream);
  s_->CheckLaunch("WriteKvCache");
}

void CudaBackend::Plan(const AttentionShape& shape, const AttentionMeta& meta, const KvDType* only,
                       AttentionPlan& plan) {
  cuda::PlanPagedAttention(s_->ctx, meta, shape, only, plan);
  plan.use_cudnn = meta.no_cached_keys && meta.max_query_len >= kCudnnMinQueryLen && UseCudnn();
}

void CudaBackend::PlanAttention(const AttentionShape& shape, AttentionMeta& meta) {
  Plan(shape, meta, nullptr, meta.plan);
}

void CudaBackend::Attention(const Tensor& qkv, const AttentionMeta& meta, const KvLayerView& cache,
                            const AttentionShape& shape, Tensor& out) {
  if (!IsBf16(qkv) || !IsBf16(out)) return s_->Fail("Attention: qkv and out must be bf16");
  const std::string bad = CheckAttentionShape(shape, cache);
  if (!bad.empty()) return s_->Fail("Attention: " + bad);
  // The step's plan (PlanAttention), or one made here for this call and this cache dtype.
  AttentionPlan local;
  const AttentionPlan* plan = &meta.plan;
  if (!cuda::PlanMatches(meta.plan, meta, shape)) {
    Plan(shape, meta, &cache.dtype, local);
    plan = &local;
  }
  if (plan->use_cudnn && !s_->capturing) {
    Result<bool> done = s_->cudnn->Run(
        Bf16Ptr(qkv), meta.query_start, meta.num_seqs, meta.num_tokens, meta.max_query_len,
        shape.num_heads, shape.num_kv_heads, shape.head_dim, shape.scale, Bf16Ptr(out), s_->stream);
    if (!done.ok()) return s_->Fail("Attention (cuDNN prefill): " + done.message());
    if (*done) return;
  }
  const size_t need = cuda::PagedAttentionWorkspaceBytes(*plan, meta, shape, cache.dtype);
  // Headroom (and at least 64 MiB, which also covers any prefill split) so that graphs of
  // larger batches rarely force a regrowth, which invalidates every captured graph.
  if (!s_->Grow(&s_->workspace, &s_->workspace_bytes, need,
                std::max<size_t>(need * 2, size_t(64) << 20),
                "Attention: the split-KV workspace")) {
    return;
  }
  cuda::LaunchPagedAttention(s_->ctx, *plan, Bf16Ptr(qkv), meta, cache, shape, Bf16Ptr(out),
                             s_->workspace, s_->stream);
  s_->CheckLaunch("Attention");
}

bool CudaBackend::UseCudnn() {
  if (s_->cudnn_state < 0) {
    const char* env = std::getenv("C8_CUDNN_PREFILL");
    const bool off = env && std::string(env) == "0";
    s_->cudnn_state = (!off && cuda::CudnnPrefill::Available()) ? 1 : 0;
    if (s_->cudnn_state == 1) s_->cudnn = std::make_unique<cuda::CudnnPrefill>();
  }
  return s_->cudnn_state == 1;
}

void CudaBackend::GatherRows(const Tensor& x, const int32_t* rows, Tensor& out) {
  const int64_t row_bytes = x.dim(1) * static_cast<int64_t>(DTypeSize(x.dtype));
  cuda::LaunchGatherRows(x.data, rows, out.dim(0), row_bytes, out.data, s_->stream);
  s_->CheckLaunch("GatherRows");
}

void CudaBackend::ToHostF32(const Tensor& x, float* host) {
  const size_t n = static_cast<size_t>(x.numel());
  if (x.dtype == DType::kF32) return CopyToHost(host, x.data, n * 4);
  if (!IsBf16(x)) return s_->Fail("ToHostF32: tensor must be fp32 or bf16");
  std::vector<uint16_t> tmp(n);
  CopyToHost(tmp.data(), x.data, n * 2);
  for (size_t i = 0; i < n; ++i) host[i] = Bf16ToF32(tmp[i]);
}

Status CudaBackend::SampleRows(const Tensor& logits, const SamplingRows& rows,
                               std::vector<SampledToken>* out) {
  if (logits.dtype != DType::kF32 || logits.ndim != 2) {
    return Error("SampleRows: logits must be a (R, V) fp32 tensor");
  }
  const int64_t V = logits.dim(1);
  C8_RETURN_IF_ERROR(CheckSamplingRows(rows, logits.dim(0), V));
  const int32_t R = static_cast<int32_t>(rows.rows.size());
  out->assign(rows.rows.size(), SampledToken());
  if (R == 0) return Status::Ok();

  std::vector<cuda::SampleRowArgs> args(static_cast<size_t>(R));
  for (int32_t i = 0; i < R; ++i) {
    const SamplingRow& r = rows.rows[i];
    cuda::SampleRowArgs& a = args[i];
    for (int32_t k = 0; k < r.penalty_count; ++k) {
      const int32_t t = rows.penalty[r.penalty_begin + k].token_id;
      if (t < 0 || t >= V) {
        (*out)[i].error = "sampler: penalty token id " + std::to_string(t) +
                          " is out of range for vocab size " + std::to_string(V);
        a.skip = 1;
        break;
      }
    }
    a.logits_row = r.logits_row;
    a.penalty_begin = r.penalty_begin;
    a.penalty_count = r.penalty_count;
    a.masked_begin = r.masked_begin;
    a.masked_count = r.masked_count;
    a.allowed_begin = r.allowed_begin;
    a.temperature = static_cast<float>(r.temperature);
    a.rep = static_cast<float>(r.repetition_penalty);
    a.freq = static_cast<float>(r.frequency_penalty);
    a.pres = static_cast<float>(r.presence_penalty);
    a.apply_rep = r.repetition_penalty != 1.0;
    a.apply_freq_pres = r.frequency_penalty != 0.0 || r.presence_penalty != 0.0;
    if (!r.PenaltiesEnabled()) a.penalty_count = 0;
    a.greedy = r.IsGreedy();
    a.top_k = r.top_k > 0 ? r.top_k : 0;
    a.use_min_p = r.min_p > 0.0;
    a.log_min_p = a.use_min_p ? std::log(r.min_p) : 0.0;
    a.use_top_p = r.top_p < 1.0;
    a.top_p = r.top_p;
    a.seed = r.seed;
    a.step = r.step;
    a.stream = r.stream;
    a.num_logprobs = r.num_logprobs;
  }

  // One device buffer: args | penalty | masked | allowed | results | work (R, V) fp32.
  auto align = [](size_t n) { return (n + 255) / 256 * 256; };
  const size_t n_allowed = rows.allowed != nullptr ? rows.allowed->size() : 0;
  const size_t b_args = align(args.size() * sizeof(cuda::SampleRowArgs));
  const size_t b_pen = align(rows.penalty.size() * sizeof(PenaltyToken));
  const size_t b_mask = align(rows.masked.size() * sizeof(int32_t)) + align(n_allowed * 4);
  const size_t b_res = align(static_cast<size_t>(R) * sizeof(cuda::SampleRowResult));
  const size_t b_work = static_cast<size_t>(R) * static_cast<size_t>(V) * 4;
  const size_t upload = b_args + b_pen + b_mask;
  const size_t total = upload + b_res + b_work;
  if (total > s_->sample_buf_bytes) {
    Free(s_->sample_buf);
    s_->sample_buf = nullptr;
    s_->sample_buf_bytes = 0;
    void* p = Malloc(total + total / 2);
    if (p == nullptr) return s_->error.ok() ? Error("SampleRows: out of device memory") : s_->error;
    s_->sample_buf = p;
    s_->sample_buf_bytes = total + total / 2;
  }
  std::vector<char> host(upload, 0);
  std::memcpy(host.data(), args.data(), args.size() * sizeof(cuda::SampleRowArgs));
  if (!rows.penalty.empty()) {
    std::memcpy(host.data() + b_args, rows.penalty.data(),
                rows.penalty.size() * sizeof(PenaltyToken));
  }
  if (!rows.masked.empty()) {
    std::memcpy(host.data() + b_args + b_pen, rows.masked.data(), rows.masked.size() * 4);
  }
  const size_t o_allowed = b_args + b_pen + align(rows.masked.size() * sizeof(int32_t));
  if (n_allowed > 0) std::memcpy(host.data() + o_allowed, rows.allowed->data(), n_allowed * 4);
  char* dev = static_cast<char*>(s_->sample_buf);
  CopyToDevice(dev, host.data(), upload);
  auto* d_res = reinterpret_cast<cuda::SampleRowResult*>(dev + upload);
  cuda::LaunchSampleRows(static_cast<const float*>(logits.data), V, R,
                         reinterpret_cast<const cuda::SampleRowArgs*>(dev),
                         reinterpret_cast<const PenaltyToken*>(dev + b_args),
                         reinterpret_cast<const int32_t*>(dev + b_args + b_pen),
                         reinterpret_cast<const uint32_t*>(dev + o_allowed),
                         reinterpret_cast<float*>(dev + upload + b_res), d_res, s_->stream);
  s_->CheckLaunch("SampleRows");
  std::vector<cuda::SampleRowResult> res(static_cast<size_t>(R));
  CopyToHost(res.data(), d_res, static_cast<size_t>(R) * sizeof(cuda::SampleRowResult));
  C8_RETURN_IF_ERROR(s_->error);
  for (int32_t i = 0; i < R; ++i) {
    SampledToken& o = (*out)[i];
    if (args[i].skip) continue;
    const cuda::SampleRowResult& r = res[i];
    if (r.status == 1) {
      o.error =
          "sampler: logits row " + std::to_string(args[i].logits_row) + " has a NaN or +inf value";
      continue;
    }
    if (r.status == 2) {
      o.error =
          "sampler: no token can be sampled: every logit is -inf after penalties, "
          "min_tokens and structured-output masking";
      continue;
    }
    o.token_id = r.token_id;
    if (args[i].num_logprobs >= 0) {
      o.has_logprob = true;
      o.logprob = r.logprob;
      o.rank = r.rank;
      const int n = static_cast<int>(std::min<int64_t>(args[i].num_logprobs, V));
      for (int k = 0; k < n; ++k) o.top_logprobs.push_back({r.top_ids[k], r.top_logprobs[k]});
    }
  }
  return Status::Ok();
}

}  // namespace c8
