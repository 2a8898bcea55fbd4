// Collectives between N CPU workers of one process (tensor parallelism on the CPU backend, so
// the sharded model runs on machines without GPUs). Ranks meet at a shared CpuCommGroup: each
// publishes its buffer, waits for the others, and the reduction sums the ranks' values in rank
// order (0, 1, ..., N-1), so every rank gets bit-identical results. A rank that fails calls
// Abort(): ranks blocked in (or later entering) a collective return at once and the group's
// status names the cause — never a hang.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "c8/backend/communicator.h"

namespace c8 {

// The meeting point of one group of ranks (shared by their communicators).
class CpuCommGroup {
 public:
  explicit CpuCommGroup(int size) : size_(size), slots_(static_cast<size_t>(size)) {}
  int size() const { return size_; }
  // Publishes `ptr` as `rank`'s buffer for the current collective and waits until every rank
  // has published; false when the group was aborted.
  bool Publish(int rank, const void* ptr);
  // Waits until every rank has passed this point; false when aborted.
  bool Barrier();
  const void* slot(int rank) const { return slots_[static_cast<size_t>(rank)]; }
  void Abort(const std::string& why);
  Status status() const;

 private:
  bool WaitAllLocked(std::unique_lock<std::mutex>& lock);
  const int size_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
  std::string why_;
  std::vector<const void*> slots_;
};

class CpuCommunicator final : public Communicator {
 public:
  CpuCommunicator(std::shared_ptr<CpuCommGroup> group, int rank)
      : group_(std::move(group)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  // x fp32 (any shape; the CPU backend's activations).
  void AllReduceSum(Tensor& x) override;
  void AllGatherColumns(const Tensor& in, const std::vector<int64_t>& cols, Tensor& out) override;
  Status status() const override;
  void Abort(const std::string& why) override { group_->Abort(why); }

 private:
  void Fail(const std::string& what);
  std::shared_ptr<CpuCommGroup> group_;
  const int rank_;
  Status error_;
  std::vector<float> sum_;  // this rank's slice of the reduction
};

// One communicator per rank of a new group of `size` ranks.
std::vector<std::unique_ptr<Communicator>> CreateCpuCommunicators(int size);

}  // namespace c8
