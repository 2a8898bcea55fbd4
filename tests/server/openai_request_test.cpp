// Request parsing and validation: every field, wrong types, ranges, OpenAI error shape.
#include "c8/server/openai_request.h"

#include <gtest/gtest.h>

#include <string>

namespace c8 {
namespace {

using OJ = nlohmann::ordered_json;

std::optional<ApiError> Cmpl(const std::string& body, OpenAiRequest* r) {
  OJ j;
  if (auto e = ParseJsonBody(body, &j)) return e;
  return ParseCompletionRequest(j, r);
}

std::optional<ApiError> Chat(const std::string& body, OpenAiRequest* r) {
  OJ j;
  if (auto e = ParseJsonBody(body, &j)) return e;
  return ParseChatRequest(j, r);
}

TEST(OpenAiRequest, CompletionAllFields) {
  OpenAiRequest r;
  auto e = Cmpl(R"({"model":"m","prompt":"hi","max_tokens":5,"temperature":0.5,"top_p":0.9,
    "top_k":40,"min_p":0.1,"repetition_penalty":1.1,"frequency_penalty":0.5,
    "presence_penalty":-0.5,"seed":42,"n":3,"stop":["a","b"],"stop_token_ids":[7],
    "ignore_eos":true,"min_tokens":2,"include_stop_str_in_output":true,"logprobs":4,
    "stream":true,"stream_options":{"include_usage":true},"echo":false,"user":"ignored",
    "some_unknown_field":{"x":1}})",
                &r);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(r.kind, ApiKind::kCompletion);
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_TRUE(r.prompts[0].is_text);
  EXPECT_EQ(r.prompts[0].text, "hi");
  const SamplingParams& p = r.params;
  EXPECT_EQ(*p.max_tokens, 5);
  EXPECT_TRUE(r.max_tokens_set);
  EXPECT_DOUBLE_EQ(p.temperature, 0.5);
  EXPECT_DOUBLE_EQ(p.top_p, 0.9);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_DOUBLE_EQ(p.min_p, 0.1);
  EXPECT_DOUBLE_EQ(p.repetition_penalty, 1.1);
  EXPECT_DOUBLE_EQ(p.frequency_penalty, 0.5);
  EXPECT_DOUBLE_EQ(p.presence_penalty, -0.5);
  EXPECT_EQ(*p.seed, 42u);
  EXPECT_EQ(p.n, 3);
  EXPECT_EQ(p.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p.stop_token_ids, (std::vector<int32_t>{7}));
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_EQ(p.min_tokens, 2);
  EXPECT_TRUE(p.include_stop_str_in_output);
  EXPECT_EQ(*p.logprobs, 4);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.explicit_fields,
            (std::vector<std::string>{"temperature", "top_p", "min_p", "repetition_penalty",
                                      "frequency_penalty", "presence_penalty", "top_k"}));
}

TEST(OpenAiRequest, CompletionDefaultsAndNulls) {
  OpenAiRequest r;
  auto e = Cmpl(R"({"prompt":"hi","temperature":null,"max_tokens":null,"stop":null})", &r);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(*r.params.max_tokens, 16);  // OpenAI / vLLM completions default
  EXPECT_FALSE(r.max_tokens_set);
  EXPECT_TRUE(r.explicit_fields.empty());
  EXPECT_FALSE(r.params.logprobs.has_value());
  EXPECT_FALSE(r.stream);
}

TEST(OpenAiRequest, PromptForms) {
  OpenAiRequest a, b, c;
  ASSERT_FALSE(Cmpl(R"({"prompt":["x","y"]})", &a));
  ASSERT_EQ(a.prompts.size(), 2u);
  EXPECT_EQ(a.prompts[1].text, "y");
  ASSERT_FALSE(Cmpl(R"({"prompt":[1,2,3.0]})", &b));
  ASSERT_EQ(b.prompts.size(), 1u);
  EXPECT_FALSE(b.prompts[0].is_text);
  EXPECT_EQ(b.prompts[0].ids, (std::vector<int32_t>{1, 2, 3}));
  ASSERT_FALSE(Cmpl(R"({"prompt":[[1,2],[3]]})", &c));
  ASSERT_EQ(c.prompts.size(), 2u);
  EXPECT_EQ(c.prompts[1].ids, (std::vector<int32_t>{3}));
}

struct BadCase {
  const char* body;
  const char* param;
};

TEST(OpenAiRequest, CompletionErrorsNameTheParam) {
  const BadCase cases[] = {
      {R"({})", "prompt"},
      {R"({"prompt":5})", "prompt"},
      {R"({"prompt":[]})", "prompt"},
      {R"({"prompt":["a",1]})", "prompt[1]"},
      {R"({"prompt":[1,-2]})", "prompt"},
      {R"({"prompt":[1,2.5]})", "prompt"},
      {R"({"prompt":[[1],[]]})", "prompt"},
      {R"({"prompt":[{"a":1}]})", "prompt"},
      {R"({"prompt":"x","model":3})", "model"},
      {R"({"prompt":"x","max_tokens":"3"})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":0})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":-1})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":1e12})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":3.5})", "max_tokens"},
      {R"({"prompt":"x","temperature":-1})", "temperature"},
      {R"({"prompt":"x","temperature":"hot"})", "temperature"},
      {R"({"prompt":"x","temperature":true})", "temperature"},
      {R"({"prompt":"x","top_p":0})", "top_p"},
      {R"({"prompt":"x","top_p":2})", "top_p"},
      {R"({"prompt":"x","top_k":-2})", "top_k"},
      {R"({"prompt":"x","top_k":1.5})", "top_k"},
      {R"({"prompt":"x","min_p":1.5})", "min_p"},
      {R"({"prompt":"x","repetition_penalty":0})", "repetition_penalty"},
      {R"({"prompt":"x","frequency_penalty":2.5})", "frequency_penalty"},
      {R"({"prompt":"x","presence_penalty":-2.5})", "presence_penalty"},
      {R"({"prompt":"x","seed":"1"})", "seed"},
      {R"({"prompt":"x","n":0})", "n"},
      {R"({"prompt":"x","n":1000})", "n"},
      {R"({"prompt":"x","n":"2"})", "n"},
      {R"({"prompt":"x","stop":1})", "stop"},
      {R"({"prompt":"x","stop":["a",1]})", "stop[1]"},
      {R"({"prompt":"x","stop":[""]})", "stop"},
      {R"({"prompt":"x","stop_token_ids":"1"})", "stop_token_ids"},
      {R"({"prompt":"x","stop_token_ids":[-1]})", "stop_token_ids"},
      {R"({"prompt":"x","ignore_eos":1})", "ignore_eos"},
      {R"({"prompt":"x","min_tokens":-1})", "min_tokens"},
      {R"({"prompt":"x","max_tokens":2,"min_tokens":3})", "min_tokens"},
      {R"({"prompt":"x","logprobs":21})", "logprobs"},
      {R"({"prompt":"x","logprobs":true})", "logprobs"},
      {R"({"prompt":"x","echo":true,"logprobs":1})", "echo"},
      {R"({"prompt":"x","stream":"yes"})", "stream"},
      {R"({"prompt":"x","stream_options":[]})", "stream_options"},
      {R"({"prompt":"x","stream_options":{"include_usage":1}})", "stream_options.include_usage"},
      {R"({"prompt":"x","include_stop_str_in_output":"no"})", "include_stop_str_in_output"},
  };
  for (const BadCase& c : cases) {
    OpenAiRequest r;
    auto e = Cmpl(c.body, &r);
    ASSERT_TRUE(e) << c.body;
    EXPECT_EQ(e->status, 400) << c.body;
    EXPECT_EQ(e->param, c.param) << c.body << " -> " << e->message;
    EXPECT_FALSE(e->message.empty());
    const nlohmann::json j = e->ToJson();
    EXPECT_EQ(j["error"]["param"], c.param);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(j["error"]["code"].is_null());
  }
}

TEST(OpenAiRequest, ValidateMessageIsPassedThrough) {
  OpenAiRequest r;
  auto e = Cmpl(R"({"prompt":"x","temperature":3})", &r);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message, "temperature must be in [0, 2], got 3");
}

TEST(OpenAiRequest, JsonBodyErrors) {
  OJ j;
  EXPECT_TRUE(ParseJsonBody("", &j));
  EXPECT_TRUE(ParseJsonBody("{", &j));
  EXPECT_TRUE(ParseJsonBody(R"({"prompt": "hi", "max_tok)", &j));
  EXPECT_TRUE(ParseJsonBody("[1]", &j));
  EXPECT_TRUE(ParseJsonBody("\"str\"", &j));
  EXPECT_TRUE(ParseJsonBody("{\"prompt\": \"\xff\xfe\"}", &j));  // invalid UTF-8
  EXPECT_TRUE(ParseJsonBody(R"({"prompt": "\udc80"})", &j));     // lone surrogate
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  auto e = ParseJsonBody(deep, &j);
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("nested"), std::string::npos);
  // Brackets inside strings do not count as nesting.
  EXPECT_FALSE(ParseJsonBody("{\"prompt\": \"" + std::string(1000, '[') + "\\\"\"}", &j));
  EXPECT_FALSE(ParseJsonBody(R"({"a": {"b": [1, {"c": 2}]}})", &j));
}

TEST(OpenAiRequest, ChatFields) {
  OpenAiRequest r;
  auto e = Chat(R"({"model":"m","messages":[
      {"role":"system","content":"S"},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
      {"role":"assistant","content":null,"tool_calls":[]}],
    "max_tokens":3,"max_completion_tokens":7,"logprobs":true,"top_logprobs":2,
    "chat_template_kwargs":{"enable_thinking":false},"tools":[{"type":"function","function":{"name":"f"}}],
    "tool_choice":"none","add_generation_prompt":false,"return_token_ids":true})",
                &r);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(r.kind, ApiKind::kChat);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1]["content"], "a\nb");
  EXPECT_TRUE(r.messages[2]["content"].is_null());
  EXPECT_TRUE(r.messages[2].contains("tool_calls"));
  EXPECT_EQ(*r.params.max_tokens, 7);  // max_completion_tokens wins
  EXPECT_TRUE(r.chat_logprobs);
  EXPECT_EQ(*r.params.logprobs, 2);
  EXPECT_EQ(r.template_kwargs["enable_thinking"], false);
  EXPECT_TRUE(r.template_kwargs["tools"].is_array());
  EXPECT_FALSE(r.add_generation_prompt);
  EXPECT_TRUE(r.return_token_ids);
  EXPECT_EQ(r.tool_choice, ToolChoice::kNone);
  EXPECT_FALSE(r.grammar.active());

  OpenAiRequest d;
  ASSERT_FALSE(Chat(R"({"messages":[{"role":"user","content":"hi"}]})", &d));
  EXPECT_FALSE(d.params.max_tokens.has_value());  // chat: up to the context
  EXPECT_FALSE(d.params.logprobs.has_value());
  OpenAiRequest l;
  ASSERT_FALSE(Chat(R"({"messages":[{"role":"user","content":"hi"}],"logprobs":true})", &l));
  EXPECT_EQ(*l.params.logprobs, 0);
}

TEST(OpenAiRequest, ChatErrors) {
  const BadCase cases[] = {
      {R"({})", "messages"},
      {R"({"messages":"hi"})", "messages"},
      {R"({"messages":[]})", "messages"},
      {R"({"messages":["hi"]})", "messages[0]"},
      {R"({"messages":[{"content":"hi"}]})", "messages"},
      {R"({"messages":[{"role":5,"content":"hi"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"wizard","content":"hi"}]})", "messages"},
      {R"({"messages":[{"role":"user","content":5}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "messages"},
      {R"({"messages":[{"role":"user","content":["x"]}]})", "messages[0].content[0]"},
      {R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})", "messages"},
      {R"({"messages":[{"role":"user","content":"x"}],"logprobs":"yes"})", "logprobs"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":3})", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":30})",
       "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":0})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"chat_template_kwargs":[]})",
       "chat_template_kwargs"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":{}})", "tools"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})", "tools"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"function":{"name":""}}]})",
       "tools"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"function":{"name":"f",
          "parameters":[]}}]})",
       "tools[0].function.parameters"},
      {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"auto"})", "tool_choice"},
      {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"maybe"})", "tool_choice"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"function":{"name":"f"}}],
          "tool_choice":{"type":"function","function":{"name":"g"}}})",
       "tool_choice"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"function":{"name":"f"}}],
          "tool_choice":"required","guided_regex":"a"})",
       "tool_choice"},
      // Structured output that c8 does not do: refused by name, never silently ignored.
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"structural_tag"}})",
       "response_format"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}})",
       "response_format"},
      {R"({"messages":[{"role":"user","content":"x"}],"guided_json":"{nope"})", "guided_json"},
      {R"({"messages":[{"role":"user","content":"x"}],"guided_choice":[]})", "guided_choice"},
      {R"({"messages":[{"role":"user","content":"x"}],"guided_choice":["a",1]})", "guided_choice"},
      {R"({"messages":[{"role":"user","content":"x"}],"guided_regex":"a","guided_choice":["a"]})",
       "guided_choice"},
      {R"({"messages":[{"role":"user","content":"x"}],"guided_decoding_backend":"outlines"})",
       "guided_decoding_backend"},
      {R"({"messages":[{"role":"user","content":"x"}],"structured_outputs":{"structural_tag":"x"}})",
       "structured_outputs.structural_tag"},
      {R"({"messages":[{"role":"user","content":"x"}],"return_token_ids":1})", "return_token_ids"},
  };
  for (const BadCase& c : cases) {
    OpenAiRequest r;
    auto e = Chat(c.body, &r);
    ASSERT_TRUE(e) << c.body;
    EXPECT_EQ(e->status, 400);
    EXPECT_EQ(e->param, c.param) << c.body << " -> " << e->message;
  }
}

TEST(OpenAiRequest, StructuredOutputFields) {
  auto parse = [](const std::string& extra) {
    OpenAiRequest r;
    auto e = Chat(R"({"messages":[{"role":"user","content":"x"}])" + extra + "}", &r);
    EXPECT_FALSE(e) << extra << " -> " << (e ? e->message : "");
    return r;
  };
  OpenAiRequest a = parse(R"(,"response_format":{"type":"json_object"})");
  EXPECT_EQ(a.grammar.kind, GrammarSpec::Kind::kJsonObject);
  OpenAiRequest b = parse(
      R"(,"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"object","properties":{"a":{"type":"integer"}}}}})");
  EXPECT_EQ(b.grammar.kind, GrammarSpec::Kind::kJsonSchema);
  EXPECT_EQ(nlohmann::json::parse(b.grammar.source)["properties"]["a"]["type"], "integer");
  EXPECT_EQ(b.grammar.field, "response_format.json_schema");
  OpenAiRequest c = parse(R"(,"guided_json":"{\"type\": \"string\"}")");
  EXPECT_EQ(c.grammar.kind, GrammarSpec::Kind::kJsonSchema);
  EXPECT_EQ(c.grammar.source, R"({"type":"string"})");
  OpenAiRequest d = parse(R"(,"guided_choice":["x","y"])");
  EXPECT_EQ(d.grammar.kind, GrammarSpec::Kind::kChoice);
  EXPECT_EQ(d.grammar.choices, (std::vector<std::string>{"x", "y"}));
  OpenAiRequest e =
      parse(R"(,"structured_outputs":{"regex":"[a-z]+"},"guided_decoding_backend":"xgrammar")");
  EXPECT_EQ(e.grammar.kind, GrammarSpec::Kind::kRegex);
  EXPECT_EQ(e.grammar.field, "structured_outputs.regex");
  OpenAiRequest f = parse(R"(,"guided_grammar":"root ::= \"a\"")");
  EXPECT_EQ(f.grammar.kind, GrammarSpec::Kind::kEbnf);
  OpenAiRequest g = parse(R"(,"response_format":{"type":"text"})");
  EXPECT_FALSE(g.grammar.active());
}

TEST(OpenAiRequest, ToolChoices) {
  const std::string tools =
      R"(,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},{"type":"function","function":{"name":"now"}}])";
  auto parse = [&](const std::string& extra) {
    OpenAiRequest r;
    auto e = Chat(R"({"messages":[{"role":"user","content":"x"}])" + tools + extra + "}", &r);
    EXPECT_FALSE(e) << extra << " -> " << (e ? e->message : "");
    return r;
  };
  EXPECT_EQ(parse("").tool_choice, ToolChoice::kAuto);  // vLLM: auto when tools are given
  EXPECT_FALSE(parse("").grammar.active());
  OpenAiRequest named =
      parse(R"(,"tool_choice":{"type":"function","function":{"name":"get_weather"}})");
  EXPECT_EQ(named.tool_choice, ToolChoice::kNamed);
  EXPECT_EQ(named.tool_name, "get_weather");
  EXPECT_EQ(named.grammar.kind, GrammarSpec::Kind::kJsonSchema);
  EXPECT_EQ(nlohmann::json::parse(named.grammar.source)["required"][0], "city");
  OpenAiRequest req = parse(R"(,"tool_choice":"required")");
  EXPECT_EQ(req.tool_choice, ToolChoice::kRequired);
  const nlohmann::json s = nlohmann::json::parse(req.grammar.source);
  EXPECT_EQ(s["type"], "array");
  EXPECT_EQ(s["minItems"], 1);
  ASSERT_EQ(s["items"]["anyOf"].size(), 2u);
  EXPECT_EQ(s["items"]["anyOf"][1]["properties"]["name"]["enum"][0], "now");
  EXPECT_EQ(s["items"]["anyOf"][1]["properties"]["parameters"]["type"], "object");
  EXPECT_EQ(parse(R"(,"tool_choice":"none")").tool_choice, ToolChoice::kNone);
}

}  // namespace
}  // namespace c8
