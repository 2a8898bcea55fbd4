// Turns one scheduled step into a ForwardBatch (positions, slot mapping, block tables,
// logits rows) and runs the model. Owns nothing but scratch; called on the engine thread.
#pragma once

#include <vector>

#include "c8/engine/scheduler.h"
#include "c8/kv/kv_cache.h"
#include "c8/model/decoder_model.h"

namespace c8 {

struct StepLogits {
  // (rows, vocab) fp32 in backend memory owned by the model (valid until the next step): one
  // row, its last token's, for each scheduled sequence that completes its known tokens.
  Tensor device;
  std::vector<int32_t> row_of;  // row of out.seqs[i], -1 if it samples nothing this step
};

class ModelRunner {
 public:
  ModelRunner(DecoderModel& model, KvCache& cache) : model_(model), cache_(cache) {}
  // Fills `batch` from `out` (exposed for tests).
  void BuildBatch(const SchedulerOutput& out, ForwardBatch& batch, StepLogits& logits) const;
  Status Run(const SchedulerOutput& out, StepLogits& logits);

 private:
  DecoderModel& model_;
  KvCache& cache_;
  ForwardBatch batch_;
  bool graph_warned_ = false;
};

}  // namespace c8
