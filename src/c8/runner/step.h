// What the engine hands the executor for one step, and what comes back: plain host data, no
// scheduler or request types (the engine's runner_input.cpp builds it from a scheduled batch).
#pragma once

#include <functional>
#include <vector>

#include "c8/model/forward_batch.h"
#include "c8/sampling/sampling_rows.h"

namespace c8 {

struct StepInput {
  ForwardBatch batch;
  // One row per sequence to sample; SamplingRow::logits_row indexes batch.logits_rows.
  SamplingRows sampling;
  // Runs on the sampling rank after the step's forward pass is queued and before sampling:
  // host work that overlaps the device, such as filling the structured-output bitmasks that
  // sampling.allowed points to. May be empty.
  std::function<void()> before_sampling;
};

struct StepOutput {
  // One entry per sampling row, in order (a bad row carries its own error).
  std::vector<SampledToken> sampled;
};

}  // namespace c8
