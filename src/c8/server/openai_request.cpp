#include "c8/server/openai_request.h"

#include <cmath>
#include <limits>

namespace c8 {
namespace {

using OJ = nlohmann::ordered_json;

// The field `name` of `body`, or nullptr when absent or null.
const OJ* Field(const OJ& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

const char* TypeName(const OJ& v) {
  switch (v.type()) {
    case OJ::value_t::null:
      return "null";
    case OJ::value_t::boolean:
      return "a boolean";
    case OJ::value_t::string:
      return "a string";
    case OJ::value_t::array:
      return "an array";
    case OJ::value_t::object:
      return "an object";
    case OJ::value_t::number_float:
      return "a number";
    default:
      return "an integer";
  }
}

ApiError WrongType(const std::string& param, const char* want, const OJ& got) {
  return BadRequest(param + ": expected " + want + ", got " + TypeName(got), param);
}

// Integer value of `v` (an integer, or an integral float) in [lo, hi].
std::optional<ApiError> ToInt(const OJ& v, const std::string& param, int64_t lo, int64_t hi,
                              int64_t* out) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(hi)) {
        return BadRequest(
            param + ": must be at most " + std::to_string(hi) + ", got " + std::to_string(u),
            param);
      }
      *out = static_cast<int64_t>(u);
    } else {
      *out = v.get<int64_t>();
    }
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) {
      return BadRequest(param + ": expected an integer, got " + v.dump(), param);
    }
    *out = static_cast<int64_t>(d);
  } else {
    return WrongType(param, "an integer", v);
  }
  if (*out < lo || *out > hi) {
    return BadRequest(param + ": must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                          "], got " + std::to_string(*out),
                      param);
  }
  return std::nullopt;
}

constexpr int64_t kI32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kI32Min = std::numeric_limits<int32_t>::min();

// Reads optional field `name` into *out; *set = whether it was present (not null).
template <class T>
std::optional<ApiError> GetInt(const OJ& body, const char* name, T* out, bool* set = nullptr,
                               int64_t lo = kI32Min, int64_t hi = kI32Max) {
  const OJ* v = Field(body, name);
  if (set) *set = v != nullptr;
  if (!v) return std::nullopt;
  int64_t x = 0;
  if (auto e = ToInt(*v, name, lo, hi, &x)) return e;
  *out = static_cast<T>(x);
  return std::nullopt;
}

std::optional<ApiError> GetDouble(const OJ& body, const char* name, double* out,
                                  bool* set = nullptr) {
  const OJ* v = Field(body, name);
  if (set) *set = v != nullptr;
  if (!v) return std::nullopt;
  if (!v->is_number()) return WrongType(name, "a number", *v);
  *out = v->get<double>();
  return std::nullopt;
}

std::optional<ApiError> GetBool(const OJ& body, const char* name, bool* out) {
  const OJ* v = Field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) return WrongType(name, "a boolean", *v);
  *out = v->get<bool>();
  return std::nullopt;
}

// A JSON Schema given as an object (or boolean) or as its JSON text.
std::optional<ApiError> SchemaText(const OJ& v, const std::string& param, std::string* out) {
  if (v.is_object() || v.is_boolean()) {
    *out = v.dump();
    return std::nullopt;
  }
  if (v.is_string()) {
    OJ parsed = OJ::parse(v.get<std::string>(), nullptr, false);
    if (parsed.is_discarded() || !(parsed.is_object() || parsed.is_boolean())) {
      return BadRequest(param + ": not a JSON Schema (expected a JSON object)", param);
    }
    *out = parsed.dump();
    return std::nullopt;
  }
  return WrongType(param, "a JSON Schema object", v);
}

std::optional<ApiError> ChoiceList(const OJ& v, const std::string& param,
                                   std::vector<std::string>* out) {
  if (!v.is_array() || v.empty()) return WrongType(param, "a non-empty array of strings", v);
  for (const OJ& c : v) {
    if (!c.is_string()) return WrongType(param, "a non-empty array of strings", v);
    out->push_back(c.get<std::string>());
  }
  return std::nullopt;
}

// Structured output fields (vLLM names); at most one of them.
std::optional<ApiError> ParseStructuredOutput(const OJ& body, GrammarSpec* g) {
  std::vector<GrammarSpec> found;
  if (const OJ* rf = Field(body, "response_format")) {
    if (!rf->is_object()) return WrongType("response_format", "an object", *rf);
    const OJ* type = Field(*rf, "type");
    if (!type || !type->is_string()) {
      return BadRequest("response_format.type: expected a string", "response_format");
    }
    const std::string t = type->get<std::string>();
    GrammarSpec s;
    s.field = "response_format";
    if (t == "json_object") {
      s.kind = GrammarSpec::Kind::kJsonObject;
      found.push_back(s);
    } else if (t == "json_schema") {
      const OJ* js = Field(*rf, "json_schema");
      if (!js || !js->is_object()) {
        return BadRequest("response_format.json_schema: expected an object with a schema",
                          "response_format");
      }
      s.field = "response_format.json_schema";
      if (const OJ* schema = Field(*js, "schema")) {
        s.kind = GrammarSpec::Kind::kJsonSchema;
        if (auto e = SchemaText(*schema, "response_format.json_schema.schema", &s.source)) {
          return e;
        }
      } else {
        s.kind = GrammarSpec::Kind::kJsonObject;  // no schema: any JSON object
      }
      found.push_back(s);
    } else if (t != "text") {
      return BadRequest(
          "response_format: type '" + t + "' is not supported (text, json_object, json_schema)",
          "response_format");
    }
  }
  if (const OJ* v = Field(body, "guided_json")) {
    GrammarSpec s{GrammarSpec::Kind::kJsonSchema, "", {}, "guided_json"};
    if (auto e = SchemaText(*v, "guided_json", &s.source)) return e;
    found.push_back(s);
  }
  if (const OJ* v = Field(body, "guided_regex")) {
    if (!v->is_string()) return WrongType("guided_regex", "a string", *v);
    found.push_back({GrammarSpec::Kind::kRegex, v->get<std::string>(), {}, "guided_regex"});
  }
  if (const OJ* v = Field(body, "guided_choice")) {
    GrammarSpec s{GrammarSpec::Kind::kChoice, "", {}, "guided_choice"};
    if (auto e = ChoiceList(*v, "guided_choice", &s.choices)) return e;
    found.push_back(s);
  }
  if (const OJ* v = Field(body, "guided_grammar")) {
    if (!v->is_string()) return WrongType("guided_grammar", "a string", *v);
    found.push_back({GrammarSpec::Kind::kEbnf, v->get<std::string>(), {}, "guided_grammar"});
  }
  if (const OJ* so = Field(body, "structured_outputs")) {
    if (!so->is_object()) return WrongType("structured_outputs", "an object", *so);
    for (auto it = so->begin(); it != so->end(); ++it) {
      const std::string key = it.key();
      const std::string param = "structured_outputs." + key;
      const OJ& v = it.value();
      if (v.is_null()) continue;
      if (key == "json") {
        GrammarSpec s{GrammarSpec::Kind::kJsonSchema, "", {}, param};
        if (auto e = SchemaText(v, param, &s.source)) return e;
        found.push_back(s);
      } else if (key == "regex" || key == "grammar") {
        if (!v.is_string()) return WrongType(param, "a string", v);
        found.push_back({key == "regex" ? GrammarSpec::Kind::kRegex : GrammarSpec::Kind::kEbnf,
                         v.get<std::string>(),
                         {},
                         param});
      } else if (key == "choice") {
        GrammarSpec s{GrammarSpec::Kind::kChoice, "", {}, param};
        if (auto e = ChoiceList(v, param, &s.choices)) return e;
        found.push_back(s);
      } else if (key == "json_object") {
        if (!v.is_boolean()) return WrongType(param, "a boolean", v);
        if (v.get<bool>()) found.push_back({GrammarSpec::Kind::kJsonObject, "", {}, param});
      } else if (key == "disable_fallback" || key == "disable_any_whitespace" ||
                 key == "disable_additional_properties") {
        // Options of vLLM's backends that do not change what c8 produces: output is always
        // compact JSON from one engine (xgrammar), never a fallback.
        if (!v.is_boolean()) return WrongType(param, "a boolean", v);
      } else {
        return BadRequest(param + ": not supported (json, regex, choice, grammar, json_object)",
                          param);
      }
    }
  }
  if (const OJ* v = Field(body, "guided_decoding_backend")) {
    if (!v->is_string()) return WrongType("guided_decoding_backend", "a string", *v);
    const std::string b = v->get<std::string>();
    if (!b.empty() && b != "auto" && b != "xgrammar") {
      return BadRequest("guided_decoding_backend: '" + b +
                            "' is not available (c8 uses xgrammar: 'auto' or 'xgrammar')",
                        "guided_decoding_backend");
    }
  }
  if (found.size() > 1) {
    return BadRequest("only one kind of structured output may be requested, got " + found[0].field +
                          " and " + found[1].field,
                      found[1].field);
  }
  if (!found.empty()) *g = found[0];
  return std::nullopt;
}

// Fields shared by both endpoints.
std::optional<ApiError> ParseCommon(const OJ& body, OpenAiRequest* r) {
  SamplingParams& p = r->params;
  if (const OJ* m = Field(body, "model")) {
    if (!m->is_string()) return WrongType("model", "a string", *m);
    r->model = m->get<std::string>();
  }
  if (auto e = GetBool(body, "stream", &r->stream)) return e;
  if (auto e = GetBool(body, "return_token_ids", &r->return_token_ids)) return e;
  if (auto e = ParseStructuredOutput(body, &r->grammar)) return e;
  if (const OJ* so = Field(body, "stream_options")) {
    if (!so->is_object()) return WrongType("stream_options", "an object", *so);
    if (const OJ* iu = Field(*so, "include_usage")) {
      if (!iu->is_boolean()) return WrongType("stream_options.include_usage", "a boolean", *iu);
      r->include_usage = iu->get<bool>();
    }
  }
  struct D {
    const char* name;
    double* dst;
  };
  for (const D& d :
       {D{"temperature", &p.temperature}, D{"top_p", &p.top_p}, D{"min_p", &p.min_p},
        D{"repetition_penalty", &p.repetition_penalty},
        D{"frequency_penalty", &p.frequency_penalty}, D{"presence_penalty", &p.presence_penalty}}) {
    bool set = false;
    if (auto e = GetDouble(body, d.name, d.dst, &set)) return e;
    if (set) r->explicit_fields.push_back(d.name);
  }
  bool set = false;
  if (auto e = GetInt(body, "top_k", &p.top_k, &set)) return e;
  if (set) r->explicit_fields.push_back("top_k");
  if (const OJ* s = Field(body, "seed")) {
    if (s->is_number_unsigned()) {
      p.seed = s->get<uint64_t>();
    } else {
      int64_t x = 0;
      if (auto e = ToInt(*s, "seed", std::numeric_limits<int64_t>::min(),
                         std::numeric_limits<int64_t>::max(), &x)) {
        return e;
      }
      p.seed = static_cast<uint64_t>(x);
    }
  }
  if (auto e = GetInt(body, "n", &p.n, nullptr, kI32Min, kI32Max)) return e;
  if (p.n > kMaxN) {
    return BadRequest(
        "n: must be at most " + std::to_string(kMaxN) + ", got " + std::to_string(p.n), "n");
  }
  if (auto e = GetInt(body, "min_tokens", &p.min_tokens)) return e;
  if (auto e = GetBool(body, "ignore_eos", &p.ignore_eos)) return e;
  if (auto e = GetBool(body, "include_stop_str_in_output", &p.include_stop_str_in_output)) {
    return e;
  }
  if (const OJ* s = Field(body, "stop")) {
    if (s->is_string()) {
      p.stop = {s->get<std::string>()};
    } else if (s->is_array()) {
      for (size_t i = 0; i < s->size(); ++i) {
        if (!(*s)[i].is_string()) {
          return WrongType("stop[" + std::to_string(i) + "]", "a string", (*s)[i]);
        }
        p.stop.push_back((*s)[i].get<std::string>());
      }
    } else {
      return WrongType("stop", "a string or an array of strings", *s);
    }
  }
  if (const OJ* s = Field(body, "stop_token_ids")) {
    if (!s->is_array()) return WrongType("stop_token_ids", "an array of integers", *s);
    for (size_t i = 0; i < s->size(); ++i) {
      int64_t x = 0;
      if (auto e = ToInt((*s)[i], "stop_token_ids", 0, kI32Max, &x)) return e;
      p.stop_token_ids.push_back(static_cast<int32_t>(x));
    }
  }
  return std::nullopt;
}

std::optional<ApiError> ParseTokenList(const OJ& arr, const std::string& param,
                                       std::vector<int32_t>* out) {
  out->reserve(arr.size());
  for (const OJ& t : arr) {
    int64_t x = 0;
    if (auto e = ToInt(t, param, 0, kI32Max, &x)) return e;
    out->push_back(static_cast<int32_t>(x));
  }
  return std::nullopt;
}

std::optional<ApiError> ParsePrompt(const OJ& body, OpenAiRequest* r) {
  const OJ* pr = Field(body, "prompt");
  if (!pr) return BadRequest("prompt: required", "prompt");
  const char* kWant =
      "a string, an array of strings, an array of token ids or an array of "
      "token id arrays";
  if (pr->is_string()) {
    r->prompts.push_back(PromptInput{true, pr->get<std::string>(), {}});
    return std::nullopt;
  }
  if (!pr->is_array()) return WrongType("prompt", kWant, *pr);
  if (pr->empty()) return BadRequest("prompt: must not be empty", "prompt");
  const OJ& first = (*pr)[0];
  if (first.is_string()) {
    for (size_t i = 0; i < pr->size(); ++i) {
      if (!(*pr)[i].is_string()) {
        return WrongType("prompt[" + std::to_string(i) + "]", "a string", (*pr)[i]);
      }
      r->prompts.push_back(PromptInput{true, (*pr)[i].get<std::string>(), {}});
    }
  } else if (first.is_number()) {
    PromptInput in{false, "", {}};
    if (auto e = ParseTokenList(*pr, "prompt", &in.ids)) return e;
    r->prompts.push_back(std::move(in));
  } else if (first.is_array()) {
    for (size_t i = 0; i < pr->size(); ++i) {
      const OJ& a = (*pr)[i];
      const std::string param = "prompt[" + std::to_string(i) + "]";
      if (!a.is_array()) return WrongType(param, "an array of token ids", a);
      if (a.empty()) return BadRequest(param + ": must not be empty", "prompt");
      PromptInput in{false, "", {}};
      if (auto e = ParseTokenList(a, "prompt", &in.ids)) return e;
      r->prompts.push_back(std::move(in));
    }
  } else {
    return WrongType("prompt", kWant, *pr);
  }
  return std::nullopt;
}

bool KnownRole(const std::string& role) {
  for (const char* r : {"system", "developer", "user", "assistant", "tool", "function"}) {
    if (role == r) return true;
  }
  return false;
}

std::optional<ApiError> ParseMessages(const OJ& body, OpenAiRequest* r) {
  const OJ* ms = Field(body, "messages");
  if (!ms) return BadRequest("messages: required", "messages");
  if (!ms->is_array()) return WrongType("messages", "an array of messages", *ms);
  if (ms->empty()) return BadRequest("messages: must contain at least one message", "messages");
  r->messages = OJ::array();
  for (size_t i = 0; i < ms->size(); ++i) {
    const OJ& m = (*ms)[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return WrongType(at, "an object", m);
    const OJ* role = Field(m, "role");
    if (!role) return BadRequest(at + ".role: required", "messages");
    if (!role->is_string()) return WrongType(at + ".role", "a string", *role);
    if (!KnownRole(role->get<std::string>())) {
      return BadRequest(at + ".role: unknown role '" + role->get<std::string>() +
                            "' (system, developer, user, assistant, tool, function)",
                        "messages");
    }
    OJ out = m;
    auto c = m.find("content");
    if (c == m.end() || c->is_null()) {
      out["content"] = nullptr;
    } else if (c->is_string()) {
      // as is
    } else if (c->is_array()) {
      // A list of parts: text parts are joined with "\n" (vLLM's string content format).
      std::string text;
      for (size_t j = 0; j < c->size(); ++j) {
        const OJ& part = (*c)[j];
        const std::string pat = at + ".content[" + std::to_string(j) + "]";
        if (!part.is_object()) return WrongType(pat, "an object", part);
        const OJ* type = Field(part, "type");
        if (!type || !type->is_string()) {
          return BadRequest(pat + ".type: required (a string)", "messages");
        }
        if (type->get<std::string>() != "text") {
          return BadRequest(pat + ".type: unsupported content part type '" +
                                type->get<std::string>() + "' (only 'text')",
                            "messages");
        }
        const OJ* t = Field(part, "text");
        if (!t || !t->is_string())
          return BadRequest(pat + ".text: required (a string)", "messages");
        if (j > 0) text += "\n";
        text += t->get<std::string>();
      }
      out["content"] = text;
    } else {
      return WrongType(at + ".content", "a string, an array of content parts or null", *c);
    }
    r->messages.push_back(std::move(out));
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> ParseJsonBody(std::string_view body, nlohmann::ordered_json* out,
                                      int max_depth) {
  // Nesting depth outside strings, so deep input never reaches recursive code.
  int depth = 0;
  bool in_string = false, escape = false;
  for (char ch : body) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (ch == '\\') {
        escape = true;
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > max_depth) {
        return BadRequest("request body: JSON nested deeper than " + std::to_string(max_depth) +
                          " levels");
      }
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  *out =
      nlohmann::ordered_json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) {
    return BadRequest("request body: not valid JSON (or not valid UTF-8)");
  }
  if (!out->is_object()) return BadRequest("request body: expected a JSON object");
  return std::nullopt;
}

std::optional<ApiError> ParseCompletionRequest(const nlohmann::ordered_json& body,
                                               OpenAiRequest* r) {
  r->kind = ApiKind::kCompletion;
  if (auto e = ParseCommon(body, r)) return e;
  if (auto e = ParsePrompt(body, r)) return e;
  r->params.max_tokens = 16;
  bool set = false;
  int32_t mt = 0;
  if (auto e = GetInt(body, "max_tokens", &mt, &set)) return e;
  if (set) r->params.max_tokens = mt;
  r->max_tokens_set = set;
  if (auto e = GetBool(body, "echo", &r->echo)) return e;
  int32_t lp = 0;
  if (auto e = GetInt(body, "logprobs", &lp, &set)) return e;
  if (set) r->params.logprobs = lp;
  if (r->echo && r->params.logprobs) {
    return BadRequest("echo: not supported together with logprobs", "echo");
  }
  if (r->prompts.size() * static_cast<size_t>(std::max(r->params.n, 1)) > 1024) {
    return BadRequest("prompt: at most 1024 choices (prompts x n) per request", "prompt");
  }
  if (Status st = r->params.Validate(); !st.ok()) return ValidationError(st, r->kind);
  return std::nullopt;
}

std::optional<ApiError> ParseChatRequest(const nlohmann::ordered_json& body, OpenAiRequest* r) {
  r->kind = ApiKind::kChat;
  if (auto e = ParseCommon(body, r)) return e;
  if (auto e = ParseMessages(body, r)) return e;
  bool set = false, set2 = false;
  int32_t mt = 0;
  if (auto e = GetInt(body, "max_tokens", &mt, &set)) return e;
  if (set) r->params.max_tokens = mt;
  if (auto e = GetInt(body, "max_completion_tokens", &mt, &set2)) return e;
  if (set2) r->params.max_tokens = mt;
  r->max_tokens_set = set || set2;
  if (auto e = GetBool(body, "logprobs", &r->chat_logprobs)) return e;
  int32_t top = 0;
  if (auto e = GetInt(body, "top_logprobs", &top, &set)) return e;
  if (set && top > 0 && !r->chat_logprobs) {
    return BadRequest("top_logprobs: requires logprobs to be true", "top_logprobs");
  }
  if (r->chat_logprobs) r->params.logprobs = set ? top : 0;
  if (auto e = GetBool(body, "add_generation_prompt", &r->add_generation_prompt)) return e;
  if (const OJ* k = Field(body, "chat_template_kwargs")) {
    if (!k->is_object()) return WrongType("chat_template_kwargs", "an object", *k);
    for (auto it = k->begin(); it != k->end(); ++it) r->template_kwargs[it.key()] = it.value();
  }
  for (const char* name : {"tools", "documents"}) {
    if (const OJ* t = Field(body, name)) {
      if (!t->is_array()) return WrongType(name, "an array", *t);
      r->template_kwargs[name] = *t;
    }
  }
  // tools: [{"type": "function", "function": {"name", "description"?, "parameters"?}}]
  const OJ* tools = Field(body, "tools");
  if (tools) {
    for (size_t i = 0; i < tools->size(); ++i) {
      const OJ& t = (*tools)[i];
      const std::string at = "tools[" + std::to_string(i) + "]";
      const OJ* fn = t.is_object() ? Field(t, "function") : nullptr;
      const OJ* type = t.is_object() ? Field(t, "type") : nullptr;
      if (!fn || !fn->is_object() || (type && (!type->is_string() || *type != "function"))) {
        return BadRequest(at + ": expected {\"type\": \"function\", \"function\": {...}}", "tools");
      }
      const OJ* name = Field(*fn, "name");
      if (!name || !name->is_string() || name->get<std::string>().empty()) {
        return BadRequest(at + ".function.name: expected a non-empty string", "tools");
      }
      if (const OJ* params = Field(*fn, "parameters")) {
        if (!params->is_object()) {
          return WrongType(at + ".function.parameters", "a JSON Schema object", *params);
        }
      }
    }
    r->tools = *tools;
  }
  const bool have_tools = tools && !tools->empty();
  const OJ* choice = Field(body, "tool_choice");
  // vLLM: tool_choice defaults to "auto" when tools are given, else "none".
  r->tool_choice = have_tools ? ToolChoice::kAuto : ToolChoice::kNone;
  if (choice) {
    if (choice->is_string()) {
      const std::string c = choice->get<std::string>();
      if (c == "none") {
        r->tool_choice = ToolChoice::kNone;
      } else if (c == "auto") {
        r->tool_choice = ToolChoice::kAuto;
      } else if (c == "required") {
        r->tool_choice = ToolChoice::kRequired;
      } else {
        return BadRequest("tool_choice: expected 'none', 'auto', 'required' or a named function",
                          "tool_choice");
      }
    } else if (choice->is_object()) {
      const OJ* fn = Field(*choice, "function");
      const OJ* name = fn && fn->is_object() ? Field(*fn, "name") : nullptr;
      if (!name || !name->is_string()) {
        return BadRequest(
            "tool_choice: a named tool choice is {\"type\": \"function\", \"function\": "
            "{\"name\": ...}}",
            "tool_choice");
      }
      r->tool_choice = ToolChoice::kNamed;
      r->tool_name = name->get<std::string>();
    } else {
      return WrongType("tool_choice", "a string or an object", *choice);
    }
    if (r->tool_choice != ToolChoice::kNone && !have_tools) {
      return BadRequest("tool_choice: needs a non-empty tools array", "tool_choice");
    }
  }
  if (r->tool_choice == ToolChoice::kRequired || r->tool_choice == ToolChoice::kNamed) {
    if (r->grammar.active()) {
      return BadRequest(
          "tool_choice: a forced tool call cannot be combined with " + r->grammar.field,
          "tool_choice");
    }
    // The call is forced by a JSON Schema (as vLLM does): named -> the function's parameters;
    // required -> a non-empty array of {"name", "parameters"} over the tools.
    auto params_of = [](const OJ& fn) {
      const OJ* p = Field(fn, "parameters");
      return p ? *p : OJ{{"type", "object"}};
    };
    OJ schema;
    if (r->tool_choice == ToolChoice::kNamed) {
      const OJ* found = nullptr;
      for (const OJ& t : r->tools) {
        if (t["function"]["name"] == r->tool_name) found = &t["function"];
      }
      if (!found) {
        return BadRequest("tool_choice: function '" + r->tool_name + "' is not among the tools",
                          "tool_choice");
      }
      schema = params_of(*found);
    } else {
      OJ any = OJ::array();
      for (const OJ& t : r->tools) {
        const OJ& fn = t["function"];
        any.push_back({{"type", "object"},
                       {"properties",
                        {{"name", {{"type", "string"}, {"enum", {fn["name"]}}}},
                         {"parameters", params_of(fn)}}},
                       {"required", {"name", "parameters"}}});
      }
      schema = {{"type", "array"}, {"minItems", 1}, {"items", {{"anyOf", any}}}};
    }
    r->grammar.kind = GrammarSpec::Kind::kJsonSchema;
    r->grammar.source = schema.dump();
    r->grammar.field = "tool_choice";
  }
  if (Status st = r->params.Validate(); !st.ok()) return ValidationError(st, r->kind);
  return std::nullopt;
}

ApiError ValidationError(const Status& status, ApiKind kind) {
  const std::string& m = status.message();
  size_t end = m.find_first_of(" [");
  std::string param = m.substr(0, end);
  if (kind == ApiKind::kChat && param == "logprobs") param = "top_logprobs";
  return BadRequest(m, param);
}

}  // namespace c8
