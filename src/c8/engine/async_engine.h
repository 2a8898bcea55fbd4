// The threaded front of LlmEngine that the HTTP server uses.
//
// Thread ownership (who touches what):
//   - HTTP worker threads parse JSON, apply the chat template and tokenize (Tokenizer and
//     ChatTemplate are immutable and thread-safe), then hand plain EngineRequest structs to
//     AsyncEngine::Submit / Abort. They never touch the LlmEngine, the scheduler, the KV
//     cache or the model.
//   - The engine thread (started by the constructor, joined by Shutdown / the destructor)
//     is the only thread that calls LlmEngine: AddRequest, Abort, Step, stats. It sleeps on
//     a condition variable while it has no work and nothing was submitted.
//   - Outputs travel back through per-request OutputStream queues (one queue may serve
//     several engine requests: the n siblings and batch prompts of one HTTP request). The
//     engine thread pushes, the HTTP thread pops; each queue has its own mutex.
//   - stats() returns a snapshot the engine thread refreshes after every loop iteration.
// What crosses threads: EngineRequest (by value), ids to abort (by value), EngineEvent (by
// value, through the queue) and the EngineStats snapshot (by value, under a mutex).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "c8/engine/llm_engine.h"

namespace c8 {

// One engine output with the time the engine thread produced it.
struct EngineEvent {
  RequestOutput output;
  bool aborted = false;  // the engine aborted the request (shutdown); output.finished is true
  std::chrono::steady_clock::time_point time;
};

// Thread-safe queue of engine events for one HTTP request.
class OutputStream {
 public:
  void Push(EngineEvent event);
  // Waits up to `timeout` for at least one event, then moves every queued event to the end
  // of `out`. Returns false on timeout (nothing moved).
  bool PopAll(std::vector<EngineEvent>* out, std::chrono::milliseconds timeout);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<EngineEvent> events_;
};

class AsyncEngine {
 public:
  // `bundle` must outlive the AsyncEngine. Starts the engine thread.
  AsyncEngine(ModelBundle& bundle, const EngineConfig& config);
  ~AsyncEngine();
  AsyncEngine(const AsyncEngine&) = delete;
  AsyncEngine& operator=(const AsyncEngine&) = delete;

  // Adds `requests` (all or none) whose outputs go to `sink`. Blocks until the engine thread
  // has taken them (at most one engine step). If one is rejected (LlmEngine::AddRequest's
  // message, naming the field) the ones already added are aborted and that error returned.
  Status Submit(std::vector<EngineRequest> requests, std::shared_ptr<OutputStream> sink);
  // Aborts requests by id (asynchronously: their blocks are freed by the engine thread's
  // next iteration). No event is pushed for them. Unknown ids are ignored.
  void Abort(std::vector<std::string> ids);
  // Aborts every request in flight; each gets a final event with aborted = true.
  void AbortAll();
  // Aborts everything and joins the engine thread. Later Submits fail. Idempotent.
  void Shutdown();

  EngineStats stats() const;
  // Called once, on the engine thread, when the devices can no longer run steps (a
  // tensor-parallel rank failed): every request in flight has failed with the message and
  // later Submits fail; the server stops. Set before the first Submit.
  void SetFatalHandler(std::function<void(const std::string&)> handler) {
    on_fatal_ = std::move(handler);
  }
  // Requests submitted and not yet finished or aborted.
  int32_t num_in_flight() const;
  // Effective context limit (prompt + output tokens) and vocabulary size.
  int32_t max_model_len() const { return max_model_len_; }
  int64_t vocab_size() const { return vocab_size_; }

 private:
  struct Pending {
    std::vector<EngineRequest> requests;
    std::shared_ptr<OutputStream> sink;
    std::promise<Status> done;
  };
  void Loop();
  // Engine thread: takes queued submissions / aborts and applies them to engine_.
  void ApplyCommands();
  void RefreshStats();

  LlmEngine engine_;
  int32_t max_model_len_ = 0;
  int64_t vocab_size_ = 0;

  mutable std::mutex mu_;  // guards everything below up to stats_
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Pending>> pending_;
  std::vector<std::string> aborts_;
  bool abort_all_ = false;
  bool stop_ = false;
  std::string fatal_;  // why the engine stopped running steps, or empty
  EngineStats stats_;
  int32_t in_flight_ = 0;

  // Engine thread only: where each live request's outputs go.
  std::unordered_map<std::string, std::shared_ptr<OutputStream>> sinks_;
  std::function<void(const std::string&)> on_fatal_;
  std::thread thread_;
};

}  // namespace c8
