#include <string>

#include "c8/backend/backend.h"
#include "c8/backend/cpu/cpu_backend.h"

#ifdef C8_WITH_CUDA
#include "c8/backend/cuda/cuda_backend.h"
#endif

namespace c8 {

Result<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options) {
  if (options.device == "cpu") return std::unique_ptr<Backend>(new CpuBackend(options.num_threads));
#ifdef C8_WITH_CUDA
  if (options.device == "cuda" || options.device == "auto") {
    auto cuda = CreateCudaBackend(options.device_index);
    if (cuda.ok()) return std::move(cuda).value();
    if (options.device == "cuda") return cuda.status();
  }
#else
  if (options.device == "cuda") {
    return Error("--device cuda: this build of c8 has no CUDA backend");
  }
#endif
  if (options.device == "auto")
    return std::unique_ptr<Backend>(new CpuBackend(options.num_threads));
  return Error("--device: unknown device '" + options.device + "' (auto, cpu, cuda)");
}

}  // namespace c8
