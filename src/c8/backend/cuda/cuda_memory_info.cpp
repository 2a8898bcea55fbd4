// CudaBackend::MemoryInfo: free/total device memory for KV-cache sizing.
#include <cuda_runtime.h>

#include "c8/backend/cuda/cuda_backend.h"
#include "c8/backend/cuda/cuda_backend_state.h"

namespace c8 {

// cudaMemGetInfo answers for the current device: the backend's, whichever thread asks.
std::optional<DeviceMemory> CudaBackend::MemoryInfo() {
  ScopedDevice on(s_->device);
  Synchronize();
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  return DeviceMemory{free_bytes, total_bytes};
}

}  // namespace c8
