// The host sampler lives in the CPU backend (c8/backend/cpu/sampler.h) so that
// Backend::SampleRows can use it; this header keeps the engine-level include path.
#pragma once

#include "c8/backend/cpu/sampler.h"
