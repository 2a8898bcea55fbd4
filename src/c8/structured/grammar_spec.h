// What a request asks its output to match (structured output), as parsed from the OpenAI /
// vLLM request fields: response_format json_object / json_schema, guided_json / guided_regex /
// guided_choice / guided_grammar, structured_outputs {json, regex, choice, grammar,
// json_object}, and the forced tool calls of tool_choice "required" / named. Plain data: the
// grammar engine (structured_output.h) compiles it.
#pragma once

#include <string>
#include <vector>

namespace c8 {

struct GrammarSpec {
  enum class Kind {
    kNone,
    kJsonObject,  // any JSON object (response_format json_object)
    kJsonSchema,  // `source`: the JSON Schema text
    kRegex,       // `source`: the regular expression
    kChoice,      // one of `choices`, verbatim
    kEbnf,        // `source`: an EBNF grammar (xgrammar / GBNF dialect) with a `root` rule
  };
  Kind kind = Kind::kNone;
  std::string source;
  std::vector<std::string> choices;
  std::string field;  // the request field it came from, for error messages

  bool active() const { return kind != Kind::kNone; }
};

}  // namespace c8
