// cuDNN fused flash SDPA for causal prefill without cached keys (see cuda_cudnn_prefill.h).
//
// One cudnn_frontend graph per (batch bucket b, length bucket s, Hq, Hkv, D):
//   Q (b, Hq, s, D)  strides (s W, D, W, 1)  at qkv             ragged offset RAG_QKV
//   K (b, Hkv, s, D) strides (s W, D, W, 1)  at qkv + Hq D      ragged offset RAG_QKV
//   V (b, Hkv, s, D) strides (s W, D, W, 1)  at qkv + (Hq+Hkv) D ragged offset RAG_QKV
//   O (b, Hq, s, D)  strides (s Hq D, D, Hq D, 1) at out        ragged offset RAG_O
// with W = (Hq + 2 Hkv) D the qkv row. Ragged (THD) offsets (b + 1, 1, 1, 1) int32 are element
// offsets of each sequence's first token (query_start[i] * W, query_start[i] * Hq D); the
// padding mask takes the per-sequence lengths SEQ_Q = SEQ_KV (b, 1, 1, 1) int32, so the batch
// stride is never used. Batch entries past num_seqs have length 0 and start at num_tokens.
// Causal mask: top-left diagonal, right bound 0 (query and key lengths are equal). Softmax scale
// is a pass-by-value float, so one graph serves every scale. bf16 I/O, fp32 softmax and accum.
#include "c8/backend/cuda/cuda_cudnn_prefill.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#if defined(C8_WITH_CUDNN)
#include <cudnn.h>
#include <cudnn_frontend.h>

#include <exception>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#endif

namespace c8::cuda {

#if defined(C8_WITH_CUDNN)

namespace fe = cudnn_frontend;

namespace {

// Tensor UIDs of the graph (variant pack keys).
enum Uid : int64_t {
  kQ = 1,
  kK = 2,
  kV = 3,
  kO = 4,
  kSeqQ = 5,
  kSeqKv = 6,
  kRaggedQkv = 7,
  kRaggedO = 8,
  kScale = 9,
};

constexpr size_t kMaxGraphs = 64;           // LRU limit of built graphs
constexpr size_t kMaxUnsupported = 4096;    // remembered unsupported keys (cleared when full)
constexpr int32_t kMinSeqBucket = 64;       // smallest length bucket
constexpr int64_t kMaxSeqBucket = 1 << 20;  // longest length bucket
constexpr size_t kMetaAlign = 256;          // byte alignment of each metadata array
constexpr int64_t kMaxHeadDim = 256;        // largest head_dim sent to cuDNN

int64_t NextPow2(int64_t v) {
  int64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

size_t AlignUp(size_t v, size_t a) {
  return (v + a - 1) / a * a;
}

// (b, s, Hq, Hkv, D)
using Key = std::tuple<int64_t, int64_t, int32_t, int32_t, int32_t>;

std::string Describe(const Key& k) {
  return "b=" + std::to_string(std::get<0>(k)) + " s=" + std::to_string(std::get<1>(k)) +
         " Hq=" + std::to_string(std::get<2>(k)) + " Hkv=" + std::to_string(std::get<3>(k)) +
         " D=" + std::to_string(std::get<4>(k));
}

std::string CudaMessage(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")";
}

// Errors of the frontend that say the device or the runtime is broken, not that the problem is
// unsupported.
bool IsHardFailure(fe::error_code_t code) {
  return code == fe::error_code_t::CUDA_API_FAILED ||
         code == fe::error_code_t::INVALID_CUDA_DEVICE || code == fe::error_code_t::HANDLE_ERROR;
}

struct Entry {
  std::shared_ptr<fe::graph::Graph> graph;
  int64_t workspace_bytes = 0;
  uint64_t last_use = 0;
};

// Outcome of one graph build: a graph, "unsupported" (message kept for the logs of callers that
// want it), or a hard error.
struct Built {
  std::shared_ptr<fe::graph::Graph> graph;
  int64_t workspace_bytes = 0;
  bool hard_error = false;
  std::string message;
};

Built BuildGraph(cudnnHandle_t handle, const Key& key) {
  const auto [b, s, hq_, hkv_, d_] = key;
  const int64_t Hq = hq_, Hkv = hkv_, D = d_;
  const int64_t W = (Hq + 2 * Hkv) * D;  // qkv row (elements)
  const int64_t O_row = Hq * D;          // out row (elements)
  Built out;
  auto fail = [&](fe::error_t err, const char* step) {
    out.graph.reset();
    out.hard_error = IsHardFailure(err.get_code());
    out.message = std::string(step) + ": " + err.get_message();
    return out;
  };
  try {
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);

    auto index_tensor = [&](const char* name, int64_t uid, int64_t n) {
      return g->tensor(fe::graph::Tensor_attributes()
                           .set_name(name)
                           .set_uid(uid)
                           .set_dim({n, 1, 1, 1})
                           .set_stride({1, 1, 1, 1})
                           .set_data_type(fe::DataType_t::INT32));
    };
    auto ragged_qkv = index_tensor("ragged_qkv", kRaggedQkv, b + 1);
    auto ragged_o = index_tensor("ragged_o", kRaggedO, b + 1);
    auto seq_q = index_tensor("seq_len_q", kSeqQ, b);
    auto seq_kv = index_tensor("seq_len_kv", kSeqKv, b);

    // (b, H, s, D) views of the packed rows: head stride D, token stride W.
    auto qkv_tensor = [&](const char* name, int64_t uid, int64_t heads) {
      auto t = g->tensor(fe::graph::Tensor_attributes()
                             .set_name(name)
                             .set_uid(uid)
                             .set_dim({b, heads, s, D})
                             .set_stride({s * W, D, W, 1}));
      t->set_ragged_offset(ragged_qkv);
      return t;
    };
    auto q = qkv_tensor("Q", kQ, Hq);
    auto k = qkv_tensor("K", kK, Hkv);
    auto v = qkv_tensor("V", kV, Hkv);
    auto scale = g->tensor(fe::graph::Tensor_attributes()
                               .set_name("attn_scale")
                               .set_uid(kScale)
                               .set_dim({1, 1, 1, 1})
                               .set_stride({1, 1, 1, 1})
                               .set_is_pass_by_value(true)
                               .set_data_type(fe::DataType_t::FLOAT));

    auto options = fe::graph::SDPA_attributes()
                       .set_name("c8_prefill_sdpa")
                       .set_generate_stats(false)
                       .set_attn_scale(scale)
                       .set_padding_mask(true)
                       .set_seq_len_q(seq_q)
                       .set_seq_len_kv(seq_kv)
                       .set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT)
                       .set_diagonal_band_right_bound(0);
    auto [o, stats] = g->sdpa(q, k, v, options);
    (void)stats;  // null: no stats in inference
    o->set_output(true)
        .set_uid(kO)
        .set_dim({b, Hq, s, D})
        .set_stride({s * O_row, D, O_row, 1})
        .set_ragged_offset(ragged_o);

    fe::error_t err = g->validate();
    if (err.is_bad()) return fail(err, "validate");
    err = g->build_operation_graph(handle);
    if (err.is_bad()) return fail(err, "build_operation_graph");
    err = g->create_execution_plans({fe::HeurMode_t::A});
    if (err.is_bad()) return fail(err, "create_execution_plans");
    err = g->check_support();
    if (err.is_bad()) return fail(err, "check_support");
    err = g->build_plans();
    if (err.is_bad()) return fail(err, "build_plans");
    int64_t ws = 0;
    err = g->get_workspace_size(ws);
    if (err.is_bad()) return fail(err, "get_workspace_size");
    out.graph = std::move(g);
    out.workspace_bytes = std::max<int64_t>(ws, 0);
    return out;
  } catch (const std::exception& e) {
    out.graph.reset();
    out.message = std::string("exception: ") + e.what();
    return out;
  } catch (...) {
    out.graph.reset();
    out.message = "unknown exception";
    return out;
  }
}

}  // namespace

struct CudnnPrefill::Impl {
  cudnnHandle_t handle = nullptr;
  std::map<Key, Entry> graphs;
  std::set<Key> unsupported;
  uint64_t clock = 0;
  // Metadata arrays in one allocation, sized for meta_batch sequences:
  //   seq_len (b) | ragged_qkv (b + 1) | ragged_o (b + 1), each kMetaAlign-aligned.
  void* meta = nullptr;
  int64_t meta_batch = 0;
  void* workspace = nullptr;
  int64_t workspace_bytes = 0;
  cudaStream_t last_stream = nullptr;  // stream of the last queued run (buffer reuse)

  ~Impl() {
    graphs.clear();  // plans before the handle
    if (handle) cudnnDestroy(handle);
    if (meta) cudaFree(meta);
    if (workspace) cudaFree(workspace);
  }

  static size_t MetaBytes(int64_t batch) {
    const size_t a = AlignUp(size_t(batch) * 4, kMetaAlign);
    const size_t r = AlignUp(size_t(batch + 1) * 4, kMetaAlign);
    return a + 2 * r;
  }

  // Waits for the work that may still read the buffers about to be freed.
  Status DrainFor(cudaStream_t stream, const char* what) {
    cudaError_t e = cudaStreamSynchronize(stream);
    if (e == cudaSuccess && last_stream != stream) e = cudaStreamSynchronize(last_stream);
    if (e != cudaSuccess) {
      return Error(std::string("cudnn prefill: synchronize before growing the ") + what +
                   " failed: " + CudaMessage(e));
    }
    return Status::Ok();
  }

  // Grows `buf` (holding `have` units) to `want` units of `bytes_for(want)` bytes; the old
  // buffer is freed only after the work that may still read it.
  template <typename BytesFor>
  Status Grow(void*& buf, int64_t& have, int64_t want, BytesFor bytes_for, const char* what,
              cudaStream_t stream) {
    if (want <= have) return Status::Ok();
    if (buf) {
      C8_RETURN_IF_ERROR(DrainFor(stream, what));
      cudaFree(buf);
      buf = nullptr;
      have = 0;
    }
    const size_t bytes = bytes_for(want);
    cudaError_t e = cudaMalloc(&buf, bytes);
    if (e != cudaSuccess) {
      buf = nullptr;
      return Error("cudnn prefill: cannot allocate " + std::to_string(bytes) + " bytes for the " +
                   what + ": " + CudaMessage(e));
    }
    have = want;
    return Status::Ok();
  }
  Status GrowMeta(int64_t batch, cudaStream_t stream) {
    return Grow(
        meta, meta_batch, batch, [](int64_t b) { return MetaBytes(b); }, "sequence metadata",
        stream);
  }
  Status GrowWorkspace(int64_t bytes, cudaStream_t stream) {
    return Grow(
        workspace, workspace_bytes, bytes, [](int64_t n) { return size_t(n); }, "cuDNN workspace",
        stream);
  }

  void EvictIfFull() {
    while (graphs.size() >= kMaxGraphs) {
      auto oldest = graphs.begin();
      for (auto it = graphs.begin(); it != graphs.end(); ++it) {
        if (it->second.last_use < oldest->second.last_use) oldest = it;
      }
      graphs.erase(oldest);
    }
  }
};

CudnnPrefill::CudnnPrefill() : impl_(std::make_unique<Impl>()) {}
CudnnPrefill::~CudnnPrefill() = default;

bool CudnnPrefill::Available() {
  static const bool available = [] {
    if (cudnnGetVersion() < 90000) return false;
    int device = 0, major = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
      cudaGetLastError();  // clear the (non-sticky) error of this probe
      return false;
    }
    return major >= 9;
  }();
  return available;
}

int CudnnPrefill::CudnnVersion() {
  return static_cast<int>(cudnnGetVersion());
}

int CudnnPrefill::CachedGraphs() const {
  return static_cast<int>(impl_->graphs.size());
}

Result<bool> CudnnPrefill::Run(const uint16_t* qkv, const int32_t* query_start, int32_t num_seqs,
                               int32_t num_tokens, int32_t max_query_len, int32_t num_heads,
                               int32_t num_kv_heads, int32_t head_dim, float scale, uint16_t* out,
                               cudaStream_t stream) {
  auto shape = [&] {  // for messages only
    return "T=" + std::to_string(num_tokens) + " seqs=" + std::to_string(num_seqs) +
           " Hq=" + std::to_string(num_heads) + " Hkv=" + std::to_string(num_kv_heads) +
           " D=" + std::to_string(head_dim);
  };
  if (num_seqs < 0 || num_tokens < 0 || num_heads <= 0 || num_kv_heads <= 0 || head_dim <= 0 ||
      num_heads % num_kv_heads != 0) {
    return Error("cudnn prefill: invalid problem " + shape());
  }
  if (num_tokens == 0 || num_seqs == 0) return true;  // nothing to compute
  if (max_query_len <= 0 || max_query_len > num_tokens) {
    return Error("cudnn prefill: max_query_len " + std::to_string(max_query_len) +
                 " out of range for " + shape());
  }
  if (!qkv || !query_start || !out) return Error("cudnn prefill: null pointer for " + shape());
  if (!Available()) return false;

  const int64_t Hq = num_heads, Hkv = num_kv_heads, D = head_dim;
  const int64_t W = (Hq + 2 * Hkv) * D;
  // 16-byte rows, head offsets and pointers (TMA / vector loads); int32 element offsets.
  // head_dim <= 256: the fused flash engines' range on Hopper (cuDNN Attention support matrix);
  // past it cuDNN 9.14 still builds a plan, but on a generic unfused engine (eng1 for D = 1024).
  if (D % 8 != 0 || D > kMaxHeadDim || reinterpret_cast<uintptr_t>(qkv) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(out) % 16 != 0) {
    return false;
  }
  if (int64_t(num_tokens) * W > std::numeric_limits<int32_t>::max()) return false;
  const int64_t b = NextPow2(num_seqs);
  const int64_t s = std::max<int64_t>(NextPow2(max_query_len), kMinSeqBucket);
  if (s > kMaxSeqBucket) return false;
  const Key key{b, s, num_heads, num_kv_heads, head_dim};

  Impl& m = *impl_;
  if (m.unsupported.count(key)) return false;

  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture) != cudaSuccess) {
    return Error("cudnn prefill: cudaStreamIsCapturing failed for " + shape());
  }
  const bool capturing = capture != cudaStreamCaptureStatusNone;

  if (!m.handle) {
    if (capturing) return false;
    const cudnnStatus_t st = cudnnCreate(&m.handle);
    if (st != CUDNN_STATUS_SUCCESS) {
      m.handle = nullptr;
      return Error(std::string("cudnn prefill: cudnnCreate failed: ") + cudnnGetErrorString(st));
    }
  }

  auto it = m.graphs.find(key);
  if (it == m.graphs.end()) {
    if (capturing) return false;
    Built built = BuildGraph(m.handle, key);
    if (!built.graph) {
      if (built.hard_error) {
        return Error("cudnn prefill: graph build for " + Describe(key) +
                     " failed: " + built.message);
      }
      // A CUDA error raised while cuDNN probed the device is not "unsupported".
      const cudaError_t e = cudaPeekAtLastError();
      if (e != cudaSuccess) {
        return Error("cudnn prefill: graph build for " + Describe(key) +
                     " failed: " + built.message + "; CUDA: " + CudaMessage(e));
      }
      if (m.unsupported.size() >= kMaxUnsupported) m.unsupported.clear();
      m.unsupported.insert(key);
      return false;
    }
    Entry entry;
    entry.graph = std::move(built.graph);
    entry.workspace_bytes = built.workspace_bytes;
    m.EvictIfFull();
    it = m.graphs.emplace(key, std::move(entry)).first;
  }
  Entry& entry = it->second;
  entry.last_use = ++m.clock;

  if (capturing && (b > m.meta_batch || entry.workspace_bytes > m.workspace_bytes)) return false;
  C8_RETURN_IF_ERROR(m.GrowMeta(b, stream));
  C8_RETURN_IF_ERROR(m.GrowWorkspace(entry.workspace_bytes, stream));

  // Metadata arrays for this batch (layout of Impl::meta, sized for m.meta_batch >= b).
  auto* base = static_cast<char*>(m.meta);
  auto* seq_len = reinterpret_cast<int32_t*>(base);
  auto* ragged_qkv =
      reinterpret_cast<int32_t*>(base + AlignUp(size_t(m.meta_batch) * 4, kMetaAlign));
  auto* ragged_o = reinterpret_cast<int32_t*>(reinterpret_cast<char*>(ragged_qkv) +
                                              AlignUp(size_t(m.meta_batch + 1) * 4, kMetaAlign));
  cudaError_t ce = LaunchCudnnPrefillMeta(query_start, num_seqs, static_cast<int32_t>(b), W, Hq * D,
                                          seq_len, ragged_qkv, ragged_o, stream);
  if (ce != cudaSuccess) {
    return Error("cudnn prefill: metadata kernel for " + shape() + " failed: " + CudaMessage(ce));
  }

  cudnnStatus_t st = cudnnSetStream(m.handle, stream);
  if (st != CUDNN_STATUS_SUCCESS) {
    return Error(std::string("cudnn prefill: cudnnSetStream failed: ") + cudnnGetErrorString(st));
  }
  float scale_value = scale;
  auto* q = const_cast<uint16_t*>(qkv);
  std::unordered_map<int64_t, void*> pack = {
      {kQ, q},
      {kK, q + Hq * D},
      {kV, q + (Hq + Hkv) * D},
      {kO, out},
      {kSeqQ, seq_len},
      {kSeqKv, seq_len},
      {kRaggedQkv, ragged_qkv},
      {kRaggedO, ragged_o},
      {kScale, &scale_value},
  };
  try {
    fe::error_t err = entry.graph->execute(m.handle, pack, m.workspace);
    if (err.is_bad()) {
      return Error("cudnn prefill: execute for " + Describe(key) + " (" + shape() +
                   ") failed: " + err.get_message());
    }
  } catch (const std::exception& e) {
    return Error("cudnn prefill: execute for " + Describe(key) + " threw: " + e.what());
  } catch (...) {
    return Error("cudnn prefill: execute for " + Describe(key) + " threw an unknown exception");
  }
  m.last_stream = stream;
  return true;
}

#else  // !C8_WITH_CUDNN: inert implementation, the caller always uses its own kernel.

struct CudnnPrefill::Impl {};

CudnnPrefill::CudnnPrefill() = default;
CudnnPrefill::~CudnnPrefill() = default;

bool CudnnPrefill::Available() {
  return false;
}

int CudnnPrefill::CudnnVersion() {
  return 0;
}

int CudnnPrefill::CachedGraphs() const {
  return 0;
}

Result<bool> CudnnPrefill::Run(const uint16_t* qkv, const int32_t* query_start, int32_t num_seqs,
                               int32_t num_tokens, int32_t max_query_len, int32_t num_heads,
                               int32_t num_kv_heads, int32_t head_dim, float scale, uint16_t* out,
                               cudaStream_t stream) {
  return false;
}

#endif  // C8_WITH_CUDNN

}  // namespace c8::cuda
