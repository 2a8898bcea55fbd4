#include "c8/tokenizer/jinja_parser.h"

#include <set>

#include "c8/tokenizer/jinja_builtins.h"

namespace c8::jinja {
namespace {

constexpr int kMaxDepth = 200;  // nesting limit for expressions and blocks

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : toks_(tokens) {}

  Body ParseTemplate() {
    std::string end;
    Body body = Subparse({}, &end);
    return body;
  }

 private:
  using Mut = std::shared_ptr<Expr>;

  const Token& Cur() const { return toks_[pos_]; }
  const Token& Peek(size_t n = 1) const {
    return toks_[pos_ + n < toks_.size() ? pos_ + n : toks_.size() - 1];
  }
  void Next() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool IsOp(const char* op) const { return Cur().type == TokType::kOp && Cur().value == op; }
  bool IsName(const char* n) const { return Cur().type == TokType::kName && Cur().value == n; }
  bool SkipOp(const char* op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(const char* n) {
    if (!IsName(n)) return false;
    Next();
    return true;
  }
  static std::string Describe(const Token& t) {
    switch (t.type) {
      case TokType::kEof:
        return "end of template";
      case TokType::kBlockEnd:
        return "end of statement block";
      case TokType::kVarEnd:
        return "end of print statement";
      case TokType::kData:
        return "template data";
      case TokType::kString:
        return "string";
      case TokType::kInt:
      case TokType::kFloat:
        return "number " + t.value;
      default:
        return "'" + t.value + "'";
    }
  }
  [[noreturn]] void Fail(const std::string& msg) const {
    throw JinjaError("line " + std::to_string(Cur().line) + ": " + msg);
  }
  void ExpectOp(const char* op) {
    if (!SkipOp(op)) Fail(std::string("expected '") + op + "', got " + Describe(Cur()));
  }
  std::string ExpectName() {
    if (Cur().type != TokType::kName) Fail("expected a name, got " + Describe(Cur()));
    std::string n = Cur().value;
    Next();
    return n;
  }
  void ExpectBlockEnd() {
    if (Cur().type != TokType::kBlockEnd)
      Fail("expected end of statement block, got " + Describe(Cur()));
    Next();
  }

  Mut Make(Expr::Kind kind) {
    auto e = std::make_shared<Expr>();
    e->kind = kind;
    e->line = Cur().line;
    return e;
  }

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p(p) {
      if (++p->depth_ > kMaxDepth) p->Fail("template is nested too deeply");
    }
    ~DepthGuard() { --p->depth_; }
    Parser* p;
  };

  // ---- statements ----

  // Parses until "{% <name>" with name in `ends` (stream left at the name) or EOF.
  Body Subparse(const std::set<std::string>& ends, std::string* end_found) {
    DepthGuard g(this);
    Body body;
    while (true) {
      const Token& t = Cur();
      if (t.type == TokType::kEof) {
        if (!ends.empty()) {
          std::string list;
          for (const auto& e : ends) list += (list.empty() ? "'" : " or '") + e + "'";
          Fail("unexpected end of template, expected " + list);
        }
        *end_found = "";
        return body;
      }
      if (t.type == TokType::kData) {
        auto s = std::make_shared<Stmt>();
        s->kind = Stmt::Kind::kData;
        s->line = t.line;
        s->text = t.value;
        body.push_back(s);
        Next();
      } else if (t.type == TokType::kVarBegin) {
        Next();
        auto s = std::make_shared<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->line = t.line;
        s->expr = ParseTuple(true, {});
        if (Cur().type != TokType::kVarEnd)
          Fail("expected end of print statement, got " + Describe(Cur()));
        Next();
        body.push_back(s);
      } else if (t.type == TokType::kBlockBegin) {
        Next();
        if (Cur().type != TokType::kName) Fail("tag name expected, got " + Describe(Cur()));
        std::string name = Cur().value;
        if (ends.count(name)) {
          *end_found = name;
          return body;
        }
        body.push_back(ParseStatement());
      } else {
        Fail("unexpected " + Describe(t));
      }
    }
  }

  StmtPtr ParseStatement() {
    std::string name = Cur().value;
    int line = Cur().line;
    auto s = std::make_shared<Stmt>();
    s->line = line;
    if (name == "if") return ParseIf();
    if (name == "for") return ParseFor();
    if (name == "set") return ParseSet();
    if (name == "macro") return ParseMacro();
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) Fail("'" + name + "' outside loop");
      Next();
      ExpectBlockEnd();
      s->kind = name == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      return s;
    }
    if (name == "filter") {
      Next();
      s->kind = Stmt::Kind::kFilterBlock;
      s->expr = ParseFilterChain(nullptr, /*first_without_bar=*/true);
      ExpectBlockEnd();
      std::string end;
      s->body = Subparse({"endfilter"}, &end);
      Next();
      ExpectBlockEnd();
      return s;
    }
    if (name == "generation") {
      Next();
      ExpectBlockEnd();
      s->kind = Stmt::Kind::kScope;
      std::string end;
      s->body = Subparse({"endgeneration"}, &end);
      Next();
      ExpectBlockEnd();
      return s;
    }
    Fail("Encountered unknown tag '" + name + "'.");
  }

  StmtPtr ParseIf() {
    auto s = std::make_shared<Stmt>();
    s->kind = Stmt::Kind::kIf;
    s->line = Cur().line;
    Next();  // if
    while (true) {
      ExprPtr cond = ParseTuple(false, {});
      ExpectBlockEnd();
      std::string end;
      Body body = Subparse({"elif", "else", "endif"}, &end);
      s->branches.emplace_back(cond, std::move(body));
      Next();  // the end tag name
      if (end == "elif") continue;
      if (end == "else") {
        ExpectBlockEnd();
        s->else_body = Subparse({"endif"}, &end);
        Next();
      }
      ExpectBlockEnd();
      return s;
    }
  }

  Target ParseTarget(bool with_namespace) {
    Target t;
    std::string first = ExpectName();
    if (with_namespace && IsOp(".")) {
      Next();
      t.names.push_back(first);
      t.attr = ExpectName();
      return t;
    }
    t.names.push_back(first);
    if (IsOp(",")) {
      t.is_tuple = true;
      while (SkipOp(",")) {
        if (Cur().type != TokType::kName) break;
        t.names.push_back(ExpectName());
      }
    }
    return t;
  }

  StmtPtr ParseFor() {
    auto s = std::make_shared<Stmt>();
    s->kind = Stmt::Kind::kFor;
    s->line = Cur().line;
    Next();  // for
    if (IsOp("(")) {
      Next();
      s->target = ParseTarget(false);
      s->target.is_tuple = true;
      ExpectOp(")");
    } else {
      s->target = ParseTarget(false);
    }
    if (!SkipName("in")) Fail("expected 'in', got " + Describe(Cur()));
    s->expr = ParseTuple(false, {"recursive"});
    if (SkipName("if")) s->cond = ParseExpression(true);
    if (IsName("recursive")) Fail("recursive for loops are not supported");
    ExpectBlockEnd();
    ++loop_depth_;
    std::string end;
    s->body = Subparse({"endfor", "else"}, &end);
    --loop_depth_;
    Next();
    if (end == "else") {
      ExpectBlockEnd();
      int saved = loop_depth_;
      loop_depth_ = 0;
      s->else_body = Subparse({"endfor"}, &end);
      loop_depth_ = saved;
      Next();
    }
    ExpectBlockEnd();
    return s;
  }

  StmtPtr ParseSet() {
    auto s = std::make_shared<Stmt>();
    s->line = Cur().line;
    Next();  // set
    s->target = ParseTarget(true);
    if (SkipOp("=")) {
      s->kind = Stmt::Kind::kSet;
      s->expr = ParseTuple(true, {});
      ExpectBlockEnd();
      return s;
    }
    if (s->target.is_tuple || !s->target.attr.empty()) Fail("block set needs a single name");
    s->kind = Stmt::Kind::kSetBlock;
    if (IsOp("|")) s->expr = ParseFilterChain(nullptr, false);
    ExpectBlockEnd();
    std::string end;
    s->body = Subparse({"endset"}, &end);
    Next();
    ExpectBlockEnd();
    return s;
  }

  StmtPtr ParseMacro() {
    auto s = std::make_shared<Stmt>();
    s->kind = Stmt::Kind::kMacro;
    s->line = Cur().line;
    Next();  // macro
    s->text = ExpectName();
    ExpectOp("(");
    while (!IsOp(")")) {
      if (!s->params.empty()) ExpectOp(",");
      if (IsOp(")")) break;
      MacroParam p;
      p.name = ExpectName();
      if (SkipOp("=")) p.default_value = ParseExpression(true);
      s->params.push_back(std::move(p));
    }
    ExpectOp(")");
    ExpectBlockEnd();
    int saved = loop_depth_;
    loop_depth_ = 0;
    std::string end;
    s->body = Subparse({"endmacro"}, &end);
    loop_depth_ = saved;
    Next();
    if (Cur().type == TokType::kName) Next();  // optional macro name after endmacro
    ExpectBlockEnd();
    return s;
  }

  // ---- expressions ----

  // `a, b` tuples (without parentheses) or a single expression.
  ExprPtr ParseTuple(bool with_condexpr, const std::set<std::string>& extra_end) {
    Mut tuple = Make(Expr::Kind::kTuple);
    bool is_tuple = false;
    while (true) {
      if (!tuple->args.empty()) {
        if (!SkipOp(",")) break;
        is_tuple = true;
      }
      if (TupleEnds(extra_end)) break;
      tuple->args.push_back(ParseExpression(with_condexpr));
      if (!IsOp(",")) break;
    }
    if (!is_tuple) {
      if (tuple->args.empty()) Fail("Expected an expression, got " + Describe(Cur()));
      return tuple->args[0];
    }
    return tuple;
  }

  bool TupleEnds(const std::set<std::string>& extra_end) const {
    const Token& t = Cur();
    if (t.type == TokType::kVarEnd || t.type == TokType::kBlockEnd || t.type == TokType::kEof)
      return true;
    if (t.type == TokType::kOp && (t.value == ")" || t.value == "]" || t.value == "}")) return true;
    if (t.type == TokType::kName && extra_end.count(t.value)) return true;
    return false;
  }

  ExprPtr ParseExpression(bool with_condexpr) {
    DepthGuard g(this);
    if (!with_condexpr) return ParseOr();
    ExprPtr expr = ParseOr();
    while (IsName("if")) {
      Next();
      Mut c = Make(Expr::Kind::kCondExpr);
      ExprPtr test = ParseOr();
      ExprPtr else_expr;
      if (SkipName("else")) else_expr = ParseExpression(true);
      c->args = {test, expr, else_expr};
      expr = c;
    }
    return expr;
  }

  ExprPtr Binary(const std::string& op, ExprPtr l, ExprPtr r) {
    Mut b = Make(Expr::Kind::kBinary);
    b->name = op;
    b->args = {std::move(l), std::move(r)};
    return b;
  }

  ExprPtr ParseOr() {
    ExprPtr l = ParseAnd();
    while (SkipName("or")) l = Binary("or", l, ParseAnd());
    return l;
  }
  ExprPtr ParseAnd() {
    ExprPtr l = ParseNot();
    while (SkipName("and")) l = Binary("and", l, ParseNot());
    return l;
  }
  ExprPtr ParseNot() {
    if (IsName("not")) {
      Mut u = Make(Expr::Kind::kUnary);
      Next();
      DepthGuard g(this);
      u->name = "not";
      u->args = {ParseNot()};
      return u;
    }
    return ParseCompare();
  }
  ExprPtr ParseCompare() {
    ExprPtr first = ParseMath1();
    Mut cmp;
    while (true) {
      std::string op;
      const Token& t = Cur();
      if (t.type == TokType::kOp && (t.value == "==" || t.value == "!=" || t.value == "<" ||
                                     t.value == "<=" || t.value == ">" || t.value == ">=")) {
        op = t.value;
        Next();
      } else if (IsName("in")) {
        op = "in";
        Next();
      } else if (IsName("not") && Peek().type == TokType::kName && Peek().value == "in") {
        op = "notin";
        Next();
        Next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = Make(Expr::Kind::kCompare);
        cmp->args.push_back(first);
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(ParseMath1());
    }
    return cmp ? ExprPtr(cmp) : first;
  }
  ExprPtr ParseMath1() {
    ExprPtr l = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      std::string op = Cur().value;
      Next();
      l = Binary(op, l, ParseConcat());
    }
    return l;
  }
  ExprPtr ParseConcat() {
    ExprPtr l = ParseMath2();
    while (SkipOp("~")) l = Binary("~", l, ParseMath2());
    return l;
  }
  ExprPtr ParseMath2() {
    ExprPtr l = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      std::string op = Cur().value;
      Next();
      l = Binary(op, l, ParsePow());
    }
    return l;
  }
  ExprPtr ParsePow() {
    ExprPtr l = ParseUnary(true);
    while (SkipOp("**")) l = Binary("**", l, ParseUnary(true));
    return l;
  }
  ExprPtr ParseUnary(bool with_filter) {
    DepthGuard g(this);
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      Mut u = Make(Expr::Kind::kUnary);
      u->name = Cur().value;
      Next();
      u->args = {ParseUnary(false)};
      node = u;
    } else {
      node = ParsePrimary();
    }
    node = ParsePostfix(node);
    if (with_filter) node = ParseFilterExpr(node);
    return node;
  }

  ExprPtr ParsePrimary() {
    const Token& t = Cur();
    if (t.type == TokType::kName) {
      const std::string& n = t.value;
      Mut c = Make(Expr::Kind::kConst);
      if (n == "true" || n == "True") {
        c->value = Value(true);
      } else if (n == "false" || n == "False") {
        c->value = Value(false);
      } else if (n == "none" || n == "None") {
        c->value = Value::None();
      } else {
        c->kind = Expr::Kind::kName;
        c->name = n;
      }
      Next();
      return c;
    }
    if (t.type == TokType::kString) {
      Mut c = Make(Expr::Kind::kConst);
      std::string s = t.value;
      Next();
      while (Cur().type == TokType::kString) {  // implicit concatenation
        s += Cur().value;
        Next();
      }
      c->value = Value(std::move(s));
      return c;
    }
    if (t.type == TokType::kInt || t.type == TokType::kFloat) {
      Mut c = Make(Expr::Kind::kConst);
      c->value = t.type == TokType::kInt ? Value(t.int_value) : Value(t.float_value);
      Next();
      return c;
    }
    if (IsOp("(")) {
      Next();
      if (IsOp(")")) {
        Next();
        Mut e = Make(Expr::Kind::kTuple);
        return e;
      }
      ExprPtr inner = ParseTuple(true, {});
      // "(x,)" is a tuple; ParseTuple returns a kTuple node for it.
      ExpectOp(")");
      return inner;
    }
    if (IsOp("[")) {
      Mut l = Make(Expr::Kind::kList);
      Next();
      while (!IsOp("]")) {
        if (!l->args.empty()) ExpectOp(",");
        if (IsOp("]")) break;
        l->args.push_back(ParseExpression(true));
      }
      ExpectOp("]");
      return l;
    }
    if (IsOp("{")) {
      Mut d = Make(Expr::Kind::kDict);
      Next();
      while (!IsOp("}")) {
        if (!d->args.empty()) ExpectOp(",");
        if (IsOp("}")) break;
        d->args.push_back(ParseExpression(true));
        ExpectOp(":");
        d->args.push_back(ParseExpression(true));
      }
      ExpectOp("}");
      return d;
    }
    Fail("unexpected " + Describe(t));
  }

  ExprPtr ParsePostfix(ExprPtr node) {
    while (true) {
      if (IsOp(".")) {
        Next();
        if (Cur().type == TokType::kName) {
          Mut a = Make(Expr::Kind::kGetAttr);
          a->name = Cur().value;
          a->args = {node};
          Next();
          node = a;
        } else if (Cur().type == TokType::kInt) {
          Mut g = Make(Expr::Kind::kGetItem);
          Mut idx = Make(Expr::Kind::kConst);
          idx->value = Value(Cur().int_value);
          g->args = {node, idx};
          Next();
          node = g;
        } else {
          Fail("expected name or number after '.', got " + Describe(Cur()));
        }
      } else if (IsOp("[")) {
        Next();
        node = ParseSubscript(node);
        ExpectOp("]");
      } else if (IsOp("(")) {
        Mut c = Make(Expr::Kind::kCall);
        c->args = {node};
        ParseCallArgs(c.get());
        node = c;
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseSubscript(ExprPtr node) {
    auto slice_part = [&]() -> ExprPtr {
      if (IsOp(":") || IsOp("]") || IsOp(",")) return nullptr;
      return ParseExpression(true);
    };
    ExprPtr start = slice_part();
    if (!IsOp(":")) {
      if (!start) Fail("expected an index, got " + Describe(Cur()));
      Mut g = Make(Expr::Kind::kGetItem);
      if (IsOp(",")) {  // d[a, b] -> tuple key
        Mut t = Make(Expr::Kind::kTuple);
        t->args.push_back(start);
        while (SkipOp(",")) {
          if (IsOp("]")) break;
          t->args.push_back(ParseExpression(true));
        }
        start = t;
      }
      g->args = {node, start};
      return g;
    }
    Mut s = Make(Expr::Kind::kSlice);
    Next();  // ':'
    ExprPtr stop = slice_part();
    ExprPtr step;
    if (SkipOp(":")) step = slice_part();
    s->args = {node, start, stop, step};
    return s;
  }

  // Parses "(args)" into e->args (appended) and e->kwargs.
  void ParseCallArgs(Expr* e) {
    ExpectOp("(");
    bool first = true;
    while (!IsOp(")")) {
      if (!first) ExpectOp(",");
      first = false;
      if (IsOp(")")) break;
      if (IsOp("*") || IsOp("**")) Fail("*args and **kwargs in calls are not supported");
      if (Cur().type == TokType::kName && Peek().type == TokType::kOp && Peek().value == "=") {
        std::string key = Cur().value;
        Next();
        Next();
        e->kwargs.emplace_back(key, ParseExpression(true));
      } else {
        if (!e->kwargs.empty()) Fail("positional argument follows keyword argument");
        e->args.push_back(ParseExpression(true));
      }
    }
    ExpectOp(")");
  }

  ExprPtr ParseFilterOne(ExprPtr input) {
    Mut f = Make(Expr::Kind::kFilter);
    std::string name = ExpectName();
    while (IsOp(".")) {
      Next();
      name += "." + ExpectName();
    }
    if (!IsKnownFilter(name)) Fail("No filter named '" + name + "'.");
    f->name = name;
    f->args = {input};
    if (IsOp("(")) ParseCallArgs(f.get());
    return f;
  }

  // "| f | g(x)" chains; `first_without_bar` for {% filter f | g %}.
  ExprPtr ParseFilterChain(ExprPtr input, bool first_without_bar) {
    if (first_without_bar) input = ParseFilterOne(input);
    while (SkipOp("|")) input = ParseFilterOne(input);
    return input;
  }

  ExprPtr ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        Next();
        node = ParseFilterOne(node);
      } else if (IsName("is")) {
        Next();
        Mut t = Make(Expr::Kind::kTest);
        if (SkipName("not")) t->negated = true;
        std::string name = ExpectName();
        while (IsOp(".")) {
          Next();
          name += "." + ExpectName();
        }
        if (!IsKnownTest(name)) Fail("No test named '" + name + "'.");
        t->name = name;
        t->args = {node};
        const Token& c = Cur();
        if (IsOp("(")) {
          ParseCallArgs(t.get());
        } else if ((c.type == TokType::kName || c.type == TokType::kString ||
                    c.type == TokType::kInt || c.type == TokType::kFloat || IsOp("(") ||
                    IsOp("[") || IsOp("{")) &&
                   !(IsName("else") || IsName("or") || IsName("and"))) {
          if (IsName("is")) Fail("You cannot chain multiple tests with is");
          t->args.push_back(ParsePostfix(ParsePrimary()));
        }
        node = t;
      } else if (IsOp("(")) {
        Mut c = Make(Expr::Kind::kCall);
        c->args = {node};
        ParseCallArgs(c.get());
        node = c;
      } else {
        return node;
      }
    }
  }

  const std::vector<Token>& toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body Parse(const std::vector<Token>& tokens) {
  return Parser(tokens).ParseTemplate();
}

}  // namespace c8::jinja
