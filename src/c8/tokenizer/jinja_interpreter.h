// A small Jinja2 interpreter for chat templates: parses a template once and
// renders it against a context of values, with jinja2's semantics as
// transformers configures them (sandboxed, trim_blocks, lstrip_blocks,
// loopcontrols). Supported: {{ }}, {% %}, {# #}, whitespace control,
// if/elif/else, for (loop.*, `if` filter, else, break/continue), set
// (names, tuples, namespace attributes, block set), macros, filter blocks,
// {% generation %}, {% raw %}; see jinja_builtins.h for filters and tests.
// Not supported: extends/block/include/import, call blocks, recursive loops.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "c8/tokenizer/jinja_ast.h"
#include "c8/tokenizer/jinja_value.h"
#include "c8/util/status.h"

namespace c8::jinja {

class Template {
 public:
  // Parses `source`; syntax errors come back as "line N: <message>".
  static Result<Template> Parse(const std::string& source);

  // Renders with the given top-level variables (they shadow the globals
  // range/namespace/dict/raise_exception/strftime_now). Errors (undefined
  // values used, type errors, raise_exception(msg)) come back as values.
  Result<std::string> Render(const std::vector<std::pair<std::string, Value>>& context) const;

 private:
  std::shared_ptr<const Body> body_;
};

}  // namespace c8::jinja
