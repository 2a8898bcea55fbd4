// CpuBackend::SampleRows: each row through the host Sampler, so results are bit-identical to
// sampling the same logits with c8/sampling/sampler.h directly.
#include <climits>
#include <optional>

#include "c8/backend/cpu/cpu_backend.h"
#include "c8/sampling/sampler.h"

namespace c8 {

Status CpuBackend::SampleRows(const Tensor& logits, const SamplingRows& rows,
                              std::vector<SampledToken>* out) {
  if (logits.dtype != DType::kF32 || logits.ndim != 2) {
    return Error("SampleRows: logits must be a (R, V) fp32 tensor");
  }
  const int64_t vocab = logits.dim(1);
  C8_RETURN_IF_ERROR(CheckSamplingRows(rows, logits.dim(0), vocab));
  out->assign(rows.rows.size(), SampledToken());
  Sampler sampler;  // no EOS list: min_tokens masking comes as explicit ids
  SamplingParams p;
  std::vector<int32_t> prompt_ids, output_ids;
  for (size_t i = 0; i < rows.rows.size(); ++i) {
    const SamplingRow& r = rows.rows[i];
    p.temperature = r.temperature;
    p.top_p = r.top_p;
    p.top_k = r.top_k;
    p.min_p = r.min_p;
    p.repetition_penalty = r.repetition_penalty;
    p.frequency_penalty = r.frequency_penalty;
    p.presence_penalty = r.presence_penalty;
    p.ignore_eos = true;
    p.stop_token_ids.assign(rows.masked.begin() + r.masked_begin,
                            rows.masked.begin() + r.masked_begin + r.masked_count);
    p.min_tokens = r.masked_count > 0 ? INT32_MAX : 0;
    p.logprobs = r.num_logprobs >= 0 ? std::optional<int32_t>(r.num_logprobs) : std::nullopt;
    // The penalty tokens stand for the prompt (repetition: the set matters) and the output
    // (each token repeated output_count times: frequency counts).
    prompt_ids.clear();
    output_ids.clear();
    for (int32_t k = 0; k < r.penalty_count; ++k) {
      const PenaltyToken& t = rows.penalty[r.penalty_begin + k];
      prompt_ids.push_back(t.token_id);
      output_ids.insert(output_ids.end(), static_cast<size_t>(std::max(0, t.output_count)),
                        t.token_id);
    }
    SamplerRng rng(r.seed, r.stream);
    rng.set_step(r.step);
    SampleRequest req;
    req.params = &p;
    req.prompt_token_ids = prompt_ids;
    req.output_token_ids = output_ids;
    req.rng = &rng;
    if (r.allowed_begin >= 0) {
      req.allowed = std::span<const uint32_t>(rows.allowed->data() + r.allowed_begin,
                                              static_cast<size_t>((vocab + 31) / 32));
    }
    const std::span<const float> row(logits.as<const float>() + r.logits_row * vocab,
                                     static_cast<size_t>(vocab));
    Result<SampleResult> res = sampler.Sample(row, req);
    SampledToken& o = (*out)[i];
    if (!res.ok()) {
      o.error = res.message();
      continue;
    }
    o.token_id = res->token_id;
    o.has_logprob = res->logprob.has_value();
    o.logprob = res->logprob.value_or(0.0f);
    o.rank = res->rank;
    o.top_logprobs = std::move(res->top_logprobs);
  }
  return Status::Ok();
}

}  // namespace c8
