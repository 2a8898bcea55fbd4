// Jinja lexer: template source -> token stream, with jinja2's whitespace
// rules as transformers configures them (trim_blocks=True, lstrip_blocks=True,
// keep_trailing_newline=False): "{%-"/"-%}" strip, "{%+"/"+%}" keep, the
// newline after a block or comment tag is dropped, and spaces before a block
// or comment tag on its own line are dropped. {% raw %} is handled here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace c8::jinja {

enum class TokType {
  kData,        // literal template text
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,  // value already unescaped
  kInt,
  kFloat,
  kOp,  // operators and punctuation: + - * / // % ** ~ == != < > <= >= = . , : | ( ) [ ] { }
  kEof,
};

struct Token {
  TokType type = TokType::kEof;
  std::string value;  // text, name, unescaped string, or operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
};

// Tokenizes `source`. Throws JinjaError (jinja_value.h) on lexical errors
// (unterminated tag/comment/string, unexpected character, unbalanced brackets).
std::vector<Token> Tokenize(const std::string& source);

}  // namespace c8::jinja
