#include "c8/engine/step_builder.h"

#include <algorithm>

namespace c8 {

void BuildForwardBatch(const SchedulerOutput& out, int32_t bs, ForwardBatch& b,
                       std::vector<bool>& sampled) {
  b = ForwardBatch();
  sampled.assign(out.seqs.size(), false);
  int32_t max_blocks = 1;
  for (const ScheduledSeq& s : out.seqs) {
    max_blocks = std::max(max_blocks, static_cast<int32_t>(s.request->blocks.size()));
  }
  b.max_blocks_per_seq = max_blocks;
  b.query_start.push_back(0);
  for (size_t i = 0; i < out.seqs.size(); ++i) {
    const ScheduledSeq& s = out.seqs[i];
    const Request& r = *s.request;
    const int32_t row0 = b.num_tokens();
    for (int32_t k = 0; k < s.num_new; ++k) {
      const int32_t pos = s.num_cached + k;
      b.token_ids.push_back(r.TokenAt(pos));
      b.positions.push_back(pos);
      b.slot_mapping.push_back(r.blocks[pos / bs] * bs + pos % bs);
    }
    b.query_start.push_back(b.num_tokens());
    b.num_cached.push_back(s.num_cached);
    for (int32_t k = 0; k < max_blocks; ++k) {
      b.block_tables.push_back(k < static_cast<int32_t>(r.blocks.size()) ? r.blocks[k]
                                                                         : kNullBlock);
    }
    if (s.num_cached + s.num_new == r.num_tokens()) {  // completes: its next token is sampled
      sampled[i] = true;
      b.logits_rows.push_back(row0 + s.num_new - 1);
    }
  }
}

}  // namespace c8
