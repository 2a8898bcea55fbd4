// Facts and one-time settings of the GPU a CudaBackend drives (internal to the CUDA backend):
// the SM count, per-kernel occupancy and which kernels had their shared-memory attribute set
// (cudaFuncSetAttribute is per device), plus the backend's kernel-choice switches. One per
// backend, owned by CudaBackendState and passed to the attention launchers; only the thread
// driving that backend touches it, so two backends on two GPUs run from two threads without
// sharing anything.
#pragma once

namespace c8::cuda {

struct DeviceContext {
  int device = 0;
  int num_sms = 132;  // cudaDevAttrMultiProcessorCount, read when the backend is created
  // C8 decode with groups <= 8 uses the swapped tile step (keys as mma rows); false forces the
  // 16-row head tile (tests and benchmarks compare the two). CudaBackend::SetDecodeSwap.
  bool decode_swap = true;
  // Resident CTAs per SM of the tensor-core decode kernel, [D == 128][int8 cache]; 0 until
  // first queried (which also sets that kernel's shared-memory attribute).
  int decode_occupancy[2][2] = {};
  // Shared-memory attribute set on this device: decode kernels [D == 128][bf16, int8, int8
  // swapped], prefill kernels [D == 128][int8 cache].
  bool decode_configured[2][3] = {};
  bool prefill_configured[2][2] = {};
};

}  // namespace c8::cuda
