#include "c8/server/generation_job.h"

#include <atomic>
#include <ctime>
#include <random>

namespace c8 {
namespace {

using json = nlohmann::json;

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string ContextMessage(int32_t max_len, size_t prompt_len) {
  return "This model's maximum context length is " + std::to_string(max_len) +
         " tokens. However, your request has " + std::to_string(prompt_len) +
         " input tokens. Please reduce the length of the input.";
}

}  // namespace

std::string NewResponseId(const std::string& prefix) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016llx%08llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(counter.fetch_add(1) & 0xffffffffu));
  return prefix + buf;
}

std::variant<ApiError, std::unique_ptr<GenerationJob>> GenerationJob::Start(
    const GenerationContext& ctx, OpenAiRequest request, std::string id) {
  std::unique_ptr<GenerationJob> job(new GenerationJob());
  job->ctx_ = ctx;
  job->arrival_ = std::chrono::steady_clock::now();
  job->request_ = std::move(request);
  OpenAiRequest& r = job->request_;
  job->meta_ =
      ResponseMeta{r.kind, std::move(id), static_cast<int64_t>(std::time(nullptr)), ctx.model_name};
  ModelBundle& b = *ctx.bundle;
  const bool chat = r.kind == ApiKind::kChat;
  const std::string what = chat ? "messages" : "prompt";

  // Prompt token ids (this HTTP thread: template + tokenizer are thread-safe).
  std::vector<std::vector<int32_t>> prompts;
  if (chat) {
    if (!b.chat_template) {
      return BadRequest("messages: this model has no chat template (" + b.chat_template_error +
                            "); use /v1/completions",
                        "messages");
    }
    Result<std::string> text =
        b.chat_template->Apply(r.messages, r.add_generation_prompt, r.template_kwargs);
    if (!text.ok()) return BadRequest("messages: chat template: " + text.message(), "messages");
    prompts.push_back(b.tokenizer->Encode(*text, /*parse_special=*/true));
    job->prompt_texts_.push_back(std::move(text).value());
  } else {
    const int64_t vocab = ctx.engine->vocab_size();
    for (PromptInput& p : r.prompts) {
      if (p.is_text) {
        prompts.push_back(b.EncodePrompt(p.text));
        job->prompt_texts_.push_back(std::move(p.text));
      } else {
        for (int32_t t : p.ids) {
          if (t < 0 || t >= vocab) {
            return BadRequest("prompt: token id " + std::to_string(t) +
                                  " is out of vocabulary [0, " + std::to_string(vocab) + ")",
                              "prompt");
          }
        }
        job->prompt_texts_.push_back(r.echo ? b.tokenizer->Decode(p.ids) : std::string());
        prompts.push_back(std::move(p.ids));
      }
    }
    r.prompts.clear();
  }
  const int32_t max_len = ctx.engine->max_model_len();
  for (const auto& ids : prompts) {
    if (ids.empty()) return BadRequest(what + ": the prompt has no tokens", what);
    if (static_cast<int64_t>(ids.size()) >= max_len) {
      return BadRequest(ContextMessage(max_len, ids.size()), what);
    }
    if (r.max_tokens_set && r.params.max_tokens &&
        static_cast<int64_t>(ids.size()) + *r.params.max_tokens > max_len) {
      return BadRequest("This model's maximum context length is " + std::to_string(max_len) +
                            " tokens. However, you requested " +
                            std::to_string(ids.size() + *r.params.max_tokens) + " tokens (" +
                            std::to_string(ids.size()) + " in the " + what + ", " +
                            std::to_string(*r.params.max_tokens) +
                            " in the completion). Please reduce the length of the " + what +
                            " or completion.",
                        chat ? "max_completion_tokens" : "max_tokens");
    }
  }

  if (chat && r.tool_choice == ToolChoice::kAuto && !ctx.auto_tool_choice) {
    return BadRequest(
        "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be "
        "set (or send tool_choice \"none\" to only render the tools)",
        "tool_choice");
  }
  std::shared_ptr<StructuredOutput> structured;
  if (r.grammar.active()) {
    Result<std::shared_ptr<StructuredOutput>> so =
        ctx.structured ? ctx.structured() : Error("structured output is not available");
    if (!so.ok()) return BadRequest(r.grammar.field + ": " + so.message(), r.grammar.field);
    structured = *so;
  }

  // Model defaults for the fields the request left unset (vLLM --generation-config auto).
  SamplingParams params = r.params;
  b.defaults.ApplyTo(params, r.explicit_fields);
  if (Status st = params.Validate(); !st.ok()) return ValidationError(st, r.kind);
  if (structured && params.min_tokens > 0) {
    return BadRequest(
        "min_tokens: cannot be combined with structured output or a forced tool call (the "
        "grammar decides where the answer ends)",
        "min_tokens");
  }
  const int n = params.n;
  params.n = 1;

  std::vector<EngineRequest> reqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (int j = 0; j < n; ++j) {
      const int index = static_cast<int>(i) * n + j;
      Choice c;
      c.engine_id = job->meta_.id + "-" + std::to_string(index);
      c.prompt_index = static_cast<int>(i);
      c.result.index = index;
      c.prompt_tokens = static_cast<int64_t>(prompts[i].size());
      EngineRequest er;
      er.id = c.engine_id;
      er.prompt = prompts[i];
      er.params = params;
      er.rng_stream = static_cast<uint32_t>(j);
      if (structured) {
        // One matcher per sequence (the grammar itself is compiled once and cached).
        Result<std::shared_ptr<TokenConstraint>> m = structured->Make(r.grammar);
        if (!m.ok()) return BadRequest(m.message(), r.grammar.field);
        er.constraint = std::move(m).value();
      }
      if (chat && r.tool_choice == ToolChoice::kAuto) {
        c.tools = std::make_unique<HermesToolStreamParser>(
            [] { return NewResponseId("chatcmpl-tool-"); });
        er.skip_special_tokens = false;  // <tool_call> may be a special token
      }
      reqs.push_back(std::move(er));
      job->choices_.push_back(std::move(c));
    }
  }
  if (r.return_token_ids) job->prompt_ids_ = prompts;
  job->remaining_ = static_cast<int>(job->choices_.size());
  job->outputs_ = std::make_shared<OutputStream>();
  if (Status st = ctx.engine->Submit(std::move(reqs), job->outputs_); !st.ok()) {
    job->remaining_ = 0;  // nothing to abort: Submit is all or none
    if (st.message() == "server is shutting down") {
      return ApiError{503, st.message(), "server_error", "", ""};
    }
    const std::string& m = st.message();
    return BadRequest(m, m.rfind("prompt", 0) == 0 ? what : "");
  }
  return job;
}

GenerationJob::~GenerationJob() {
  Abort();
}

void GenerationJob::Abort() {
  std::vector<std::string> ids;
  for (Choice& c : choices_) {
    if (c.finished) continue;
    c.finished = true;
    c.result.aborted = true;
    ids.push_back(c.engine_id);
    if (ctx_.metrics) {
      ctx_.metrics->ObserveFinished("abort", Seconds(std::chrono::steady_clock::now() - arrival_),
                                    -1, c.prompt_tokens, c.output_tokens);
    }
  }
  remaining_ = 0;
  if (!ids.empty()) ctx_.engine->Abort(std::move(ids));
}

std::string GenerationJob::TokenText(int32_t id) const {
  if (ctx_.tokens_as_ids) return "token_id:" + std::to_string(id);
  return ctx_.bundle->tokenizer->Decode(std::span<const int32_t>(&id, 1), /*skip_special=*/false);
}

int GenerationJob::Apply(EngineEvent& ev) {
  const RequestOutput& o = ev.output;
  int idx = -1;
  for (size_t i = 0; i < choices_.size(); ++i) {
    if (choices_[i].engine_id == o.id) {
      idx = static_cast<int>(i);
      break;
    }
  }
  if (idx < 0) return -1;
  Choice& c = choices_[idx];
  if (c.finished) return -1;
  for (const TokenOutput& t : o.new_tokens) c.token_ids.push_back(t.token_id);
  if (!o.new_tokens.empty()) {
    if (ctx_.metrics) {
      if (!c.has_token) {
        ctx_.metrics->ObserveFirstToken(Seconds(ev.time - arrival_));
      } else {
        ctx_.metrics->ObserveInterToken(Seconds(ev.time - c.last_token));
      }
    }
    if (!c.has_token) c.first_token = ev.time;
    c.has_token = true;
    c.last_token = ev.time;
  }
  c.result.text += o.delta;
  c.output_tokens = std::max<int64_t>(c.output_tokens, o.num_output_tokens);
  if (o.num_prompt_tokens > 0) c.prompt_tokens = o.num_prompt_tokens;
  c.cached_tokens = std::max<int64_t>(c.cached_tokens, o.num_cached_tokens);
  if (o.finished) {
    c.finished = true;
    --remaining_;
    c.result.finish_reason = o.finish_reason;
    c.result.stop_reason = o.stop_reason;
    c.result.aborted = ev.aborted;
    c.error = o.error;
    if (ctx_.metrics) {
      const char* reason = !o.error.empty()                           ? "error"
                           : ev.aborted                               ? "abort"
                           : o.finish_reason == FinishReason::kLength ? "length"
                                                                      : "stop";
      const double tpot = c.output_tokens > 1 ? Seconds(c.last_token - c.first_token) /
                                                    static_cast<double>(c.output_tokens - 1)
                                              : -1;
      ctx_.metrics->ObserveFinished(reason, Seconds(ev.time - arrival_), tpot, c.prompt_tokens,
                                    c.output_tokens);
    }
  }
  return idx;
}

nlohmann::json GenerationJob::LogprobsOf(Choice& c, std::span<const TokenOutput> tokens) {
  auto text = [this](int32_t id) { return TokenText(id); };
  if (request_.kind == ApiKind::kChat) return ChatLogprobsJson(tokens, text);
  return CompletionLogprobsJson(tokens, text, &c.text_offset);
}

Usage GenerationJob::TotalUsage() const {
  Usage u;
  const int n = std::max(1, request_.params.n);
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    if (i % n == 0) {
      u.prompt_tokens += c.prompt_tokens;
      u.cached_tokens += c.cached_tokens;
    }
    u.completion_tokens += c.output_tokens;
  }
  return u;
}

std::variant<ApiError, nlohmann::json> GenerationJob::Wait() {
  const bool want_logprobs = request_.params.logprobs.has_value();
  while (remaining_ > 0) {
    std::vector<EngineEvent> evs;
    outputs_->PopAll(&evs, std::chrono::milliseconds(1000));
    for (EngineEvent& ev : evs) {
      const int i = Apply(ev);
      if (i >= 0 && want_logprobs) {
        auto& toks = choices_[i].result.tokens;
        toks.insert(toks.end(), ev.output.new_tokens.begin(), ev.output.new_tokens.end());
      }
    }
  }
  std::vector<ChoiceResult> results;
  std::vector<json> logprobs;
  for (Choice& c : choices_) {
    if (!c.error.empty()) return ApiError{500, c.error, "server_error", "", ""};
    ChoiceResult r = c.result;
    if (request_.echo) r.text = prompt_texts_[c.prompt_index] + r.text;
    logprobs.push_back(want_logprobs ? LogprobsOf(c, c.result.tokens) : json());
    results.push_back(std::move(r));
  }
  json out = ResponseJson(meta_, results, logprobs, TotalUsage());
  if (request_.kind == ApiKind::kChat && request_.tool_choice != ToolChoice::kNone) {
    for (size_t i = 0; i < choices_.size(); ++i) ShapeToolMessage(out["choices"][i], choices_[i]);
  }
  if (request_.return_token_ids) {
    for (size_t i = 0; i < choices_.size(); ++i) {
      // Chat has one prompt: its ids go on the response; completions: on each choice.
      if (request_.kind == ApiKind::kChat && i == 0) {
        out["prompt_token_ids"] = prompt_ids_[0];
      }
      AddTokenIds(out["choices"][i], choices_[i], choices_[i].token_ids,
                  request_.kind == ApiKind::kCompletion);
    }
  }
  return out;
}

void GenerationJob::AddTokenIds(json& j, const Choice& c, std::span<const int32_t> ids,
                                bool with_prompt) const {
  if (with_prompt) j["prompt_token_ids"] = prompt_ids_[static_cast<size_t>(c.prompt_index)];
  j["token_ids"] = std::vector<int32_t>(ids.begin(), ids.end());
}

namespace {

json ToolCallJson(const ToolCall& t) {
  return {{"id", t.id},
          {"type", "function"},
          {"function", {{"name", t.name}, {"arguments", t.arguments}}}};
}

// tool_choice required: the output is a JSON array of {"name", "parameters"} (forced by the
// grammar); empty when it is not (e.g. cut by max_tokens).
std::vector<ToolCall> RequiredCalls(const std::string& text) {
  std::vector<ToolCall> calls;
  json j = json::parse(text, nullptr, false);
  if (!j.is_array()) return calls;
  for (const json& c : j) {
    if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) return {};
    ToolCall t;
    t.id = NewResponseId("chatcmpl-tool-");
    t.name = c["name"].get<std::string>();
    t.arguments = c.contains("parameters") ? c["parameters"].dump() : "{}";
    calls.push_back(std::move(t));
  }
  return calls;
}

}  // namespace

void GenerationJob::ShapeToolMessage(json& choice, const Choice& c) const {
  json& msg = choice["message"];
  const std::string text = msg.value("content", std::string());
  std::vector<ToolCall> calls;
  json content = text;
  switch (request_.tool_choice) {
    case ToolChoice::kAuto: {
      ParsedToolCalls p =
          ParseHermesToolCalls(text, [] { return NewResponseId("chatcmpl-tool-"); });
      if (p.calls.empty()) return;
      calls = std::move(p.calls);
      content = p.has_content ? json(p.content) : json();
      break;
    }
    case ToolChoice::kNamed:
      // Also when cut short (finish_reason "length"), as the stream sends it.
      calls.push_back({NewResponseId("chatcmpl-tool-"), request_.tool_name, text});
      content = json();
      break;
    case ToolChoice::kRequired:
      calls = RequiredCalls(text);
      if (calls.empty()) return;
      content = json();
      break;
    case ToolChoice::kNone:
      return;
  }
  msg["content"] = content;
  msg["tool_calls"] = json::array();
  for (const ToolCall& t : calls) msg["tool_calls"].push_back(ToolCallJson(t));
  if (request_.tool_choice != ToolChoice::kNamed && choice["finish_reason"] == "stop") {
    choice["finish_reason"] = "tool_calls";
  }
}

void GenerationJob::ShapeToolDelta(json& chunk, Choice& c, const std::string& text, bool finished) {
  json& ch = chunk["choices"][0];
  json& delta = ch["delta"];
  const bool role = delta.contains("role");
  json calls = json::array();
  std::string content;
  switch (request_.tool_choice) {
    case ToolChoice::kAuto: {
      StreamDelta d = c.tools->Feed(text);
      if (finished) {
        StreamDelta tail = c.tools->Finish();
        d.content += tail.content;
        for (ToolCallDelta& t : tail.tool_calls) d.tool_calls.push_back(std::move(t));
      }
      content = d.content;
      for (const ToolCallDelta& t : d.tool_calls) {
        json fn = json::object();
        if (!t.name.empty()) fn["name"] = t.name;
        fn["arguments"] = t.arguments;
        json j = {{"index", t.index}};
        if (!t.id.empty()) {
          j["id"] = t.id;
          j["type"] = "function";
        }
        j["function"] = std::move(fn);
        calls.push_back(std::move(j));
      }
      if (finished && c.tools->saw_tool_call() && ch["finish_reason"] == "stop") {
        ch["finish_reason"] = "tool_calls";
      }
      break;
    }
    case ToolChoice::kNamed:
      // The output is the arguments: streamed as they come, the first delta naming the call.
      if (!text.empty() || !c.tool_header_sent) {
        json j = {{"index", 0}, {"function", {{"arguments", text}}}};
        if (!c.tool_header_sent) {
          c.tool_header_sent = true;
          j["id"] = NewResponseId("chatcmpl-tool-");
          j["type"] = "function";
          j["function"]["name"] = request_.tool_name;
        }
        calls.push_back(std::move(j));
      }
      break;
    case ToolChoice::kRequired:
      // A JSON array of calls: sent whole once complete (the text so far is in c.result).
      if (finished) {
        int index = 0;
        for (const ToolCall& t : RequiredCalls(c.result.text)) {
          json j = ToolCallJson(t);
          j["index"] = index++;
          calls.push_back(std::move(j));
        }
        if (!calls.empty() && ch["finish_reason"] == "stop") ch["finish_reason"] = "tool_calls";
        // Not a complete call list (cut by max_tokens or a stop string): the text, as the
        // non-streamed response gives it.
        if (calls.empty()) content = c.result.text;
      }
      break;
    case ToolChoice::kNone:
      return;
  }
  delta.erase("content");
  if (!content.empty() || role) delta["content"] = content;
  if (!calls.empty()) delta["tool_calls"] = std::move(calls);
}

void GenerationJob::NextEvents(std::string* out, std::chrono::milliseconds timeout) {
  if (done_sent_) return;
  const bool want_logprobs = request_.params.logprobs.has_value();
  if (remaining_ > 0) {
    std::vector<EngineEvent> evs;
    outputs_->PopAll(&evs, timeout);
    for (EngineEvent& ev : evs) {
      const int i = Apply(ev);
      if (i < 0) continue;
      Choice& c = choices_[i];
      const RequestOutput& o = ev.output;
      if (!c.error.empty()) {
        *out += SseData(ApiError{500, c.error, "server_error", "", ""}.ToJson());
        continue;
      }
      json lp = want_logprobs && !o.new_tokens.empty() ? LogprobsOf(c, o.new_tokens) : json();
      std::string text = o.delta;
      // One chunk per generated token (vLLM): a token whose text is held back (an incomplete
      // UTF-8 sequence, a possible stop string) still gets its chunk, with empty text.
      if (o.new_tokens.empty() && !o.finished) continue;
      bool role = false;
      const bool first = !c.sent_first;
      if (!c.sent_first) {
        c.sent_first = true;
        role = request_.kind == ApiKind::kChat;
        if (request_.echo) text = prompt_texts_[c.prompt_index] + text;
      }
      const json finish = o.finished ? FinishReasonJson(o.finish_reason, ev.aborted) : json();
      const json stop = o.finished ? StopReasonJson(o.stop_reason) : json();
      json chunk = ChunkJson(meta_, c.result.index, text, role, lp, finish, stop);
      if (request_.kind == ApiKind::kChat && request_.tool_choice != ToolChoice::kNone) {
        ShapeToolDelta(chunk, c, text, o.finished);
      }
      if (request_.return_token_ids) {
        std::vector<int32_t> ids;
        for (const TokenOutput& t : o.new_tokens) ids.push_back(t.token_id);
        if (first && request_.kind == ApiKind::kChat) chunk["prompt_token_ids"] = prompt_ids_[0];
        AddTokenIds(chunk["choices"][0], c, ids, first && request_.kind == ApiKind::kCompletion);
      }
      *out += SseData(chunk);
    }
  }
  if (remaining_ == 0) {
    if (request_.include_usage) *out += SseData(UsageChunkJson(meta_, TotalUsage()));
    *out += kSseDone;
    done_sent_ = true;
  }
}

}  // namespace c8
