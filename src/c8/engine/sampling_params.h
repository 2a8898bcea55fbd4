// SamplingParams live in the CPU backend (c8/backend/cpu/sampling_params.h) next to the host
// sampler; this header keeps the engine-level include path.
#pragma once

#include "c8/backend/cpu/sampling_params.h"
