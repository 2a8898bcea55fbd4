#include "c8/server/openai_response.h"

#include <cmath>

#include "c8/server/api_error.h"

namespace c8 {
namespace {

using json = nlohmann::json;

// JSON has no -inf: vLLM reports -9999.0 for impossible tokens.
double FiniteLogprob(float lp) {
  return std::isfinite(lp) ? static_cast<double>(lp) : -9999.0;
}

json BytesJson(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

const char* ObjectName(const ResponseMeta& meta, bool chunk) {
  if (meta.kind == ApiKind::kCompletion) return "text_completion";
  return chunk ? "chat.completion.chunk" : "chat.completion";
}

}  // namespace

int64_t Utf8Length(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

json FinishReasonJson(FinishReason reason, bool aborted) {
  if (aborted) return "abort";
  if (reason == FinishReason::kNone) return nullptr;
  return FinishReasonName(reason);
}

json StopReasonJson(const StopReason& reason) {
  if (const auto* s = std::get_if<std::string>(&reason)) return *s;
  if (const auto* t = std::get_if<int32_t>(&reason)) return *t;
  return nullptr;
}

json UsageJson(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

json CompletionLogprobsJson(std::span<const TokenOutput> tokens, const TokenTextFn& token_text,
                            int64_t* text_offset) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  for (const TokenOutput& t : tokens) {
    const std::string text = token_text(t.token_id);
    toks.push_back(text);
    lps.push_back(FiniteLogprob(t.logprob.value_or(0.0f)));
    json top = json::object();
    for (const TokenLogprob& tl : t.top_logprobs) {
      const std::string k = token_text(tl.token_id);
      if (!top.contains(k)) top[k] = FiniteLogprob(tl.logprob);
    }
    if (!top.contains(text)) top[text] = FiniteLogprob(t.logprob.value_or(0.0f));
    tops.push_back(std::move(top));
    offs.push_back(*text_offset);
    *text_offset += Utf8Length(text);
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

json ChatLogprobsJson(std::span<const TokenOutput> tokens, const TokenTextFn& token_text) {
  json content = json::array();
  for (const TokenOutput& t : tokens) {
    const std::string text = token_text(t.token_id);
    json top = json::array();
    for (const TokenLogprob& tl : t.top_logprobs) {
      const std::string tt = token_text(tl.token_id);
      top.push_back(
          {{"token", tt}, {"logprob", FiniteLogprob(tl.logprob)}, {"bytes", BytesJson(tt)}});
    }
    content.push_back({{"token", text},
                       {"logprob", FiniteLogprob(t.logprob.value_or(0.0f))},
                       {"bytes", BytesJson(text)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}};
}

json ResponseJson(const ResponseMeta& meta, const std::vector<ChoiceResult>& choices,
                  const std::vector<json>& logprobs, const Usage& usage) {
  json cs = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    json choice = {{"index", c.index}};
    if (meta.kind == ApiKind::kCompletion) {
      choice["text"] = c.text;
    } else {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    }
    choice["logprobs"] = i < logprobs.size() ? logprobs[i] : json();
    choice["finish_reason"] = FinishReasonJson(c.finish_reason, c.aborted);
    choice["stop_reason"] = StopReasonJson(c.stop_reason);
    cs.push_back(std::move(choice));
  }
  return {{"id", meta.id},       {"object", ObjectName(meta, false)}, {"created", meta.created},
          {"model", meta.model}, {"choices", std::move(cs)},          {"usage", UsageJson(usage)}};
}

json ChunkJson(const ResponseMeta& meta, int index, const std::string& text, bool role,
               const json& logprobs, const json& finish_reason, const json& stop_reason) {
  json choice = {{"index", index}};
  if (meta.kind == ApiKind::kCompletion) {
    choice["text"] = text;
  } else {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (!text.empty() || role || finish_reason.is_null()) delta["content"] = text;
    choice["delta"] = std::move(delta);
  }
  choice["logprobs"] = logprobs;
  choice["finish_reason"] = finish_reason;
  choice["stop_reason"] = stop_reason;
  return {{"id", meta.id},
          {"object", ObjectName(meta, true)},
          {"created", meta.created},
          {"model", meta.model},
          {"choices", json::array({std::move(choice)})}};
}

json UsageChunkJson(const ResponseMeta& meta, const Usage& usage) {
  return {{"id", meta.id},       {"object", ObjectName(meta, true)}, {"created", meta.created},
          {"model", meta.model}, {"choices", json::array()},         {"usage", UsageJson(usage)}};
}

std::string SseData(const json& j) {
  return "data: " + DumpJson(j) + "\n\n";
}

}  // namespace c8
