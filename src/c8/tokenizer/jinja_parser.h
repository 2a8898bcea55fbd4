// Jinja parser: tokens -> statement tree, following jinja2's grammar and
// operator precedence (condexpr < or < and < not < compare < + - < ~ < * / // %
// < ** < unary - + < postfix . [] () < | filters and `is` tests).
#pragma once

#include <string>
#include <vector>

#include "c8/tokenizer/jinja_ast.h"
#include "c8/tokenizer/jinja_lexer.h"

namespace c8::jinja {

// Parses a token stream into the template body. Throws JinjaError on syntax
// errors, unknown tags, and unknown filters or tests (checked at parse time,
// as jinja2 does at compile time).
Body Parse(const std::vector<Token>& tokens);

}  // namespace c8::jinja
