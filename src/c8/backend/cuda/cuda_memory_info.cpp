// CudaBackend::MemoryInfo: free/total device memory for KV-cache sizing.
#include <cuda_runtime.h>

#include "c8/backend/cuda/cuda_backend.h"

namespace c8 {

std::optional<DeviceMemory> CudaBackend::MemoryInfo() {
  Synchronize();
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  return DeviceMemory{free_bytes, total_bytes};
}

}  // namespace c8
