// Collectives between the tensor-parallel ranks of one model (one Communicator per rank, each
// driven by that rank's worker thread). Buffers are in the rank's own backend memory; the
// operations are queued on the rank's backend like any op (CUDA: on its stream, so they can be
// captured in CUDA graphs; CPU: they run at once). Every rank must issue the same collectives in
// the same order with the same shapes.
//
// Implementations: CpuCommunicator (backend/cpu: N CPU workers of one process, an in-memory
// reduction in rank order, so every rank gets bit-identical sums) and NcclCommunicator
// (backend/cuda: NCCL over NVLink/PCIe).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "c8/backend/tensor.h"
#include "c8/util/status.h"

namespace c8 {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // x (any shape, activation dtype of the backend) = sum of x over the ranks, in place.
  virtual void AllReduceSum(Tensor& x) = 0;
  // Column blocks of a (R, C) matrix spread over the ranks: `in` (R, Cp) fp32 holds this
  // rank's block in its first cols[rank] columns (Cp >= every cols[r]); `out` (R, sum cols)
  // fp32 gets rank r's block at column sum(cols[0..r)), on every rank.
  virtual void AllGatherColumns(const Tensor& in, const std::vector<int64_t>& cols,
                                Tensor& out) = 0;
  // First failure of any collective (sticky), naming the rank; Ok otherwise.
  virtual Status status() const = 0;
  // Wakes every rank blocked in a collective with a failure (a rank that failed outside a
  // collective calls this so that the others never hang).
  virtual void Abort(const std::string& why) = 0;
};

}  // namespace c8
