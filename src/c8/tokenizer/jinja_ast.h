// Syntax tree of a parsed Jinja template (expressions and statements).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "c8/tokenizer/jinja_value.h"

namespace c8::jinja {

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

struct Expr {
  enum class Kind {
    kConst,     // value
    kName,      // name
    kList,      // args
    kTuple,     // args
    kDict,      // args = k0, v0, k1, v1, ...
    kGetAttr,   // args[0].name
    kGetItem,   // args[0][args[1]]
    kSlice,     // args[0][args[1]:args[2]:args[3]] (null = omitted)
    kCall,      // args[0](args[1..], kwargs)
    kFilter,    // args[0] | name(args[1..], kwargs); args[0] null inside {% filter %}
    kTest,      // args[0] is [not] name(args[1..], kwargs)
    kUnary,     // name in {"-", "+", "not"}; args[0]
    kBinary,    // name in {"+","-","*","/","//","%","**","~","and","or"}; args[0], args[1]
    kCompare,   // args[0] ops[i] args[i+1] (chained); ops: == != < <= > >= in notin
    kCondExpr,  // args[1] if args[0] else args[2] (args[2] null = undefined)
  };
  Kind kind = Kind::kConst;
  int line = 0;
  Value value;
  std::string name;
  bool negated = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
};

struct Stmt;
using StmtPtr = std::shared_ptr<const Stmt>;
using Body = std::vector<StmtPtr>;

// Assignment target of set/for: a name, a tuple of names, or namespace.attr.
struct Target {
  std::vector<std::string> names;
  bool is_tuple = false;
  std::string attr;  // non-empty: names[0].attr (namespace assignment)
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null = required
};

struct Stmt {
  enum class Kind {
    kData,         // text
    kOutput,       // {{ expr }}
    kIf,           // branches (cond, body)...; else_body
    kFor,          // target in expr [if cond]; body; else_body
    kSet,          // target = expr
    kSetBlock,     // {% set target %}body{% endset %}
    kMacro,        // name(params) body
    kFilterBlock,  // {% filter expr %} body: expr is a kFilter chain with null input
    kBreak,
    kContinue,
    kScope,  // {% generation %} body: rendered as is
  };
  Kind kind = Kind::kData;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr cond;
  Target target;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<MacroParam> params;
};

}  // namespace c8::jinja
