#include "c8/engine/sequence_generator.h"

#include <algorithm>
#include <chrono>

#include "c8/tokenizer/stream_decoder.h"

namespace c8 {

namespace {
double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

Status SequenceGenerator::Step(const std::vector<int32_t>& tokens, int32_t begin, int32_t end,
                               std::vector<float>& logits) {
  KvCache& cache = *bundle_.kv_cache;
  const int32_t bs = static_cast<int32_t>(cache.spec().block_size);
  ForwardBatch b;
  for (int32_t p = begin; p < end; ++p) {
    b.token_ids.push_back(tokens[p]);
    b.positions.push_back(p);
    b.slot_mapping.push_back(p);  // block table is the identity: slot == position
  }
  b.logits_rows = {end - begin - 1};
  b.query_start = {0, end - begin};
  b.num_cached = {begin};
  b.max_blocks_per_seq = (end + bs - 1) / bs;
  for (int32_t i = 0; i < b.max_blocks_per_seq; ++i) b.block_tables.push_back(i);
  return bundle_.model->Forward(b, cache, logits);
}

Result<GenerationResult> SequenceGenerator::Generate(
    const std::vector<int32_t>& prompt, const SamplingParams& params,
    const std::function<void(std::string_view)>& on_text) {
  C8_RETURN_IF_ERROR(params.Validate());
  if (prompt.empty()) return Error("prompt is empty");
  const int64_t capacity =
      std::min<int64_t>(bundle_.model->max_model_len(),
                        bundle_.kv_cache->spec().num_blocks * bundle_.kv_cache->spec().block_size);
  if (static_cast<int64_t>(prompt.size()) >= capacity) {
    return Error("prompt has " + std::to_string(prompt.size()) +
                 " tokens; the context holds at most " + std::to_string(capacity));
  }
  const int64_t vocab = bundle_.model->config().vocab_size;
  for (int32_t id : prompt) {
    if (id < 0 || id >= vocab)
      return Error("prompt token id " + std::to_string(id) + " out of range");
  }
  GenerationResult r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  // Reuse the longest common prefix with what the cache holds (at least one new token).
  int32_t reuse = 0;
  while (reuse < static_cast<int32_t>(cached_.size()) &&
         reuse + 1 < static_cast<int32_t>(prompt.size()) && cached_[reuse] == prompt[reuse]) {
    ++reuse;
  }
  r.reused_prompt_tokens = reuse;
  std::vector<int32_t> tokens = prompt;
  cached_.assign(prompt.begin(), prompt.begin() + reuse);

  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits;
  for (int32_t p = reuse; p < static_cast<int32_t>(prompt.size());) {
    int32_t end = std::min<int32_t>(static_cast<int32_t>(prompt.size()),
                                    p + static_cast<int32_t>(prefill_chunk_));
    C8_RETURN_IF_ERROR(Step(tokens, p, end, logits));
    p = end;
  }
  cached_ = prompt;
  auto t1 = std::chrono::steady_clock::now();
  r.prefill_seconds = Seconds(t0, t1);

  Sampler sampler(bundle_.defaults.eos_token_ids);
  SamplerRng rng = SamplerRng::FromSeed(params.seed);
  StopChecker stop(params, bundle_.defaults.eos_token_ids,
                   capacity - static_cast<int64_t>(prompt.size()));
  StreamDecoder decoder(*bundle_.tokenizer, /*skip_special=*/true);
  std::vector<int32_t> output;
  for (;;) {
    SampleRequest req;
    req.params = &params;
    req.prompt_token_ids = prompt;
    req.output_token_ids = output;
    req.rng = &rng;
    C8_ASSIGN_OR_RETURN(SampleResult s, sampler.Sample(logits, req));
    output.push_back(s.token_id);
    StopUpdate u = stop.Append(s.token_id, decoder.Push(s.token_id));
    if (!u.delta.empty() && on_text) on_text(u.delta);
    if (stop.finished()) break;
    tokens.push_back(s.token_id);
    const int32_t n = static_cast<int32_t>(tokens.size());
    C8_RETURN_IF_ERROR(Step(tokens, n - 1, n, logits));
    cached_.push_back(s.token_id);
  }
  r.decode_seconds = Seconds(t1, std::chrono::steady_clock::now());
  r.output_ids = std::move(output);
  r.text = stop.text();
  r.finish_reason = stop.finish_reason();
  r.stop_reason = stop.stop_reason();
  return r;
}

}  // namespace c8
