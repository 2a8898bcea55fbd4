// Turns one scheduled step into a ForwardBatch (positions, slot mapping, block tables,
// logits rows) and runs the model. Owns nothing but scratch; called on the engine thread.
#pragma once

#include <vector>

#include "c8/engine/scheduler.h"
#include "c8/kv/kv_cache.h"
#include "c8/model/decoder_model.h"

namespace c8 {

struct StepLogits {
  // logits (rows, vocab) fp32: for each scheduled sequence that completes its known tokens
  // this step, the row of its last token; for want_all_logits sequences, one row per
  // computed token. row_of[i] = first row of out.seqs[i] (-1 if none), rows_of[i] = count.
  // `device`: all rows, fp32 backend memory owned by the model (valid until the next step);
  // `logits`: the same rows on the host, filled only when a sequence wants all logits (eval).
  Tensor device;
  std::vector<float> logits;
  std::vector<int32_t> row_of, rows_of;
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
};

}  // namespace c8
