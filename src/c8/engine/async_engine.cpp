#include "c8/engine/async_engine.h"

#include <algorithm>

namespace c8 {

void OutputStream::Push(EngineEvent event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(event));
  }
  cv_.notify_all();
}

bool OutputStream::PopAll(std::vector<EngineEvent>* out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  for (EngineEvent& e : events_) out->push_back(std::move(e));
  events_.clear();
  return true;
}

AsyncEngine::AsyncEngine(ModelBundle& bundle, const EngineConfig& config)
    : engine_(bundle, config) {
  max_model_len_ = engine_.config().scheduler.max_model_len;
  vocab_size_ = bundle.executor->config().vocab_size;
  stats_ = engine_.stats();
  thread_ = std::thread([this] { Loop(); });
}

AsyncEngine::~AsyncEngine() {
  Shutdown();
}

Status AsyncEngine::Submit(std::vector<EngineRequest> requests,
                           std::shared_ptr<OutputStream> sink) {
  auto p = std::make_unique<Pending>();
  p->requests = std::move(requests);
  p->sink = std::move(sink);
  std::future<Status> done = p->done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return Error("server is shutting down");
    if (!fatal_.empty()) return Error("the engine has stopped: " + fatal_);
    pending_.push_back(std::move(p));
  }
  cv_.notify_all();
  return done.get();
}

void AsyncEngine::Abort(std::vector<std::string> ids) {
  if (ids.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::string& id : ids) aborts_.push_back(std::move(id));
  }
  cv_.notify_all();
}

void AsyncEngine::AbortAll() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    abort_all_ = true;
  }
  cv_.notify_all();
}

void AsyncEngine::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    abort_all_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

EngineStats AsyncEngine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

int32_t AsyncEngine::num_in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

void AsyncEngine::ApplyCommands() {
  std::vector<std::unique_ptr<Pending>> pending;
  std::vector<std::string> aborts;
  bool abort_all = false, stop = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending.swap(pending_);
    aborts.swap(aborts_);
    abort_all = abort_all_;
    abort_all_ = false;
    stop = stop_;
  }
  for (const std::string& id : aborts) {
    engine_.Abort(id);
    sinks_.erase(id);
  }
  for (auto& p : pending) {
    if (stop) {
      p->done.set_value(Error("server is shutting down"));
      continue;
    }
    Status status = Status::Ok();
    std::vector<std::string> added;
    for (EngineRequest& r : p->requests) {
      std::string id = r.id;
      if (sinks_.count(id) > 0) {
        status = Error("request id '" + id + "' is already in flight");
        break;
      }
      status = engine_.AddRequest(std::move(r));
      if (!status.ok()) break;
      sinks_[id] = p->sink;
      added.push_back(std::move(id));
    }
    if (!status.ok()) {
      for (const std::string& id : added) {
        engine_.Abort(id);
        sinks_.erase(id);
      }
    }
    p->done.set_value(std::move(status));
  }
  if (abort_all) {
    const auto now = std::chrono::steady_clock::now();
    for (auto& [id, sink] : sinks_) {
      engine_.Abort(id);
      EngineEvent e;
      e.output.id = id;
      e.output.finished = true;
      e.aborted = true;
      e.time = now;
      sink->Push(std::move(e));
    }
    sinks_.clear();
  }
}

void AsyncEngine::RefreshStats() {
  EngineStats s = engine_.stats();
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = s;
  in_flight_ = static_cast<int32_t>(sinks_.size());
}

void AsyncEngine::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return stop_ || abort_all_ || !pending_.empty() || !aborts_.empty() || !sinks_.empty() ||
               engine_.HasWork();
      });
    }
    ApplyCommands();
    bool stop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop = stop_;
    }
    if (stop) {
      RefreshStats();
      return;
    }
    if (engine_.HasWork()) {
      std::vector<RequestOutput> outs = engine_.Step();
      const auto now = std::chrono::steady_clock::now();
      for (RequestOutput& o : outs) {
        auto it = sinks_.find(o.id);
        if (it == sinks_.end()) continue;  // aborted meanwhile
        const bool finished = o.finished;
        std::shared_ptr<OutputStream> sink = it->second;
        if (finished) sinks_.erase(it);
        EngineEvent e;
        e.output = std::move(o);
        e.time = now;
        sink->Push(std::move(e));
      }
      if (!engine_.fatal().ok()) {
        bool first;
        {
          std::lock_guard<std::mutex> lock(mu_);
          first = fatal_.empty();
          fatal_ = engine_.fatal().message();
        }
        if (first && on_fatal_) on_fatal_(engine_.fatal().message());
      }
    } else {
      // A request can finish without ever being stepped only through abort; anything left
      // in sinks_ without engine work would be a bug: fail it rather than hang its client.
      const auto now = std::chrono::steady_clock::now();
      for (auto& [id, sink] : sinks_) {
        EngineEvent e;
        e.output.id = id;
        e.output.finished = true;
        e.output.error = "internal error: the engine lost this request";
        e.time = now;
        sink->Push(std::move(e));
      }
      sinks_.clear();
    }
    RefreshStats();
  }
}

}  // namespace c8
