// NcclCommunicator (nccl_communicator.h): NCCL collectives on the CUDA backends' streams.
// Compiled to a factory that answers an error when the build has no NCCL (C8_WITH_NCCL).
#include "c8/backend/cuda/nccl_communicator.h"

#include <string>
#include <utility>

#include "c8/backend/cuda/cuda_backend.h"
#include "c8/backend/cuda/cuda_backend_state.h"

#ifdef C8_WITH_NCCL

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace c8 {

namespace {

std::string NcclMessage(ncclResult_t r, ncclComm_t comm) {
  std::string msg = ncclGetErrorString(r);
  const char* last = ncclGetLastError(comm);
  if (last != nullptr && last[0] != '\0') msg += std::string(" (") + last + ")";
  return msg;
}

}  // namespace

// The NCCL communicators of one CreateNcclCommunicators call, shared by its NcclCommunicators:
// an abort reaches every rank, and the handles are destroyed once, by the last owner.
//
// Abort against collectives on other threads: every NCCL call on a clique's comm is bracketed
// by Enter()/Leave(). Once aborted no call enters, and AbortAll waits (bounded) for the calls
// already inside to leave before ncclCommAbort releases the comms, so a thread never starts an
// NCCL call on a released comm. A call that stays inside (blocked on a peer that never comes)
// is what the abort is for: after the wait it is aborted under it, as NCCL intends.
struct NcclClique {
  std::vector<ncclComm_t> comms;
  std::mutex mu;  // guards in_flight, why, and the comms against release during queries
  std::condition_variable idle;
  int in_flight = 0;
  std::atomic<bool> aborted{false};
  std::string why;  // abort reason (under mu)

  ~NcclClique() {
    if (aborted.load()) return;  // ncclCommAbort released them
    for (ncclComm_t c : comms) {
      if (c != nullptr) ncclCommDestroy(c);
    }
  }
  bool Enter() {
    std::lock_guard<std::mutex> lock(mu);
    if (aborted.load()) return false;
    ++in_flight;
    return true;
  }
  void Leave() {
    std::lock_guard<std::mutex> lock(mu);
    if (--in_flight == 0) idle.notify_all();
  }
  void AbortAll(const std::string& reason) {
    std::unique_lock<std::mutex> lock(mu);
    if (aborted.load()) return;
    why = reason;
    aborted.store(true);
    idle.wait_for(lock, std::chrono::seconds(2), [&] { return in_flight == 0; });
    for (ncclComm_t c : comms) {
      if (c != nullptr) ncclCommAbort(c);
    }
  }
};

struct NcclCommunicator::Impl {
  std::shared_ptr<NcclClique> clique;
  int rank = 0, size = 1, device = 0;
  CudaBackend* backend = nullptr;
  cudaStream_t stream = nullptr;
  ncclComm_t comm = nullptr;
  void* staging = nullptr;  // AllGatherColumns: (N, R, Cp) fp32
  size_t staging_bytes = 0;
  mutable Status error;  // first failure, sticky

  std::string Prefix() const {
    return "NCCL rank " + std::to_string(rank) + " (GPU " + std::to_string(device) + "): ";
  }
  void Fail(const std::string& what) const {
    if (error.ok()) error = Error(Prefix() + what);
  }
  // A failed collective: sticky here, and on the backend while it captures (the capture then
  // fails instead of recording a graph without the collective).
  void FailOp(const std::string& what) {
    Fail(what);
    if (backend->capturing()) backend->RecordError(error.message());
  }
  bool Usable() const { return error.ok() && !clique->aborted.load(); }
  Status Grow(size_t bytes) {
    if (bytes <= staging_bytes) return Status::Ok();
    if (staging != nullptr) {
      cudaError_t e = cudaStreamSynchronize(stream);  // queued gathers may still use it
      if (e != cudaSuccess) {
        return Error(Prefix() +
                     "synchronize before growing the all-gather staging: " + cudaGetErrorString(e));
      }
      cudaFree(staging);
      staging = nullptr;
      staging_bytes = 0;
      backend->BumpGraphEpoch();  // graphs captured so far point at the old buffer
    }
    cudaError_t e = cudaMalloc(&staging, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      staging = nullptr;
      return Error(Prefix() + "cannot allocate " + std::to_string(bytes) +
                   " bytes of all-gather staging: " + cudaGetErrorString(e));
    }
    staging_bytes = bytes;
    return Status::Ok();
  }
};

NcclCommunicator::NcclCommunicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NcclCommunicator::~NcclCommunicator() {
  if (impl_->staging != nullptr) {
    ScopedDevice guard(impl_->device);
    cudaFree(impl_->staging);
  }
}

int NcclCommunicator::rank() const {
  return impl_->rank;
}
int NcclCommunicator::size() const {
  return impl_->size;
}
int NcclCommunicator::device() const {
  return impl_->device;
}

void NcclCommunicator::AllReduceSum(Tensor& x) {
  Impl& m = *impl_;
  if (!m.Usable()) return;
  ncclDataType_t dt;
  if (x.dtype == DType::kBF16) {
    dt = ncclBfloat16;
  } else if (x.dtype == DType::kF32) {
    dt = ncclFloat32;
  } else {
    return m.FailOp("all-reduce: dtype " + std::string(DTypeName(x.dtype)) +
                    " unsupported (bf16, fp32)");
  }
  const int64_t n = x.numel();
  if (n <= 0) return;
  if (!m.clique->Enter()) return;
  ncclResult_t r =
      ncclAllReduce(x.data, x.data, static_cast<size_t>(n), dt, ncclSum, m.comm, m.stream);
  std::string msg = r != ncclSuccess ? NcclMessage(r, m.comm) : std::string();
  m.clique->Leave();
  if (r != ncclSuccess) m.FailOp("all-reduce: " + msg);
}

void NcclCommunicator::AllGatherColumns(const Tensor& in, const std::vector<int64_t>& cols,
                                        Tensor& out) {
  Impl& m = *impl_;
  if (!m.Usable()) return;
  if (in.dtype != DType::kF32 || out.dtype != DType::kF32 || in.ndim != 2 || out.ndim != 2) {
    return m.FailOp("all-gather: in and out must be 2-D fp32 tensors");
  }
  const int64_t R = in.dim(0), Cp = in.dim(1), C = out.dim(1);
  if (static_cast<int>(cols.size()) != m.size || out.dim(0) != R) {
    return m.FailOp("all-gather: " + std::to_string(cols.size()) + " column counts for " +
                    std::to_string(m.size) + " ranks, in rows " + std::to_string(R) +
                    ", out rows " + std::to_string(out.dim(0)));
  }
  int64_t total = 0;
  for (int64_t c : cols) {
    if (c < 0 || c > Cp) {
      return m.FailOp("all-gather: column count " + std::to_string(c) + " outside [0, " +
                      std::to_string(Cp) + "]");
    }
    total += c;
  }
  if (total != C) {
    return m.FailOp("all-gather: the column counts sum to " + std::to_string(total) +
                    " but out has " + std::to_string(C) + " columns");
  }
  const size_t count = static_cast<size_t>(R) * static_cast<size_t>(Cp);
  if (count == 0) return;
  const size_t need = count * 4 * static_cast<size_t>(m.size);
  if (need > m.staging_bytes) {
    if (m.backend->capturing()) {
      // Not sticky here: the capture fails, the step runs eagerly and grows the staging.
      m.backend->RecordError(m.Prefix() + "all-gather staging of " + std::to_string(need) +
                             " bytes would grow during graph capture (Reserve it first)");
      return;
    }
    Status s = m.Grow(need);
    if (!s.ok()) {
      if (m.error.ok()) m.error = s;
      return;
    }
  }
  if (!m.clique->Enter()) return;
  ncclResult_t r = ncclAllGather(in.data, m.staging, count, ncclFloat32, m.comm, m.stream);
  std::string msg = r != ncclSuccess ? NcclMessage(r, m.comm) : std::string();
  m.clique->Leave();
  if (r != ncclSuccess) return m.FailOp("all-gather: " + msg);
  int64_t col0 = 0;
  for (int k = 0; k < m.size; ++k) {
    if (cols[k] > 0) {
      const char* src = static_cast<const char*>(m.staging) + static_cast<size_t>(k) * count * 4;
      char* dst = static_cast<char*>(out.data) + col0 * 4;
      cudaError_t e =
          cudaMemcpy2DAsync(dst, static_cast<size_t>(C) * 4, src, static_cast<size_t>(Cp) * 4,
                            static_cast<size_t>(cols[k]) * 4, static_cast<size_t>(R),
                            cudaMemcpyDeviceToDevice, m.stream);
      if (e != cudaSuccess) {
        cudaGetLastError();
        return m.FailOp("all-gather: column copy of rank " + std::to_string(k) + ": " +
                        cudaGetErrorString(e));
      }
    }
    col0 += cols[k];
  }
}

Status NcclCommunicator::status() const {
  const Impl& m = *impl_;
  if (!m.error.ok()) return m.error;
  std::lock_guard<std::mutex> lock(m.clique->mu);
  if (m.clique->aborted.load()) return Error(m.Prefix() + "aborted: " + m.clique->why);
  ncclResult_t async = ncclSuccess;
  if (ncclCommGetAsyncError(m.comm, &async) == ncclSuccess && async != ncclSuccess &&
      async != ncclInProgress) {
    m.Fail("asynchronous error: " + NcclMessage(async, m.comm));
  }
  return m.error;
}

void NcclCommunicator::Abort(const std::string& why) {
  impl_->clique->AbortAll("rank " + std::to_string(impl_->rank) + ": " + why);
}

Status NcclCommunicator::Reserve(size_t bytes) {
  Impl& m = *impl_;
  if (m.backend->capturing()) {
    return Error(m.Prefix() + "Reserve during graph capture");
  }
  ScopedDevice guard(m.device);
  return m.Grow(bytes);
}

Result<std::vector<std::unique_ptr<Communicator>>> CreateNcclCommunicators(
    const std::vector<Backend*>& backends) {
  const int n = static_cast<int>(backends.size());
  if (n == 0) return Error("NCCL: no backends to connect");
  std::vector<CudaBackend*> cuda(n);
  std::vector<int> devices(n);
  for (int r = 0; r < n; ++r) {
    cuda[r] = dynamic_cast<CudaBackend*>(backends[r]);
    if (cuda[r] == nullptr) {
      return Error("NCCL: rank " + std::to_string(r) + "'s backend is '" +
                   (backends[r] ? backends[r]->Name() : std::string("null")) +
                   "', not a CUDA backend");
    }
    devices[r] = cuda[r]->device();
    for (int q = 0; q < r; ++q) {
      if (devices[q] == devices[r]) {
        return Error("NCCL: ranks " + std::to_string(q) + " and " + std::to_string(r) +
                     " both use GPU " + std::to_string(devices[r]));
      }
    }
  }
  int saved = 0;
  cudaGetDevice(&saved);
  ncclUniqueId id;
  ncclResult_t res = ncclGetUniqueId(&id);
  if (res != ncclSuccess) {
    return Error(std::string("NCCL: ncclGetUniqueId failed: ") + NcclMessage(res, nullptr));
  }
  auto clique = std::make_shared<NcclClique>();
  clique->comms.assign(n, nullptr);
  std::string failed;  // the first rank whose init failed, with its error
  res = ncclGroupStart();
  if (res == ncclSuccess) {
    for (int r = 0; r < n; ++r) {
      cudaError_t e = cudaSetDevice(devices[r]);
      if (e != cudaSuccess) {
        cudaGetLastError();
        if (failed.empty()) {
          failed = "NCCL init failed on rank " + std::to_string(r) + " (GPU " +
                   std::to_string(devices[r]) + "): cudaSetDevice: " + cudaGetErrorString(e);
        }
        continue;
      }
      ncclResult_t rr = ncclCommInitRank(&clique->comms[r], n, id, r);
      if (rr != ncclSuccess && failed.empty()) {
        failed = "NCCL init failed on rank " + std::to_string(r) + " (GPU " +
                 std::to_string(devices[r]) + "): " + NcclMessage(rr, nullptr);
      }
    }
    res = ncclGroupEnd();
  }
  if (res != ncclSuccess && failed.empty()) {
    // Name the first rank whose communicator reports the failure.
    for (int r = 0; r < n && failed.empty(); ++r) {
      ncclResult_t async = ncclSuccess;
      if (clique->comms[r] == nullptr ||
          (ncclCommGetAsyncError(clique->comms[r], &async) == ncclSuccess && async != ncclSuccess &&
           async != ncclInProgress)) {
        failed = "NCCL init failed on rank " + std::to_string(r) + " (GPU " +
                 std::to_string(devices[r]) +
                 "): " + NcclMessage(clique->comms[r] ? async : res, clique->comms[r]);
      }
    }
    if (failed.empty()) {
      failed = "NCCL init of " + std::to_string(n) + " ranks failed: " + NcclMessage(res, nullptr);
    }
  }
  if (!failed.empty()) {
    clique->AbortAll("init failed");  // releases whatever was created
    cudaSetDevice(saved);
    return Error(failed);
  }
  std::vector<std::unique_ptr<Communicator>> out;
  out.reserve(n);
  for (int r = 0; r < n; ++r) {
    auto impl = std::make_unique<NcclCommunicator::Impl>();
    impl->clique = clique;
    impl->rank = r;
    impl->size = n;
    impl->device = devices[r];
    impl->backend = cuda[r];
    impl->stream = static_cast<cudaStream_t>(cuda[r]->stream());
    impl->comm = clique->comms[r];
    out.push_back(std::make_unique<NcclCommunicator>(std::move(impl)));
  }
  cudaSetDevice(saved);
  return out;
}

}  // namespace c8

#else  // !C8_WITH_NCCL

namespace c8 {

struct NcclCommunicator::Impl {};

NcclCommunicator::NcclCommunicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NcclCommunicator::~NcclCommunicator() = default;
int NcclCommunicator::rank() const {
  return 0;
}
int NcclCommunicator::size() const {
  return 1;
}
int NcclCommunicator::device() const {
  return 0;
}
void NcclCommunicator::AllReduceSum(Tensor&) {}
void NcclCommunicator::AllGatherColumns(const Tensor&, const std::vector<int64_t>&, Tensor&) {}
Status NcclCommunicator::status() const {
  return Error("NCCL support is not built in");
}
void NcclCommunicator::Abort(const std::string&) {}
Status NcclCommunicator::Reserve(size_t) {
  return Error("NCCL support is not built in");
}

Result<std::vector<std::unique_ptr<Communicator>>> CreateNcclCommunicators(
    const std::vector<Backend*>& backends) {
  return Error(
      "NCCL support is not built in: cmake/nccl.cmake found no nccl.h / libnccl when "
      "configuring (set C8_NCCL_ROOT); tensor parallelism over " +
      std::to_string(backends.size()) + " GPUs needs it");
}

}  // namespace c8

#endif  // C8_WITH_NCCL
