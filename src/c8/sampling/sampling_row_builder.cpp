#include "c8/sampling/sampling_row_builder.h"

#include <algorithm>
#include <vector>

namespace c8 {

void AppendSamplingRow(int32_t logits_row, const SamplingParams& p, uint64_t seed, uint32_t stream,
                       std::span<const int32_t> prompt, std::span<const int32_t> output,
                       std::span<const int32_t> eos, SamplingRows& rows) {
  SamplingRow row;
  row.logits_row = logits_row;
  row.temperature = p.temperature;
  row.top_p = p.top_p;
  row.top_k = p.top_k;
  row.min_p = p.min_p;
  row.repetition_penalty = p.repetition_penalty;
  row.frequency_penalty = p.frequency_penalty;
  row.presence_penalty = p.presence_penalty;
  row.seed = seed;
  row.stream = stream;
  row.step = output.size();
  row.num_logprobs = p.logprobs.value_or(-1);
  row.penalty_begin = static_cast<int64_t>(rows.penalty.size());
  if (p.PenaltiesEnabled()) {
    std::vector<int32_t> out(output.begin(), output.end());
    std::sort(out.begin(), out.end());
    std::vector<int32_t> ids = out;
    if (p.repetition_penalty != 1.0) ids.insert(ids.end(), prompt.begin(), prompt.end());
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (int32_t t : ids) {
      const auto range = std::equal_range(out.begin(), out.end(), t);
      rows.penalty.push_back({t, static_cast<int32_t>(range.second - range.first)});
    }
  }
  row.penalty_count = static_cast<int32_t>(rows.penalty.size() - row.penalty_begin);
  row.masked_begin = static_cast<int64_t>(rows.masked.size());
  if (static_cast<int64_t>(output.size()) < p.min_tokens) {
    if (!p.ignore_eos) rows.masked.insert(rows.masked.end(), eos.begin(), eos.end());
    rows.masked.insert(rows.masked.end(), p.stop_token_ids.begin(), p.stop_token_ids.end());
  }
  row.masked_count = static_cast<int32_t>(rows.masked.size() - row.masked_begin);
  rows.rows.push_back(row);
}

}  // namespace c8
