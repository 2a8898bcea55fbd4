#include "c8/engine/llm_engine.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "c8/engine/step_builder.h"
#include "c8/sampling/sampling_row_builder.h"

namespace c8 {

LlmEngine::LlmEngine(ModelBundle& bundle, const EngineConfig& config)
    : bundle_(bundle),
      config_(config),
      kv_(static_cast<int32_t>(bundle.executor->kv_spec().num_blocks),
          static_cast<int32_t>(bundle.executor->kv_spec().block_size),
          config.enable_prefix_caching),
      scheduler_(config.scheduler, kv_),
      executor_(*bundle.executor) {
  config_.scheduler.max_model_len = std::min<int32_t>(
      config_.scheduler.max_model_len, static_cast<int32_t>(executor_.max_model_len()));
}

Status LlmEngine::AddRequest(EngineRequest er) {
  C8_RETURN_IF_ERROR(er.params.Validate());
  const int32_t max_len = config_.scheduler.max_model_len;
  const int64_t vocab = executor_.config().vocab_size;
  if (er.prompt.empty()) return Error("prompt: must contain at least one token");
  if (static_cast<int32_t>(er.prompt.size()) >= max_len) {
    return Error("prompt: " + std::to_string(er.prompt.size()) +
                 " tokens leave no room to generate within max_model_len " +
                 std::to_string(max_len));
  }
  for (int32_t id : er.prompt) {
    if (id < 0 || id >= vocab) {
      return Error("prompt: token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                   std::to_string(vocab) + ")");
    }
  }
  const int64_t usable_tokens = (kv_.pool().num_blocks() - 1) * int64_t{kv_.block_size()};
  if (static_cast<int64_t>(er.prompt.size()) + 1 > usable_tokens) {
    return Error("prompt: " + std::to_string(er.prompt.size()) +
                 " tokens do not fit in the KV cache (" + std::to_string(usable_tokens) +
                 " tokens)");
  }
  auto r = std::make_unique<Request>();
  r->id = std::move(er.id);
  r->arrival_seq = next_arrival_++;
  r->prompt = std::move(er.prompt);
  r->params = std::move(er.params);
  r->rng = SamplerRng::FromSeed(r->params.seed, er.rng_stream);
  r->constraint = std::move(er.constraint);
  const int64_t room =
      std::min<int64_t>(max_len, usable_tokens) - static_cast<int64_t>(r->prompt.size());
  r->stop = std::make_unique<StopChecker>(r->params, bundle_.defaults.eos_token_ids, room);
  if (bundle_.tokenizer) {
    r->decoder = std::make_unique<StreamDecoder>(*bundle_.tokenizer, er.skip_special_tokens);
  } else if (!r->params.stop.empty()) {
    return Error("stop: stop strings need a tokenizer (this model has no tokenizer.json)");
  }
  scheduler_.Add(std::move(r));
  return Status::Ok();
}

bool LlmEngine::Abort(const std::string& id) {
  return scheduler_.Abort(id);
}

std::vector<RequestOutput> LlmEngine::Step() {
  std::vector<RequestOutput> outputs;
  SchedulerOutput sched = scheduler_.Schedule();
  if (sched.empty()) {
    scheduler_.TakeFinished();
    return outputs;
  }
  // The step's batch and, for every sequence that completes its known tokens, its sampling row
  // (the executor samples on the device: only ids and requested logprobs come back).
  BuildForwardBatch(sched, static_cast<int32_t>(executor_.kv_spec().block_size), step_in_.batch,
                    sampled_);
  step_in_.sampling.Clear();
  step_in_.before_sampling = nullptr;
  constrained_.clear();
  constraint_errors_.clear();
  std::vector<Request*> sampling;  // in row order
  const int64_t vocab = executor_.config().vocab_size;
  for (size_t i = 0; i < sched.seqs.size(); ++i) {
    if (!sampled_[i]) continue;
    Request* r = sched.seqs[i].request;
    AddSamplingRow(*r, static_cast<int32_t>(sampling.size()));
    if (r->constraint) {
      const int64_t at = static_cast<int64_t>(constrained_.size()) * AllowedMaskWords(vocab);
      step_in_.sampling.rows.back().allowed_begin = at;
      constrained_.emplace_back(at, r);
    }
    sampling.push_back(r);
  }
  if (!constrained_.empty()) {
    // The bitmasks are computed on the host while the device runs the forward pass.
    allowed_.assign(constrained_.size() * static_cast<size_t>(AllowedMaskWords(vocab)), ~0u);
    step_in_.sampling.allowed = &allowed_;
    step_in_.before_sampling = [this, vocab] {
      for (const auto& [at, r] : constrained_) {
        Status s = r->constraint->FillAllowed(allowed_.data() + at, vocab);
        if (!s.ok()) constraint_errors_.emplace_back(r, s.message());
      }
    };
  }
  Status st = executor_.Execute(step_in_, &step_out_);
  if (const std::string w = executor_.TakeGraphWarning(); !w.empty()) {
    std::fprintf(stderr, "c8: CUDA graphs turned off (decode steps run eagerly): %s\n", w.c_str());
  }
  std::unordered_map<Request*, size_t> index;
  auto out_for = [&](Request* r) -> RequestOutput& {
    auto it = index.find(r);
    if (it != index.end()) return outputs[it->second];
    index[r] = outputs.size();
    RequestOutput o;
    o.id = r->id;
    o.num_prompt_tokens = static_cast<int32_t>(r->prompt.size());
    o.num_cached_tokens = r->num_prefix_hit_tokens;
    outputs.push_back(std::move(o));
    return outputs.back();
  };
  if (!st.ok()) {
    for (const ScheduledSeq& s : sched.seqs) {
      RequestOutput& o = out_for(s.request);
      o.finished = true;
      o.error = "forward pass failed: " + st.message();
      scheduler_.Finish(s.request, RequestStatus::kAborted);
    }
    scheduler_.TakeFinished();
    return outputs;
  }
  for (size_t i = 0; i < sched.seqs.size(); ++i) {
    const ScheduledSeq& s = sched.seqs[i];
    if (s.num_cached + s.num_new <= static_cast<int32_t>(s.request->prompt.size())) {
      prompt_tokens_ += s.num_new;
    } else {
      generation_tokens_ += s.num_new;
    }
  }
  std::vector<Request*> ready = scheduler_.OnStepDone(sched);
  const std::vector<SampledToken>& sampled = step_out_.sampled;
  if (ready != sampling || sampled.size() != sampling.size()) {  // never expected
    for (Request* r : sampling) {
      RequestOutput& o = out_for(r);
      o.finished = true;
      o.error = "engine: sampled " + std::to_string(sampled.size()) + " rows for " +
                std::to_string(sampling.size()) + " sequences";
      scheduler_.Finish(r, RequestStatus::kAborted);
    }
    scheduler_.TakeFinished();
    return outputs;
  }
  for (size_t k = 0; k < ready.size(); ++k) {
    Request* r = ready[k];
    // A recomputed (preempted) sequence replays the same random stream position; the stream
    // advances once per sampled token, as the host Sampler does.
    r->rng->set_step(r->output.size() + 1);
    RequestOutput& o = out_for(r);
    const std::string& error = sampled[k].error;
    if (!error.empty()) {
      o.finished = true;
      o.error = error;
      scheduler_.Finish(r, RequestStatus::kAborted);
      continue;
    }
    const SampledToken* res = &sampled[k];
    if (r->constraint) {
      std::string why;
      for (const auto& [bad, msg] : constraint_errors_) {
        if (bad == r) why = msg;
      }
      if (why.empty()) {
        Status s = r->constraint->Accept(res->token_id);
        if (!s.ok()) why = s.message();
      }
      if (!why.empty()) {
        o.finished = true;
        o.error = "structured output: " + why;
        scheduler_.Finish(r, RequestStatus::kAborted);
        continue;
      }
    }
    r->output.push_back(res->token_id);
    TokenOutput t;
    t.token_id = res->token_id;
    if (res->has_logprob) t.logprob = res->logprob;
    t.rank = res->rank;
    t.top_logprobs = res->top_logprobs;
    o.new_tokens.push_back(std::move(t));
    StopUpdate u = r->stop->Append(res->token_id,
                                   r->decoder ? r->decoder->Push(res->token_id) : std::string());
    o.delta += u.delta;
    o.num_output_tokens = static_cast<int32_t>(r->output.size());
    if (r->stop->finished()) {
      o.finished = true;
      o.finish_reason = r->stop->finish_reason();
      o.stop_reason = r->stop->stop_reason();
      scheduler_.Finish(r, RequestStatus::kFinished);
    } else if (r->constraint && r->constraint->IsTerminated()) {
      // The grammar is complete and took a stop token (also under ignore_eos).
      o.delta += r->stop->text().substr(std::min(r->stop->streamed(), r->stop->text().size()));
      o.finished = true;
      o.finish_reason = FinishReason::kStop;
      scheduler_.Finish(r, RequestStatus::kFinished);
    }
  }
  scheduler_.TakeFinished();
  return outputs;
}

void LlmEngine::AddSamplingRow(const Request& r, int32_t logits_row) {
  AppendSamplingRow(logits_row, r.params, r.rng->seed(), r.rng->stream(), r.prompt, r.output,
                    bundle_.defaults.eos_token_ids, step_in_.sampling);
}

EngineStats LlmEngine::stats() const {
  EngineStats s;
  s.num_running = scheduler_.num_running();
  s.num_waiting = scheduler_.num_waiting();
  s.kv_usage = kv_.pool().Usage();
  s.num_free_blocks = kv_.pool().num_free_blocks();
  s.num_blocks = kv_.pool().num_blocks() - 1;
  s.prefix_queries = kv_.prefix_queries();
  s.prefix_hits = kv_.prefix_hits();
  s.num_preemptions = scheduler_.num_preemptions();
  s.prompt_tokens = prompt_tokens_;
  s.generation_tokens = generation_tokens_;
  return s;
}

}  // namespace c8
