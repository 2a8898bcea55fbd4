// NcclCommunicator: the Communicator (communicator.h) of N CUDA backends of one process, one
// thread per GPU, through NCCL (NVLink / PCIe). Plain C++ header (no CUDA or NCCL headers), so
// code built without CUDA can include it under #ifdef C8_WITH_NCCL.
//
// Threads: rank r's collectives are issued by the thread driving rank r's backend (its device
// current: CudaBackend::BindThread), and queued on that backend's stream like any op, so they
// are recorded by CUDA graph capture. status() is read by the same thread; Abort() may be called
// from any thread.
//
// Lifetimes: a communicator outlives every model that issues collectives through it; it may
// outlive the backends it was made for (the executor destroys workers, with their backends,
// first): its destructor touches no backend state, only its own staging (cudaFree on its
// device). The NCCL communicators of a clique are released when the last of its
// NcclCommunicators is destroyed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "c8/backend/backend.h"
#include "c8/backend/communicator.h"
#include "c8/util/status.h"

namespace c8 {

class NcclCommunicator final : public Communicator {
 public:
  struct Impl;  // nccl_communicator.cpp
  explicit NcclCommunicator(std::unique_ptr<Impl> impl);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override;
  int size() const override;
  // ncclAllReduce (sum) in place: bf16 (ncclBfloat16) or fp32 by x's dtype.
  void AllReduceSum(Tensor& x) override;
  // ncclAllGather of every rank's padded (R, Cp) fp32 block into a staging buffer (N, R, Cp),
  // then one 2-D copy per rank into its column block of out (R, sum cols). The staging grows on
  // demand outside graph capture (bumping the backend's GraphEpoch when it is reallocated); a
  // gather that would grow it while the backend's stream is captured records an error on the
  // backend instead, so that capture fails (and the step can run eagerly, growing it). Reserve
  // the largest size up front to avoid both.
  void AllGatherColumns(const Tensor& in, const std::vector<int64_t>& cols, Tensor& out) override;
  // First failure: "NCCL rank 1 (GPU 1): all-reduce: <NCCL error>", an abort, or an
  // asynchronous NCCL error (ncclCommGetAsyncError); Ok otherwise.
  Status status() const override;
  // Aborts every communicator of the clique (ncclCommAbort), waking ranks blocked in a
  // collective; every rank's status() then reports `why`. Later collectives are skipped.
  void Abort(const std::string& why) override;

  // Grows the AllGatherColumns staging to at least `bytes` (N x R x Cp x 4 for the largest
  // gather of (R, Cp) blocks). Not while the backend's stream is being captured.
  Status Reserve(size_t bytes);
  // CUDA device of this rank.
  int device() const;

 private:
  std::unique_ptr<Impl> impl_;
};

// One communicator per backend (rank r = backends[r]); every backend must be a CudaBackend on
// its own GPU. Called from one thread (ncclCommInitRank per rank in one NCCL group); the
// calling thread's current device is restored. An init failure names the rank and the NCCL
// error. Without NCCL in the build (C8_WITH_NCCL undefined), returns an error saying so.
Result<std::vector<std::unique_ptr<Communicator>>> CreateNcclCommunicators(
    const std::vector<Backend*>& backends);

}  // namespace c8
