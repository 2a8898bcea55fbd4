// CUDA graphs of CudaBackend: the ops queued between BeginGraphCapture and EndGraphCapture are
// recorded by stream capture (thread-local mode: other threads' CUDA calls are unaffected) and
// instantiated once; LaunchGraph replays them on the backend stream.
//
// A capture that fails (an op reports an error, a kernel launch is rejected, the driver
// invalidates the capture) returns its error and restores the backend's sticky error to what
// it was before, so the caller can fall back to running the ops eagerly.
#include <cuda_runtime_api.h>

#include <string>

#include "c8/backend/cuda/cuda_backend.h"
#include "c8/backend/cuda/cuda_backend_state.h"

namespace c8 {

Status CudaBackend::BeginGraphCapture() {
  if (s_->capturing) return Error("cuda backend: graph capture already in progress");
  C8_RETURN_IF_ERROR(s_->error);
  cudaError_t e = cudaStreamBeginCapture(s_->stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return Error(std::string("cuda backend: cannot begin graph capture: ") + cudaGetErrorString(e));
  }
  s_->capturing = true;
  s_->error_before_capture = s_->error;
  return Status::Ok();
}

Result<int64_t> CudaBackend::EndGraphCapture() {
  if (!s_->capturing) return Error("cuda backend: no graph capture in progress");
  s_->capturing = false;
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamEndCapture(s_->stream, &graph);
  Status failed = s_->error;  // an op that failed while recording
  s_->error = s_->error_before_capture;
  if (e != cudaSuccess || !failed.ok()) {
    cudaGetLastError();
    if (graph) cudaGraphDestroy(graph);
    if (!failed.ok()) return failed.WithContext("graph capture");
    return Error(std::string("cuda backend: graph capture failed: ") + cudaGetErrorString(e));
  }
  cudaGraphExec_t exec = nullptr;
  e = cudaGraphInstantiateWithFlags(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return Error(std::string("cuda backend: graph instantiation failed: ") + cudaGetErrorString(e));
  }
  const int64_t id = s_->next_graph_id++;
  s_->graphs.emplace(id, exec);
  return id;
}

Status CudaBackend::LaunchGraph(int64_t id) {
  auto it = s_->graphs.find(id);
  if (it == s_->graphs.end()) {
    return Error("cuda backend: no graph with id " + std::to_string(id));
  }
  if (!s_->Check(cudaGraphLaunch(it->second, s_->stream), "graph launch")) return s_->error;
  return Status::Ok();
}

void CudaBackend::DestroyGraph(int64_t id) {
  auto it = s_->graphs.find(id);
  if (it == s_->graphs.end()) return;
  // A launched graph may still be running: cudaGraphExecDestroy is safe then (the driver
  // defers the release), but keep the order explicit.
  s_->Check(cudaStreamSynchronize(s_->stream), "synchronize before graph destroy");
  cudaGraphExecDestroy(it->second);
  s_->graphs.erase(it);
}

uint64_t CudaBackend::GraphEpoch() const {
  return s_->graph_epoch;
}

}  // namespace c8
