#include "c8/backend/cpu/cpu_communicator.h"

#include <algorithm>
#include <cstring>

namespace c8 {

bool CpuCommGroup::WaitAllLocked(std::unique_lock<std::mutex>& lock) {
  if (aborted_) return false;
  const uint64_t gen = generation_;
  if (++arrived_ == size_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return true;
  }
  cv_.wait(lock, [&] { return generation_ != gen || aborted_; });
  return !aborted_;
}

bool CpuCommGroup::Publish(int rank, const void* ptr) {
  std::unique_lock<std::mutex> lock(mu_);
  slots_[static_cast<size_t>(rank)] = ptr;
  return WaitAllLocked(lock);
}

bool CpuCommGroup::Barrier() {
  std::unique_lock<std::mutex> lock(mu_);
  return WaitAllLocked(lock);
}

void CpuCommGroup::Abort(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!aborted_) {
    aborted_ = true;
    why_ = why;
  }
  cv_.notify_all();
}

Status CpuCommGroup::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return aborted_ ? Error("tensor-parallel group aborted: " + why_) : Status::Ok();
}

void CpuCommunicator::Fail(const std::string& what) {
  if (!error_.ok()) return;
  const std::string me = "CPU communicator rank " + std::to_string(rank_) + ": " + what;
  Status group = group_->status();
  if (group.ok()) {
    // This rank's own failure: the others must not wait for it in the next collective.
    group_->Abort("rank " + std::to_string(rank_) + ": " + what);
    error_ = Error(me);
  } else {
    error_ = Error(me + " (" + group.message() + ")");  // woken by another rank's failure
  }
}

Status CpuCommunicator::status() const {
  if (!error_.ok()) return error_;
  return group_->status();
}

void CpuCommunicator::AllReduceSum(Tensor& x) {
  if (x.dtype != DType::kF32) return Fail("all-reduce: only fp32 tensors on the CPU backend");
  const int n = size();
  if (n == 1) return;
  // Each rank sums its own slice of elements over all ranks (in rank order), then every rank
  // copies every slice: two meetings, the work spread over the ranks' threads.
  const int64_t count = x.numel();
  const int64_t begin = count * rank_ / n, end = count * (rank_ + 1) / n;
  if (!group_->Publish(rank_, x.data)) return Fail("all-reduce: group aborted");
  sum_.assign(static_cast<size_t>(end - begin), 0.0f);
  for (int r = 0; r < n; ++r) {
    const float* src = static_cast<const float*>(group_->slot(r)) + begin;
    for (int64_t i = 0; i < end - begin; ++i) sum_[static_cast<size_t>(i)] += src[i];
  }
  // Everyone has read every input: now each rank writes its slice into every rank's buffer.
  if (!group_->Barrier()) return Fail("all-reduce: group aborted");
  for (int r = 0; r < n; ++r) {
    float* dst = static_cast<float*>(const_cast<void*>(group_->slot(r))) + begin;
    std::memcpy(dst, sum_.data(), sum_.size() * sizeof(float));
  }
  if (!group_->Barrier()) return Fail("all-reduce: group aborted");
}

void CpuCommunicator::AllGatherColumns(const Tensor& in, const std::vector<int64_t>& cols,
                                       Tensor& out) {
  const int n = size();
  if (in.dtype != DType::kF32 || out.dtype != DType::kF32) {
    return Fail("all-gather: only fp32 tensors");
  }
  if (static_cast<int>(cols.size()) != n) return Fail("all-gather: one column count per rank");
  const int64_t R = in.dim(0), Cp = in.dim(1), C = out.dim(1);
  int64_t total = 0;
  for (int64_t c : cols) {
    if (c > Cp) return Fail("all-gather: a rank's block is wider than the input");
    total += c;
  }
  if (total != C || out.dim(0) != R) return Fail("all-gather: output shape mismatch");
  // Each rank writes its own block into every rank's output.
  if (!group_->Publish(rank_, out.data)) return Fail("all-gather: group aborted");
  int64_t col0 = 0;
  for (int r = 0; r < rank_; ++r) col0 += cols[static_cast<size_t>(r)];
  const int64_t mine = cols[static_cast<size_t>(rank_)];
  for (int r = 0; r < n; ++r) {
    float* dst = static_cast<float*>(const_cast<void*>(group_->slot(r)));
    for (int64_t i = 0; i < R; ++i) {
      std::memcpy(dst + i * C + col0, in.as<float>() + i * Cp, mine * sizeof(float));
    }
  }
  if (!group_->Barrier()) return Fail("all-gather: group aborted");
}

std::vector<std::unique_ptr<Communicator>> CreateCpuCommunicators(int size) {
  auto group = std::make_shared<CpuCommGroup>(size);
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < size; ++r) out.push_back(std::make_unique<CpuCommunicator>(group, r));
  return out;
}

}  // namespace c8
