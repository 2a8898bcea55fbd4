#include "c8/tokenizer/jinja_interpreter.h"

#include <cmath>
#include <unordered_map>

#include "c8/tokenizer/jinja_builtins.h"
#include "c8/tokenizer/jinja_lexer.h"
#include "c8/tokenizer/jinja_parser.h"

namespace c8::jinja {
namespace {

constexpr int kMaxCallDepth = 100;
constexpr size_t kMaxOutputBytes = size_t{256} << 20;

// One variable scope. Each for-loop iteration and macro call gets its own.
struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
};

std::string TypeError(const char* op, const Value& a, const Value& b) {
  return std::string("unsupported operand type(s) for ") + op + ": '" + a.TypeName() + "' and '" +
         b.TypeName() + "'";
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t PyMod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

Value Repeat(const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    if (static_cast<double>(seq.str().size()) * static_cast<double>(n) > kMaxOutputBytes)
      throw JinjaError("string repetition result is too large");
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value(out);
  }
  if (static_cast<double>(seq.list().items.size()) * static_cast<double>(n) > 1e7)
    throw JinjaError("list repetition result is too large");
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i)
    out.insert(out.end(), seq.list().items.begin(), seq.list().items.end());
  return seq.is_tuple() ? Value::Tuple(std::move(out)) : Value::List(std::move(out));
}

std::string PercentOp(const Value& fmt, const Value& args);

Value Arith(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) FailUndefined(a);
  if (b.is_undefined()) FailUndefined(b);
  const bool nums = a.is_number() && b.is_number();
  const bool fl = nums && (a.is_float() || b.is_float());
  if (op == "+") {
    if (nums) {
      if (fl) return Value(a.as_double() + b.as_double());
      int64_t r;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) throw JinjaError("integer overflow");
      return Value(r);
    }
    if (a.is_string() && b.is_string()) return Value(a.str() + b.str());
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      std::vector<Value> items = a.list().items;
      items.insert(items.end(), b.list().items.begin(), b.list().items.end());
      return a.is_tuple() ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
    }
    if (a.is_string() || a.is_list())
      throw JinjaError("can only concatenate " + a.TypeName() + " (not \"" + b.TypeName() +
                       "\") to " + a.TypeName());
    throw JinjaError(TypeError("+", a, b));
  }
  if (op == "-") {
    if (!nums) throw JinjaError(TypeError("-", a, b));
    if (fl) return Value(a.as_double() - b.as_double());
    int64_t r;
    if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) throw JinjaError("integer overflow");
    return Value(r);
  }
  if (op == "*") {
    if (nums) {
      if (fl) return Value(a.as_double() * b.as_double());
      int64_t r;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) throw JinjaError("integer overflow");
      return Value(r);
    }
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return Repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return Repeat(b, a.as_int());
    throw JinjaError("can't multiply sequence by non-int of type '" +
                     (a.is_string() || a.is_list() ? b.TypeName() : a.TypeName()) + "'");
  }
  if (op == "/") {
    if (!nums) throw JinjaError(TypeError("/", a, b));
    if (b.as_double() == 0) throw JinjaError("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//") {
    if (!nums) throw JinjaError(TypeError("//", a, b));
    if (fl) {
      if (b.as_double() == 0) throw JinjaError("float floor division by zero");
      return Value(std::floor(a.as_double() / b.as_double()));
    }
    if (b.as_int() == 0) throw JinjaError("integer division or modulo by zero");
    if (a.as_int() == INT64_MIN && b.as_int() == -1) throw JinjaError("integer overflow");
    return Value(FloorDiv(a.as_int(), b.as_int()));
  }
  if (op == "%") {
    if (a.is_string()) return Value(PercentOp(a, b));
    if (!nums) throw JinjaError(TypeError("%", a, b));
    if (fl) {
      double y = b.as_double();
      if (y == 0) throw JinjaError("float modulo");
      double r = std::fmod(a.as_double(), y);
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return Value(r);
    }
    if (b.as_int() == 0) throw JinjaError("integer division or modulo by zero");
    if (b.as_int() == -1) return Value(static_cast<int64_t>(0));
    return Value(PyMod(a.as_int(), b.as_int()));
  }
  if (op == "**") {
    if (!nums) throw JinjaError(TypeError("** or pow()", a, b));
    if (!fl && b.as_int() >= 0) {
      int64_t base = a.as_int(), e = b.as_int(), r = 1;
      while (e > 0) {
        if (e & 1)
          if (__builtin_mul_overflow(r, base, &r)) throw JinjaError("integer overflow");
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(base, base, &base))
          throw JinjaError("integer overflow");
      }
      return Value(r);
    }
    if (a.as_double() == 0 && b.as_double() < 0)
      throw JinjaError("0.0 cannot be raised to a negative power");
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  throw JinjaError("unknown operator " + op);
}

bool Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string())
        throw JinjaError("'in <string>' requires string as left operand, not " + item.TypeName());
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const auto& x : container.list().items)
        if (PyEquals(x, item)) return true;
      return false;
    case Value::Kind::kDict:
      return container.dict().Find(item) != nullptr;
    default:
      throw JinjaError("argument of type '" + container.TypeName() + "' is not iterable");
  }
}

class Renderer {
 public:
  enum class Flow { kNormal, kBreak, kContinue };

  explicit Renderer(std::shared_ptr<Frame> root) : frame_(std::move(root)) {}

  Flow Exec(const Body& body, std::string* out) {
    for (const auto& s : body) {
      Flow f = ExecStmt(*s, out);
      if (f != Flow::kNormal) return f;
      if (out->size() > kMaxOutputBytes) throw JinjaError("rendered output is too large");
    }
    return Flow::kNormal;
  }

 private:
  struct FrameScope {
    FrameScope(Renderer* r, std::shared_ptr<Frame> f) : r(r), saved(std::move(r->frame_)) {
      r->frame_ = std::move(f);
    }
    ~FrameScope() { r->frame_ = std::move(saved); }
    Renderer* r;
    std::shared_ptr<Frame> saved;
  };

  std::shared_ptr<Frame> NewFrame(std::shared_ptr<Frame> parent) {
    auto f = std::make_shared<Frame>();
    f->parent = std::move(parent);
    return f;
  }

  Value Lookup(const std::string& name) const {
    for (const Frame* f = frame_.get(); f; f = f->parent.get()) {
      auto it = f->vars.find(name);
      if (it != f->vars.end()) return it->second;
    }
    return GetGlobal(name);
  }

  void Assign(const Target& t, const Value& v) {
    if (!t.attr.empty()) {
      Value ns = Lookup(t.names[0]);
      if (!ns.is_namespace()) throw JinjaError("cannot assign attribute on non-namespace object");
      ns.ns().Set(t.attr, v);
      return;
    }
    if (!t.is_tuple) {
      frame_->vars[t.names[0]] = v;
      return;
    }
    std::vector<Value> items = Iterate(v);
    if (items.size() != t.names.size())
      throw JinjaError(
          items.size() < t.names.size()
              ? "not enough values to unpack (expected " + std::to_string(t.names.size()) +
                    ", got " + std::to_string(items.size()) + ")"
              : "too many values to unpack (expected " + std::to_string(t.names.size()) + ")");
    for (size_t i = 0; i < items.size(); ++i) frame_->vars[t.names[i]] = items[i];
  }

  Flow ExecStmt(const Stmt& s, std::string* out) {
    switch (s.kind) {
      case Stmt::Kind::kData:
        *out += s.text;
        return Flow::kNormal;
      case Stmt::Kind::kOutput:
        *out += Eval(*s.expr).ToStr();
        return Flow::kNormal;
      case Stmt::Kind::kIf:
        for (const auto& [cond, body] : s.branches)
          if (Eval(*cond).Truthy()) return Exec(body, out);
        return Exec(s.else_body, out);
      case Stmt::Kind::kFor:
        return ExecFor(s, out);
      case Stmt::Kind::kSet:
        Assign(s.target, Eval(*s.expr));
        return Flow::kNormal;
      case Stmt::Kind::kSetBlock: {
        std::string body;
        Exec(s.body, &body);
        Value v(body);
        if (s.expr) v = EvalFilterChain(*s.expr, v);
        Assign(s.target, v);
        return Flow::kNormal;
      }
      case Stmt::Kind::kMacro:
        DefineMacro(s);
        return Flow::kNormal;
      case Stmt::Kind::kFilterBlock: {
        std::string body;
        Exec(s.body, &body);
        *out += EvalFilterChain(*s.expr, Value(body)).ToStr();
        return Flow::kNormal;
      }
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
      case Stmt::Kind::kScope:
        return Exec(s.body, out);
    }
    return Flow::kNormal;
  }

  Flow ExecFor(const Stmt& s, std::string* out) {
    Value iterable = Eval(*s.expr);
    if (iterable.is_none() || iterable.is_number() || iterable.is_callable() ||
        iterable.is_namespace())
      throw JinjaError("'" + iterable.TypeName() + "' object is not iterable");
    std::vector<Value> items = Iterate(iterable);
    if (s.cond) {
      std::vector<Value> kept;
      for (auto& item : items) {
        FrameScope scope(this, NewFrame(frame_));
        Assign(s.target, item);
        if (Eval(*s.cond).Truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return Exec(s.else_body, out);
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      FrameScope scope(this, NewFrame(frame_));
      Assign(s.target, items[static_cast<size_t>(i)]);
      Value loop = Value::Dict();
      DictData& d = loop.dict();
      d.items.reserve(12);
      d.items.emplace_back(Value("index"), Value(i + 1));
      d.items.emplace_back(Value("index0"), Value(i));
      d.items.emplace_back(Value("revindex"), Value(n - i));
      d.items.emplace_back(Value("revindex0"), Value(n - i - 1));
      d.items.emplace_back(Value("first"), Value(i == 0));
      d.items.emplace_back(Value("last"), Value(i == n - 1));
      d.items.emplace_back(Value("length"), Value(n));
      d.items.emplace_back(Value("depth"), Value(static_cast<int64_t>(1)));
      d.items.emplace_back(Value("depth0"), Value(static_cast<int64_t>(0)));
      if (i > 0) d.items.emplace_back(Value("previtem"), items[static_cast<size_t>(i - 1)]);
      if (i + 1 < n) d.items.emplace_back(Value("nextitem"), items[static_cast<size_t>(i + 1)]);
      d.items.emplace_back(Value("cycle"), Value::Function("cycle", [i](CallArgs& a) {
                             if (a.positional.empty())
                               throw JinjaError("no items for cycling given");
                             return a.positional[static_cast<size_t>(i) % a.positional.size()];
                           }));
      frame_->vars["loop"] = loop;
      Flow f = Exec(s.body, out);
      if (f == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  void DefineMacro(const Stmt& s) {
    // Weak: the macro value lives in this frame, a strong pointer would be a cycle.
    std::weak_ptr<Frame> closure = frame_;
    const Stmt* stmt = &s;
    Renderer* self = this;
    frame_->vars[s.text] = Value::Function(s.text, [self, stmt, closure](CallArgs& a) {
      if (self->call_depth_ >= kMaxCallDepth) throw JinjaError("macro recursion is too deep");
      if (a.positional.size() > stmt->params.size())
        throw JinjaError("macro '" + stmt->text + "' takes not more than " +
                         std::to_string(stmt->params.size()) + " argument(s)");
      std::shared_ptr<Frame> parent = closure.lock();
      auto frame = self->NewFrame(parent ? parent : self->frame_);
      FrameScope scope(self, frame);
      for (size_t i = 0; i < stmt->params.size(); ++i) {
        const MacroParam& p = stmt->params[i];
        Value v;
        bool found = false;
        if (i < a.positional.size()) {
          v = a.positional[i];
          found = true;
        }
        for (const auto& [k, kv] : a.keyword) {
          if (k == p.name) {
            if (found)
              throw JinjaError("macro '" + stmt->text + "' got multiple values for '" + k + "'");
            v = kv;
            found = true;
          }
        }
        if (!found)
          v = p.default_value ? self->Eval(*p.default_value)
                              : Value::Undefined("'" + p.name + "' is undefined");
        frame->vars[p.name] = v;
      }
      for (const auto& [k, kv] : a.keyword) {
        bool known = false;
        for (const auto& p : stmt->params) known = known || p.name == k;
        if (!known)
          throw JinjaError("macro '" + stmt->text + "' takes no keyword argument '" + k + "'");
      }
      ++self->call_depth_;
      std::string out;
      try {
        self->Exec(stmt->body, &out);
      } catch (...) {
        --self->call_depth_;
        throw;
      }
      --self->call_depth_;
      return Value(out);
    });
  }

  CallArgs EvalArgs(const Expr& e, size_t first) {
    CallArgs a;
    for (size_t i = first; i < e.args.size(); ++i) a.positional.push_back(Eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) a.keyword.emplace_back(k, Eval(*v));
    return a;
  }

  Value EvalFilterChain(const Expr& e, const Value& input) {
    Value in = e.args[0] ? EvalFilterChain(*e.args[0], input) : input;
    CallArgs a = EvalArgs(e, 1);
    return ApplyFilter(e.name, in, a);
  }

  Value Eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kConst:
        return e.value;
      case Expr::Kind::kName:
        return Lookup(e.name);
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        std::vector<Value> items;
        for (const auto& x : e.args) items.push_back(Eval(*x));
        return e.kind == Expr::Kind::kList ? Value::List(std::move(items))
                                           : Value::Tuple(std::move(items));
      }
      case Expr::Kind::kDict: {
        Value d = Value::Dict();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Value k = Eval(*e.args[i]);
          if (k.is_list() && !k.is_tuple()) throw JinjaError("unhashable type: 'list'");
          if (k.is_dict()) throw JinjaError("unhashable type: 'dict'");
          d.dict().Set(k, Eval(*e.args[i + 1]));
        }
        return d;
      }
      case Expr::Kind::kGetAttr:
        return GetAttr(Eval(*e.args[0]), e.name);
      case Expr::Kind::kGetItem:
        return GetItem(Eval(*e.args[0]), Eval(*e.args[1]));
      case Expr::Kind::kSlice: {
        Value obj = Eval(*e.args[0]);
        Value parts[3];
        const Value* ptrs[3] = {nullptr, nullptr, nullptr};
        for (int i = 0; i < 3; ++i) {
          if (e.args[static_cast<size_t>(i) + 1]) {
            parts[i] = Eval(*e.args[static_cast<size_t>(i) + 1]);
            ptrs[i] = &parts[i];
          }
        }
        return GetSlice(obj, ptrs[0], ptrs[1], ptrs[2]);
      }
      case Expr::Kind::kCall: {
        Value fn = Eval(*e.args[0]);
        if (fn.is_undefined()) FailUndefined(fn);
        if (!fn.is_callable()) throw JinjaError("'" + fn.TypeName() + "' object is not callable");
        CallArgs a = EvalArgs(e, 1);
        return fn.callable().fn(a);
      }
      case Expr::Kind::kFilter: {
        if (!e.args[0]) throw JinjaError("filter without input");
        Value in = Eval(*e.args[0]);
        CallArgs a = EvalArgs(e, 1);
        return ApplyFilter(e.name, in, a);
      }
      case Expr::Kind::kTest: {
        Value in = Eval(*e.args[0]);
        CallArgs a = EvalArgs(e, 1);
        return Value(ApplyTest(e.name, in, a) != e.negated);
      }
      case Expr::Kind::kUnary: {
        Value v = Eval(*e.args[0]);
        if (e.name == "not") return Value(!v.Truthy());
        if (v.is_undefined()) FailUndefined(v);
        if (!v.is_number())
          throw JinjaError("bad operand type for unary " + e.name + ": '" + v.TypeName() + "'");
        if (e.name == "+") return v.is_float() ? v : Value(v.as_int());
        if (v.is_float()) return Value(-v.as_double());
        if (v.as_int() == INT64_MIN) throw JinjaError("integer overflow");
        return Value(-v.as_int());
      }
      case Expr::Kind::kBinary: {
        if (e.name == "and") {
          Value l = Eval(*e.args[0]);
          return l.Truthy() ? Eval(*e.args[1]) : l;
        }
        if (e.name == "or") {
          Value l = Eval(*e.args[0]);
          return l.Truthy() ? l : Eval(*e.args[1]);
        }
        Value l = Eval(*e.args[0]);
        Value r = Eval(*e.args[1]);
        if (e.name == "~") return Value(l.ToStr() + r.ToStr());
        return Arith(e.name, l, r);
      }
      case Expr::Kind::kCompare: {
        Value left = Eval(*e.args[0]);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = Eval(*e.args[i + 1]);
          const std::string& op = e.ops[i];
          bool ok;
          if (op == "==")
            ok = PyEquals(left, right);
          else if (op == "!=")
            ok = !PyEquals(left, right);
          else if (op == "<")
            ok = PyCompare(left, right, "<") < 0;
          else if (op == "<=")
            ok = PyCompare(left, right, "<=") <= 0;
          else if (op == ">")
            ok = PyCompare(left, right, ">") > 0;
          else if (op == ">=")
            ok = PyCompare(left, right, ">=") >= 0;
          else if (op == "in")
            ok = Contains(right, left);
          else
            ok = !Contains(right, left);
          if (!ok) return Value(false);
          left = right;
        }
        return Value(true);
      }
      case Expr::Kind::kCondExpr: {
        if (Eval(*e.args[0]).Truthy()) return Eval(*e.args[1]);
        if (e.args[2]) return Eval(*e.args[2]);
        return Value::Undefined(
            "the inline if-expression evaluated to false and no else section was defined.");
      }
    }
    return Value();
  }

  std::shared_ptr<Frame> frame_;
  int call_depth_ = 0;
};

std::string PercentOp(const Value& fmt, const Value& args) {
  CallArgs a;
  if (args.is_tuple()) {
    a.positional = args.list().items;
  } else if (args.is_dict()) {
    for (const auto& [k, v] : args.dict().items) a.keyword.emplace_back(k.ToStr(), v);
  } else {
    a.positional.push_back(args);
  }
  return ApplyFilter("format", fmt, a).str();
}

}  // namespace

Result<Template> Template::Parse(const std::string& source) {
  try {
    Template t;
    t.body_ = std::make_shared<const Body>(jinja::Parse(Tokenize(source)));
    return t;
  } catch (const JinjaError& e) {
    return Error(std::string("template syntax error: ") + e.what());
  } catch (const std::exception& e) {
    return Error(std::string("template parse failed: ") + e.what());
  }
}

Result<std::string> Template::Render(
    const std::vector<std::pair<std::string, Value>>& context) const {
  if (!body_) return Error("template render: template was not parsed");
  try {
    auto root = std::make_shared<Frame>();
    for (const auto& [k, v] : context) root->vars[k] = v;
    // Template-level {% set %} goes to a frame above the context, like jinja2's locals.
    auto top = std::make_shared<Frame>();
    top->parent = root;
    Renderer r(top);
    std::string out;
    r.Exec(*body_, &out);
    return out;
  } catch (const JinjaError& e) {
    return Error(std::string("template render error: ") + e.what());
  } catch (const std::exception& e) {
    return Error(std::string("template render failed: ") + e.what());
  }
}

}  // namespace c8::jinja
