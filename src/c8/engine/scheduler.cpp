#include "c8/engine/scheduler.h"

#include <algorithm>

namespace c8 {

void Scheduler::Add(std::unique_ptr<Request> request) {
  request->status = RequestStatus::kWaiting;
  waiting_.push_back(request.get());
  owned_.push_back(std::move(request));
}

std::vector<int32_t> Scheduler::AllTokens(const Request* r) const {
  std::vector<int32_t> t(r->prompt);
  t.insert(t.end(), r->output.begin(), r->output.end());
  return t;
}

void Scheduler::Preempt(Request* r) {
  kv_.Free(Blocks(r));
  r->num_computed = 0;
  r->status = RequestStatus::kPreempted;
  ++r->num_preemptions;
  ++num_preemptions_;
  waiting_.push_front(r);
}

SchedulerOutput Scheduler::Schedule() {
  SchedulerOutput out;
  int32_t budget = config_.max_num_batched_tokens;

  // 1. Running requests, oldest first.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Request* r = running_[i];
    int32_t num_new = std::min(r->num_tokens() - r->num_computed, budget);
    num_new = std::min(num_new, config_.max_model_len - r->num_computed);
    if (num_new <= 0) {
      ++i;
      continue;
    }
    bool scheduled = false;
    for (;;) {
      if (kv_.Allocate(Blocks(r), r->num_computed, num_new, nullptr)) {
        scheduled = true;
        break;
      }
      // Out of blocks: preempt the most recently admitted running request.
      Request* victim = running_.back();
      running_.pop_back();
      // A victim scheduled earlier in this step gives its tokens back.
      for (auto it = out.seqs.begin(); it != out.seqs.end(); ++it) {
        if (it->request == victim) {
          budget += it->num_new;
          out.num_tokens -= it->num_new;
          out.seqs.erase(it);
          break;
        }
      }
      Preempt(victim);
      out.preempted.push_back(victim);
      if (victim == r) break;
    }
    if (!scheduled) break;  // r itself was preempted: nothing after it runs either
    out.seqs.push_back({r, num_new, r->num_computed});
    out.num_tokens += num_new;
    budget -= num_new;
    ++i;
  }

  // 2. Waiting requests (not in a step that had to preempt).
  while (out.preempted.empty() && !waiting_.empty() && budget > 0 &&
         static_cast<int32_t>(running_.size()) < config_.max_num_seqs) {
    Request* r = waiting_.front();
    const std::vector<int32_t> tokens = AllTokens(r);
    KvCacheManager::PrefixHit hit = kv_.FindPrefix(r->prompt);
    // A resumed request may also reuse its own generated tokens' blocks: look them up on
    // the full token list.
    if (!r->output.empty()) hit = kv_.FindPrefix(tokens);
    const int32_t computed = hit.num_tokens;
    int32_t num_new = static_cast<int32_t>(tokens.size()) - computed;
    if (num_new > budget) {
      if (!config_.enable_chunked_prefill) break;
      num_new = budget;
    }
    if (!kv_.Allocate(Blocks(r), computed, num_new, &hit)) break;
    waiting_.pop_front();
    if (r->status == RequestStatus::kWaiting) {
      r->num_prefix_hit_tokens = computed;
      kv_.RecordPrefixQuery(static_cast<int64_t>(r->prompt.size()), computed);
    }
    r->num_computed = computed;
    r->status = RequestStatus::kRunning;
    running_.push_back(r);
    out.seqs.push_back({r, num_new, computed});
    out.num_tokens += num_new;
    budget -= num_new;
  }
  return out;
}

std::vector<Request*> Scheduler::OnStepDone(const SchedulerOutput& out) {
  std::vector<Request*> ready;
  for (const ScheduledSeq& s : out.seqs) {
    Request* r = s.request;
    if (r->finished()) continue;
    r->num_computed = s.num_cached + s.num_new;
    // Copy the token list only when a block became full (most decode steps fill none).
    const size_t full = static_cast<size_t>(r->num_computed / kv_.block_size());
    if (full > r->block_hashes.size()) {
      kv_.CacheFullBlocks(Blocks(r), AllTokens(r), r->num_computed);
    }
    if (r->num_computed == r->num_tokens()) ready.push_back(r);
  }
  return ready;
}

void Scheduler::Finish(Request* r, RequestStatus status) {
  if (r->finished()) return;
  kv_.Free(Blocks(r));
  r->status = status;
  running_.erase(std::remove(running_.begin(), running_.end(), r), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), r), waiting_.end());
  for (auto& p : owned_) {
    if (p.get() == r) {
      finished_.push_back(std::move(p));
      break;
    }
  }
  owned_.erase(std::remove(owned_.begin(), owned_.end(), nullptr), owned_.end());
}

bool Scheduler::Abort(const std::string& id) {
  for (auto& p : owned_) {
    if (p && p->id == id) {
      Finish(p.get(), RequestStatus::kAborted);
      return true;
    }
  }
  return false;
}

std::vector<std::unique_ptr<Request>> Scheduler::TakeFinished() {
  std::vector<std::unique_ptr<Request>> out;
  out.swap(finished_);
  return out;
}

}  // namespace c8
