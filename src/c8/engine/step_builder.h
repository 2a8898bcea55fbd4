// Turns one scheduled step into the executor's plain StepInput: the forward batch (tokens,
// positions, slot mapping, block tables, logits rows) and one sampling row per sequence that
// completes its known tokens this step. Pure host code, called on the engine thread.
#pragma once

#include <vector>

#include "c8/engine/scheduler.h"
#include "c8/runner/step.h"

namespace c8 {

// Fills in.batch from `out`; sampled[i] = out.seqs[i] samples this step (its last new token's
// logits are logits row k, the k-th such sequence).
void BuildForwardBatch(const SchedulerOutput& out, int32_t block_size, ForwardBatch& batch,
                       std::vector<bool>& sampled);

}  // namespace c8
