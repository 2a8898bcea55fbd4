#include "c8/tokenizer/jinja_builtins.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <set>

#include "c8/tokenizer/jinja_text.h"

namespace c8::jinja {
namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2 sandbox MAX_RANGE

// ---- argument helpers ----

// Positional argument `idx` or keyword `name`; null when absent.
const Value* Arg(const CallArgs& a, size_t idx, const char* name) {
  if (idx < a.positional.size()) return &a.positional[idx];
  for (const auto& [k, v] : a.keyword)
    if (k == name) return &v;
  return nullptr;
}

void CheckArgs(const CallArgs& a, const std::string& fn, size_t max_pos,
               std::initializer_list<const char*> names) {
  if (a.positional.size() > max_pos)
    throw JinjaError(fn + "() takes at most " + std::to_string(max_pos) +
                     " positional arguments (" + std::to_string(a.positional.size()) + " given)");
  for (const auto& [k, v] : a.keyword) {
    bool ok = false;
    for (const char* n : names) ok = ok || k == n;
    if (!ok) throw JinjaError(fn + "() got an unexpected keyword argument '" + k + "'");
  }
}

std::string SoftStr(const Value& v) {
  return v.ToStr();
}

const std::string& NeedStr(const Value& v, const std::string& what) {
  if (v.is_undefined()) FailUndefined(v);
  if (!v.is_string()) throw JinjaError(what + " must be str, not " + v.TypeName());
  return v.str();
}

int64_t NeedInt(const Value& v, const std::string& what) {
  if (v.is_undefined()) FailUndefined(v);
  if (!v.is_int() && !v.is_bool())
    throw JinjaError("'" + v.TypeName() + "' object cannot be interpreted as an integer (" + what +
                     ")");
  return v.as_int();
}

bool ArgBool(const CallArgs& a, size_t idx, const char* name, bool dflt) {
  const Value* v = Arg(a, idx, name);
  return v ? v->Truthy() : dflt;
}

Value BoundMethod(const std::string& name, std::function<Value(CallArgs&)> fn) {
  return Value::Function(name, std::move(fn));
}

Value Unsafe(const Value& obj, const std::string& attr) {
  return Value::Undefined("access to attribute '" + attr + "' of '" + obj.TypeName() +
                          "' object is unsafe.");
}

std::string ObjectTypeRepr(const Value& obj) {
  if (obj.is_none()) return "None";
  return obj.TypeName() + " object";
}

Value MissingAttr(const Value& obj, const std::string& name) {
  return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no attribute '" + name + "'");
}

// ---- Python-style arithmetic used by filters (sum) ----

Value AddValues(const Value& a, const Value& b);

// ---- string methods ----

bool StartsOrEnds(const std::string& s, const Value& affix, bool start) {
  auto check = [&](const std::string& x) {
    if (x.size() > s.size()) return false;
    return start ? s.compare(0, x.size(), x) == 0
                 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list() && affix.is_tuple()) {
    for (const auto& v : affix.list().items)
      if (check(NeedStr(v, "startswith/endswith argument"))) return true;
    return false;
  }
  return check(NeedStr(affix, "startswith/endswith argument"));
}

Value StrMethod(const std::string& s, const std::string& name, CallArgs& a) {
  auto opt_str = [&](size_t idx, const char* key, std::string* store) -> const std::string* {
    const Value* v = Arg(a, idx, key);
    if (!v || v->is_none()) return nullptr;
    *store = NeedStr(*v, name + "() argument");
    return store;
  };
  if (name == "startswith" || name == "endswith") {
    const Value* v = Arg(a, 0, "prefix");
    if (!v) throw JinjaError(name + "() takes at least 1 argument (0 given)");
    return Value(StartsOrEnds(s, *v, name == "startswith"));
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    std::string chars;
    const std::string* c = opt_str(0, "chars", &chars);
    return Value(PyStrip(s, c, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    std::string sep;
    const std::string* sp = opt_str(0, "sep", &sep);
    if (sp && sp->empty()) throw JinjaError("empty separator");
    const Value* m = Arg(a, 1, "maxsplit");
    int64_t maxsplit = m ? NeedInt(*m, "maxsplit") : -1;
    std::vector<Value> out;
    for (auto& p : PySplit(s, sp, maxsplit, name == "rsplit")) out.emplace_back(std::move(p));
    return Value::List(std::move(out));
  }
  if (name == "splitlines") {
    std::vector<Value> out;
    std::string cur;
    bool keep = ArgBool(a, 0, "keepends", false);
    for (size_t i = 0; i < s.size(); ++i) {
      char c = s[i];
      if (c == '\n' || c == '\r') {
        std::string end(1, c);
        if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
          end += '\n';
          ++i;
        }
        out.emplace_back(keep ? cur + end : cur);
        cur.clear();
      } else {
        cur.push_back(c);
      }
    }
    if (!cur.empty()) out.emplace_back(cur);
    return Value::List(std::move(out));
  }
  if (name == "replace") {
    const Value* o = Arg(a, 0, "old");
    const Value* n = Arg(a, 1, "new");
    if (!o || !n) throw JinjaError("replace() takes at least 2 arguments");
    const Value* c = Arg(a, 2, "count");
    return Value(PyReplace(s, NeedStr(*o, "replace() argument 1"),
                           NeedStr(*n, "replace() argument 2"), c ? NeedInt(*c, "count") : -1));
  }
  if (name == "lower") return Value(PyLower(s));
  if (name == "upper") return Value(PyUpper(s));
  if (name == "title") return Value(PyTitle(s));
  if (name == "capitalize") return Value(PyCapitalize(s));
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    const Value* v = Arg(a, 0, "sub");
    if (!v) throw JinjaError(name + "() takes at least 1 argument (0 given)");
    const std::string& sub = NeedStr(*v, name + "() argument");
    if (name == "count") {
      if (sub.empty()) return Value(Utf8Length(s) + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value(n);
    }
    size_t p = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
    if (p == std::string::npos) {
      if (name == "index" || name == "rindex") throw JinjaError("substring not found");
      return Value(static_cast<int64_t>(-1));
    }
    return Value(Utf8Length(std::string_view(s).substr(0, p)));
  }
  if (name == "join") {
    const Value* v = Arg(a, 0, "iterable");
    if (!v) throw JinjaError("join() takes exactly one argument (0 given)");
    std::string out;
    bool first = true;
    for (const auto& item : Iterate(*v)) {
      if (!first) out += s;
      first = false;
      out += NeedStr(item, "sequence item");
    }
    return Value(out);
  }
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" ||
      name == "islower" || name == "isupper" || name == "isnumeric" || name == "isdecimal") {
    std::vector<char32_t> cps = DecodeUtf8(s);
    if (cps.empty()) return Value(false);
    if (name == "islower" || name == "isupper") {
      bool any = false;
      for (char32_t c : cps) {
        if (IsCasedUpper(c) && name == "islower") return Value(false);
        if (IsCasedLower(c) && name == "isupper") return Value(false);
        any = any || IsCasedUpper(c) || IsCasedLower(c);
      }
      return Value(any);
    }
    for (char32_t c : cps) {
      bool digit = c >= '0' && c <= '9';
      bool ok = name == "isspace"   ? IsPySpace(c)
                : name == "isalpha" ? (IsAlnumCp(c) && !digit)
                : name == "isalnum" ? IsAlnumCp(c)
                                    : digit;
      if (!ok) return Value(false);
    }
    return Value(true);
  }
  if (name == "zfill") {
    const Value* w = Arg(a, 0, "width");
    if (!w) throw JinjaError("zfill() takes exactly one argument");
    int64_t width = NeedInt(*w, "width");
    int64_t len = Utf8Length(s);
    if (len >= width) return Value(s);
    std::string pad(static_cast<size_t>(width - len), '0');
    if (!s.empty() && (s[0] == '-' || s[0] == '+'))
      return Value(s.substr(0, 1) + pad + s.substr(1));
    return Value(pad + s);
  }
  throw JinjaError("'str' object has no attribute '" + name + "'");
}

bool IsStrMethod(const std::string& n) {
  static const std::set<std::string> kNames = {
      "startswith", "endswith", "strip",   "lstrip",  "rstrip",    "split",      "rsplit",
      "splitlines", "replace",  "lower",   "upper",   "title",     "capitalize", "find",
      "rfind",      "index",    "rindex",  "count",   "join",      "isdigit",    "isalpha",
      "isalnum",    "isspace",  "islower", "isupper", "isnumeric", "isdecimal",  "zfill"};
  return kNames.count(n) > 0;
}

Value DictItems(const Value& d) {
  std::vector<Value> out;
  for (const auto& [k, v] : d.dict().items) out.push_back(Value::Tuple({k, v}));
  return Value::List(std::move(out));
}

Value DictMethod(const Value& d, const std::string& name) {
  if (name == "items") return BoundMethod("items", [d](CallArgs&) { return DictItems(d); });
  if (name == "keys")
    return BoundMethod("keys", [d](CallArgs&) { return Value::List(Iterate(d)); });
  if (name == "values")
    return BoundMethod("values", [d](CallArgs&) {
      std::vector<Value> out;
      for (const auto& [k, v] : d.dict().items) out.push_back(v);
      return Value::List(std::move(out));
    });
  if (name == "get")
    return BoundMethod("get", [d](CallArgs& a) {
      const Value* k = Arg(a, 0, "key");
      if (!k) throw JinjaError("get expected at least 1 argument, got 0");
      const Value* found = d.dict().Find(*k);
      if (found) return *found;
      const Value* dflt = Arg(a, 1, "default");
      return dflt ? *dflt : Value::None();
    });
  if (name == "copy")
    return BoundMethod("copy", [d](CallArgs&) {
      Value c = Value::Dict();
      c.dict().items = d.dict().items;
      return c;
    });
  return Value();
}

bool IsDictMethod(const std::string& n) {
  return n == "items" || n == "keys" || n == "values" || n == "get" || n == "copy";
}
bool IsUnsafeDictMethod(const std::string& n) {
  return n == "clear" || n == "pop" || n == "popitem" || n == "setdefault" || n == "update";
}
bool IsUnsafeListMethod(const std::string& n) {
  return n == "append" || n == "clear" || n == "pop" || n == "reverse" || n == "insert" ||
         n == "sort" || n == "extend" || n == "remove";
}

// ---- attribute getters used by map/select/sort ----

Value GetAttrPath(const Value& obj, const Value& attribute) {
  if (!attribute.is_string()) return GetItem(obj, attribute);
  Value cur = obj;
  static const std::string kDot = ".";
  for (const std::string& part : PySplit(attribute.str(), &kDot, -1, false)) {
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                               [](char c) { return c >= '0' && c <= '9'; });
    cur = digits
              ? GetItem(cur, Value(static_cast<int64_t>(std::strtoll(part.c_str(), nullptr, 10))))
              : GetItem(cur, Value(part));
  }
  return cur;
}

Value LowerIfStr(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(PyLower(v.str()));
  return v;
}

std::vector<Value> SortedValues(std::vector<Value> items, bool reverse, bool case_sensitive,
                                const Value* attribute) {
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& v : items) {
    Value key = attribute && !attribute->is_none() ? GetAttrPath(v, *attribute) : v;
    keyed.emplace_back(LowerIfStr(key, case_sensitive), std::move(v));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? PyCompare(y.first, x.first, "<") < 0 : PyCompare(x.first, y.first, "<") < 0;
  });
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return out;
}

// Python "%" string formatting with a list of arguments (or a single one).
std::string PercentFormat(const std::string& fmt, const Value& args) {
  std::vector<Value> list;
  const Value* mapping = nullptr;
  if (args.is_tuple()) {
    list = args.list().items;
  } else if (args.is_dict()) {
    mapping = &args;
  } else {
    list.push_back(args);
  }
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    if (++i >= fmt.size()) throw JinjaError("incomplete format");
    if (fmt[i] == '%') {
      out.push_back('%');
      continue;
    }
    const Value* arg = nullptr;
    if (fmt[i] == '(' && mapping) {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos) throw JinjaError("incomplete format key");
      arg = mapping->dict().Find(fmt.substr(i + 1, close - i - 1));
      if (!arg) throw JinjaError("format key '" + fmt.substr(i + 1, close - i - 1) + "' not found");
      i = close + 1;
    }
    std::string spec = "%";
    while (i < fmt.size() && std::string("-+ #0").find(fmt[i]) != std::string::npos)
      spec += fmt[i++];
    while (i < fmt.size() && ((fmt[i] >= '0' && fmt[i] <= '9') || fmt[i] == '.')) spec += fmt[i++];
    if (i >= fmt.size()) throw JinjaError("incomplete format");
    char conv = fmt[i];
    if (!arg) {
      if (next >= list.size()) throw JinjaError("not enough arguments for format string");
      arg = &list[next++];
    }
    char buf[512];
    if (conv == 's' || conv == 'r') {
      std::string s = conv == 's' ? arg->ToStr() : arg->Repr();
      std::snprintf(buf, sizeof(buf), (spec + "s").c_str(), s.c_str());
      out += (spec == "%") ? s : std::string(buf);
    } else if (conv == 'd' || conv == 'i' || conv == 'x' || conv == 'X' || conv == 'o') {
      if (!arg->is_number())
        throw JinjaError("%" + std::string(1, conv) + " format: a real number is required, not " +
                         arg->TypeName());
      long long v = arg->is_float() ? static_cast<long long>(arg->as_double()) : arg->as_int();
      std::snprintf(buf, sizeof(buf),
                    (spec + "ll" + std::string(1, conv == 'i' ? 'd' : conv)).c_str(), v);
      out += buf;
    } else if (conv == 'f' || conv == 'F' || conv == 'e' || conv == 'E' || conv == 'g' ||
               conv == 'G') {
      if (!arg->is_number()) throw JinjaError("must be real number, not " + arg->TypeName());
      std::snprintf(buf, sizeof(buf), (spec + std::string(1, conv)).c_str(), arg->as_double());
      out += buf;
    } else {
      throw JinjaError(std::string("unsupported format character '") + conv + "'");
    }
  }
  if (!mapping && next < list.size())
    throw JinjaError("not all arguments converted during string formatting");
  return out;
}

Value AddValues(const Value& a, const Value& b) {
  if (a.is_undefined()) FailUndefined(a);
  if (b.is_undefined()) FailUndefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value(a.as_double() + b.as_double());
    int64_t r;
    if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) throw JinjaError("integer overflow");
    return Value(r);
  }
  throw JinjaError("unsupported operand type(s) for +: '" + a.TypeName() + "' and '" +
                   b.TypeName() + "'");
}

double PyRound(double v, int64_t ndigits) {
  if (!std::isfinite(v)) return v;
  if (ndigits == 0) return std::nearbyint(v);
  if (ndigits > 300 || ndigits < -300) return ndigits > 0 ? v : 0.0 * v;
  // Correctly rounded (half-even on the exact binary value), like CPython.
  char buf[512];
  if (ndigits > 0) {
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(ndigits), v);
    return std::strtod(buf, nullptr);
  }
  double p = std::pow(10.0, static_cast<double>(-ndigits));
  return std::nearbyint(v / p) * p;
}

// ---- filters ----

using FilterFn = Value (*)(const Value&, CallArgs&);

Value FDefault(const Value& v, CallArgs& a) {
  CheckArgs(a, "default", 2, {"default_value", "boolean"});
  const Value* d = Arg(a, 0, "default_value");
  bool boolean = ArgBool(a, 1, "boolean", false);
  if (v.is_undefined() || (boolean && !v.Truthy())) return d ? *d : Value(std::string());
  return v;
}

Value FLength(const Value& v, CallArgs&) {
  return Value(PyLen(v));
}

Value FTojson(const Value& v, CallArgs& a) {
  CheckArgs(a, "tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"});
  bool ensure_ascii = ArgBool(a, 0, "ensure_ascii", false);
  const Value* ind = Arg(a, 1, "indent");
  const Value* seps = Arg(a, 2, "separators");
  bool sort_keys = ArgBool(a, 3, "sort_keys", false);
  std::string indent_str;
  const std::string* indent = nullptr;
  if (ind && !ind->is_none()) {
    if (ind->is_string()) {
      indent_str = ind->str();
    } else {
      int64_t n = NeedInt(*ind, "indent");
      indent_str =
          std::string(static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(n, 1000))), ' ');
    }
    indent = &indent_str;
  }
  std::string item_sep = indent ? "," : ", ";
  std::string key_sep = ": ";
  if (seps && !seps->is_none()) {
    if (!seps->is_list() || seps->list().items.size() != 2)
      throw JinjaError("tojson: separators must be a pair of strings");
    item_sep = NeedStr(seps->list().items[0], "tojson separator");
    key_sep = NeedStr(seps->list().items[1], "tojson separator");
  }
  return Value(v.ToJson(ensure_ascii, indent, item_sep, key_sep, sort_keys));
}

Value FString(const Value& v, CallArgs&) {
  return Value(SoftStr(v));
}
Value FLower(const Value& v, CallArgs&) {
  return Value(PyLower(SoftStr(v)));
}
Value FUpper(const Value& v, CallArgs&) {
  return Value(PyUpper(SoftStr(v)));
}
Value FCapitalize(const Value& v, CallArgs&) {
  return Value(PyCapitalize(SoftStr(v)));
}
Value FSafe(const Value& v, CallArgs&) {
  return v;
}

Value FTitle(const Value& v, CallArgs&) {
  // jinja2: split on runs of [-\s({\[<] and capitalize each piece.
  std::vector<char32_t> cps = DecodeUtf8(SoftStr(v));
  std::string out;
  bool word_start = true;
  for (char32_t c : cps) {
    bool sep = c == '-' || IsPySpace(c) || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      AppendUtf8(c, &out);
      word_start = true;
    } else {
      AppendUtf8(word_start ? ToUpperCp(c) : ToLowerCp(c), &out);
      word_start = false;
    }
  }
  return Value(out);
}

Value FTrim(const Value& v, CallArgs& a) {
  const Value* c = Arg(a, 0, "chars");
  std::string chars;
  if (c && !c->is_none()) chars = NeedStr(*c, "trim chars");
  return Value(PyStrip(SoftStr(v), (c && !c->is_none()) ? &chars : nullptr, true, true));
}

Value FReplace(const Value& v, CallArgs& a) {
  const Value* o = Arg(a, 0, "old");
  const Value* n = Arg(a, 1, "new");
  if (!o || !n) throw JinjaError("replace filter needs 2 arguments");
  const Value* c = Arg(a, 2, "count");
  return Value(PyReplace(SoftStr(v), SoftStr(*o), SoftStr(*n),
                         (c && !c->is_none()) ? NeedInt(*c, "count") : -1));
}

Value FFirst(const Value& v, CallArgs&) {
  std::vector<Value> items = Iterate(v);
  if (items.empty()) return Value::Undefined("No first item, sequence was empty.");
  return items.front();
}

Value FLast(const Value& v, CallArgs&) {
  std::vector<Value> items = Iterate(v);
  if (items.empty()) return Value::Undefined("No last item, sequence was empty.");
  return items.back();
}

Value FJoin(const Value& v, CallArgs& a) {
  const Value* sep = Arg(a, 0, "d");
  const Value* attr = Arg(a, 1, "attribute");
  std::string s = sep ? SoftStr(*sep) : "";
  std::string out;
  bool first = true;
  for (const auto& item : Iterate(v)) {
    if (!first) out += s;
    first = false;
    out += SoftStr(attr && !attr->is_none() ? GetAttrPath(item, *attr) : item);
  }
  return Value(out);
}

Value FReverse(const Value& v, CallArgs&) {
  if (v.is_string()) {
    std::vector<char32_t> cps = DecodeUtf8(v.str());
    std::reverse(cps.begin(), cps.end());
    return Value(EncodeUtf8(cps));
  }
  std::vector<Value> items = Iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::List(std::move(items));
}

Value FList(const Value& v, CallArgs&) {
  return Value::List(Iterate(v));
}

Value FItems(const Value& v, CallArgs&) {
  if (v.is_undefined()) return Value::List();
  if (!v.is_dict()) throw JinjaError("Can only get item pairs from a mapping.");
  return DictItems(v);
}

bool ParsePyInt(std::string s, int64_t base, int64_t* out) {
  s = PyStrip(s, nullptr, true, true);
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size()) continue;
    clean.push_back(s[i]);
  }
  if (clean.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(clean.c_str(), &end, static_cast<int>(base));
  if (errno != 0 || *end != '\0' || end == clean.c_str()) return false;
  if (base == 10 && clean.find_first_of("xX") != std::string::npos) return false;
  *out = v;
  return true;
}

bool ParsePyFloat(const std::string& s0, double* out) {
  std::string s = PyStrip(s0, nullptr, true, true);
  if (s.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (*end != '\0') return false;
  if (s.find_first_of("xXpP") != std::string::npos) return false;  // no hex floats in Python
  *out = v;
  return true;
}

Value FInt(const Value& v, CallArgs& a) {
  const Value* d = Arg(a, 0, "default");
  const Value* b = Arg(a, 1, "base");
  Value dflt = d ? *d : Value(static_cast<int64_t>(0));
  int64_t base = b ? NeedInt(*b, "base") : 10;
  if (v.is_undefined()) FailUndefined(v);
  if (v.is_string()) {
    int64_t r;
    if (ParsePyInt(v.str(), base, &r)) return Value(r);
    double f;
    if (ParsePyFloat(v.str(), &f) && std::isfinite(f)) return Value(static_cast<int64_t>(f));
    return dflt;
  }
  if (v.is_bool() || v.is_int()) return Value(v.as_int());
  if (v.is_float()) {
    if (!std::isfinite(v.as_double())) return dflt;
    return Value(static_cast<int64_t>(v.as_double()));
  }
  return dflt;
}

Value FFloat(const Value& v, CallArgs& a) {
  const Value* d = Arg(a, 0, "default");
  Value dflt = d ? *d : Value(0.0);
  if (v.is_undefined()) FailUndefined(v);
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    double f;
    if (ParsePyFloat(v.str(), &f)) return Value(f);
  }
  return dflt;
}

Value FAbs(const Value& v, CallArgs&) {
  if (v.is_float()) return Value(std::fabs(v.as_double()));
  if (v.is_number()) {
    int64_t x = v.as_int();
    if (x == INT64_MIN) throw JinjaError("integer overflow");
    return Value(x < 0 ? -x : x);
  }
  if (v.is_undefined()) FailUndefined(v);
  throw JinjaError("bad operand type for abs(): '" + v.TypeName() + "'");
}

Value FRound(const Value& v, CallArgs& a) {
  const Value* p = Arg(a, 0, "precision");
  const Value* m = Arg(a, 1, "method");
  int64_t precision = p ? NeedInt(*p, "precision") : 0;
  std::string method = m ? NeedStr(*m, "method") : "common";
  if (v.is_undefined()) FailUndefined(v);
  if (!v.is_number()) throw JinjaError("type " + v.TypeName() + " doesn't define __round__ method");
  if (method == "common") {
    if (!v.is_float()) return Value(v.as_int());
    return Value(PyRound(v.as_double(), precision));
  }
  if (method != "ceil" && method != "floor")
    throw JinjaError("method must be common, ceil or floor");
  double f = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * f;
  return Value((method == "ceil" ? std::ceil(x) : std::floor(x)) / f);
}

Value FSum(const Value& v, CallArgs& a) {
  const Value* attr = Arg(a, 0, "attribute");
  const Value* start = Arg(a, 1, "start");
  Value total = start ? *start : Value(static_cast<int64_t>(0));
  for (const auto& item : Iterate(v))
    total = AddValues(total, attr && !attr->is_none() ? GetAttrPath(item, *attr) : item);
  return total;
}

Value MinMax(const Value& v, CallArgs& a, bool want_max) {
  bool cs = ArgBool(a, 0, "case_sensitive", false);
  const Value* attr = Arg(a, 1, "attribute");
  std::vector<Value> items = Iterate(v);
  if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  auto key = [&](size_t i) {
    return LowerIfStr(attr && !attr->is_none() ? GetAttrPath(items[i], *attr) : items[i], cs);
  };
  for (size_t i = 1; i < items.size(); ++i) {
    int c = PyCompare(key(i), key(best), want_max ? ">" : "<");
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}
Value FMin(const Value& v, CallArgs& a) {
  return MinMax(v, a, false);
}
Value FMax(const Value& v, CallArgs& a) {
  return MinMax(v, a, true);
}

Value FSort(const Value& v, CallArgs& a) {
  CheckArgs(a, "sort", 3, {"reverse", "case_sensitive", "attribute"});
  return Value::List(SortedValues(Iterate(v), ArgBool(a, 0, "reverse", false),
                                  ArgBool(a, 1, "case_sensitive", false), Arg(a, 2, "attribute")));
}

Value FUnique(const Value& v, CallArgs& a) {
  bool cs = ArgBool(a, 0, "case_sensitive", false);
  const Value* attr = Arg(a, 1, "attribute");
  std::vector<Value> seen, out;
  for (const auto& item : Iterate(v)) {
    Value key = LowerIfStr(attr && !attr->is_none() ? GetAttrPath(item, *attr) : item, cs);
    bool dup = false;
    for (const auto& s : seen) dup = dup || PyEquals(s, key);
    if (!dup) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value::List(std::move(out));
}

// select/reject/selectattr/rejectattr share this.
Value SelectImpl(const Value& v, CallArgs& a, bool use_attr, bool want) {
  std::vector<Value> out;
  size_t next = 0;
  Value attr;
  if (use_attr) {
    if (a.positional.empty()) throw JinjaError("selectattr/rejectattr need an attribute name");
    attr = a.positional[next++];
  }
  std::string test;
  if (next < a.positional.size()) test = NeedStr(a.positional[next++], "test name");
  CallArgs targs;
  targs.positional.assign(a.positional.begin() + static_cast<long>(next), a.positional.end());
  targs.keyword = a.keyword;
  if (!test.empty() && !IsKnownTest(test)) throw JinjaError("No test named '" + test + "'.");
  for (const auto& item : Iterate(v)) {
    Value x = use_attr ? GetAttrPath(item, attr) : item;
    bool ok = test.empty() ? x.Truthy() : ApplyTest(test, x, targs);
    if (ok == want) out.push_back(item);
  }
  return Value::List(std::move(out));
}
Value FSelect(const Value& v, CallArgs& a) {
  return SelectImpl(v, a, false, true);
}
Value FReject(const Value& v, CallArgs& a) {
  return SelectImpl(v, a, false, false);
}
Value FSelectAttr(const Value& v, CallArgs& a) {
  return SelectImpl(v, a, true, true);
}
Value FRejectAttr(const Value& v, CallArgs& a) {
  return SelectImpl(v, a, true, false);
}

Value FMap(const Value& v, CallArgs& a) {
  std::vector<Value> out;
  const Value* attr = nullptr;
  const Value* dflt = nullptr;
  for (const auto& [k, val] : a.keyword) {
    if (k == "attribute") attr = &val;
    if (k == "default") dflt = &val;
  }
  if (attr) {
    for (const auto& item : Iterate(v)) {
      Value x = GetAttrPath(item, *attr);
      if (x.is_undefined() && dflt) x = *dflt;
      out.push_back(x);
    }
    return Value::List(std::move(out));
  }
  if (a.positional.empty()) throw JinjaError("map() needs a filter name or attribute=");
  std::string filter = NeedStr(a.positional[0], "filter name");
  if (!IsKnownFilter(filter)) throw JinjaError("No filter named '" + filter + "'.");
  CallArgs fargs;
  fargs.positional.assign(a.positional.begin() + 1, a.positional.end());
  fargs.keyword = a.keyword;
  for (const auto& item : Iterate(v)) out.push_back(ApplyFilter(filter, item, fargs));
  return Value::List(std::move(out));
}

Value FAttr(const Value& v, CallArgs& a) {
  const Value* n = Arg(a, 0, "name");
  if (!n) throw JinjaError("attr filter needs a name");
  std::string name = NeedStr(*n, "attribute name");
  if (v.is_dict()) {  // getattr only, no item lookup
    if (IsDictMethod(name)) return DictMethod(v, name);
    return MissingAttr(v, name);
  }
  return GetAttr(v, name);
}

Value FIndent(const Value& v, CallArgs& a) {
  const Value* w = Arg(a, 0, "width");
  bool first = ArgBool(a, 1, "first", false);
  bool blank = ArgBool(a, 2, "blank", false);
  std::string ind = "    ";
  if (w)
    ind = w->is_string() ? w->str()
                         : std::string(static_cast<size_t>(std::max<int64_t>(
                                           0, std::min<int64_t>(NeedInt(*w, "width"), 10000))),
                                       ' ');
  std::string s = SoftStr(v) + "\n";
  CallArgs none;
  Value lines_v = StrMethod(s, "splitlines", none);
  std::vector<Value>& lines = lines_v.list().items;
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i].str();
  } else {
    rv = lines.empty() ? "" : lines[0].str();
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += "\n";
      if (!lines[i].str().empty()) rv += ind;
      rv += lines[i].str();
    }
  }
  if (first) rv = ind + rv;
  return Value(rv);
}

Value FCenter(const Value& v, CallArgs& a) {
  const Value* w = Arg(a, 0, "width");
  int64_t width = w ? NeedInt(*w, "width") : 80;
  std::string s = SoftStr(v);
  int64_t len = Utf8Length(s);
  if (width <= len) return Value(s);
  int64_t pad = width - len;
  int64_t left = pad / 2 + (pad & width & 1);
  return Value(std::string(static_cast<size_t>(left), ' ') + s +
               std::string(static_cast<size_t>(pad - left), ' '));
}

Value FWordcount(const Value& v, CallArgs&) {
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : DecodeUtf8(SoftStr(v))) {
    bool w = IsAlnumCp(c) || c == '_' || c >= 0x80;
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

Value FEscape(const Value& v, CallArgs&) {
  std::string out;
  for (char c : SoftStr(v)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return Value(out);
}

Value FFormat(const Value& v, CallArgs& a) {
  if (!a.keyword.empty() && !a.positional.empty())
    throw JinjaError("can't handle positional and keyword arguments at the same time");
  if (!a.keyword.empty()) {
    Value d = Value::Dict();
    for (const auto& [k, val] : a.keyword) d.dict().Set(Value(k), val);
    return Value(PercentFormat(SoftStr(v), d));
  }
  return Value(PercentFormat(SoftStr(v), Value::Tuple(a.positional)));
}

Value FDictsort(const Value& v, CallArgs& a) {
  if (!v.is_dict()) throw JinjaError("dictsort filter needs a mapping");
  bool cs = ArgBool(a, 0, "case_sensitive", false);
  const Value* by = Arg(a, 1, "by");
  bool reverse = ArgBool(a, 2, "reverse", false);
  bool by_value = by && by->is_string() && by->str() == "value";
  std::vector<Value> items = DictItems(v).list().items;
  Value pos = Value(static_cast<int64_t>(by_value ? 1 : 0));
  return Value::List(SortedValues(std::move(items), reverse, cs, &pos));
}

const std::map<std::string, FilterFn>& Filters() {
  static const std::map<std::string, FilterFn> kFilters = {
      {"abs", FAbs},
      {"attr", FAttr},
      {"capitalize", FCapitalize},
      {"center", FCenter},
      {"count", FLength},
      {"d", FDefault},
      {"default", FDefault},
      {"dictsort", FDictsort},
      {"e", FEscape},
      {"escape", FEscape},
      {"first", FFirst},
      {"float", FFloat},
      {"format", FFormat},
      {"indent", FIndent},
      {"int", FInt},
      {"items", FItems},
      {"join", FJoin},
      {"last", FLast},
      {"length", FLength},
      {"list", FList},
      {"lower", FLower},
      {"map", FMap},
      {"max", FMax},
      {"min", FMin},
      {"reject", FReject},
      {"rejectattr", FRejectAttr},
      {"replace", FReplace},
      {"reverse", FReverse},
      {"round", FRound},
      {"safe", FSafe},
      {"select", FSelect},
      {"selectattr", FSelectAttr},
      {"sort", FSort},
      {"string", FString},
      {"sum", FSum},
      {"title", FTitle},
      {"tojson", FTojson},
      {"trim", FTrim},
      {"unique", FUnique},
      {"upper", FUpper},
      {"wordcount", FWordcount},
  };
  return kFilters;
}

const std::set<std::string>& Tests() {
  static const std::set<std::string> kTests = {
      "boolean", "callable", "defined",  "divisibleby", "eq",       "equalto",     "escaped",
      "even",    "false",    "filter",   "float",       "ge",       "greaterthan", "gt",
      "in",      "integer",  "iterable", "le",          "lessthan", "lower",       "lt",
      "mapping", "ne",       "none",     "number",      "odd",      "sameas",      "sequence",
      "string",  "test",     "true",     "undefined",   "upper"};
  return kTests;
}

}  // namespace

[[noreturn]] void FailUndefined(const Value& v) {
  const std::string& hint = v.undefined_hint();
  throw JinjaError(hint.empty() ? "value is undefined" : hint);
}

bool IsKnownFilter(const std::string& name) {
  return Filters().count(name) > 0;
}
bool IsKnownTest(const std::string& name) {
  return Tests().count(name) > 0;
}

Value ApplyFilter(const std::string& name, const Value& input, CallArgs& args) {
  auto it = Filters().find(name);
  if (it == Filters().end()) throw JinjaError("No filter named '" + name + "'.");
  return it->second(input, args);
}

bool ApplyTest(const std::string& name, const Value& v, CallArgs& a) {
  auto arg0 = [&]() -> const Value& {
    if (a.positional.empty()) throw JinjaError("test '" + name + "' needs an argument");
    return a.positional[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable" || name == "sequence")
    return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  if (name == "callable") return v.is_callable();
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    CallArgs none;
    return StrMethod(SoftStr(v), name == "lower" ? "islower" : "isupper", none).as_bool();
  }
  if (name == "odd" || name == "even") {
    int64_t x = NeedInt(v, name);
    return (((x % 2) + 2) % 2 == 1) == (name == "odd");
  }
  if (name == "divisibleby") {
    int64_t d = NeedInt(arg0(), "divisibleby");
    if (d == 0) throw JinjaError("integer division or modulo by zero");
    return NeedInt(v, "divisibleby") % d == 0;
  }
  if (name == "eq" || name == "equalto") return PyEquals(v, arg0());
  if (name == "ne") return !PyEquals(v, arg0());
  if (name == "lt" || name == "lessthan") return PyCompare(v, arg0(), "<") < 0;
  if (name == "le") return PyCompare(v, arg0(), "<=") <= 0;
  if (name == "gt" || name == "greaterthan") return PyCompare(v, arg0(), ">") > 0;
  if (name == "ge") return PyCompare(v, arg0(), ">=") >= 0;
  if (name == "in") {
    const Value& seq = arg0();
    if (seq.is_string()) return v.is_string() && seq.str().find(v.str()) != std::string::npos;
    if (seq.is_dict()) return seq.dict().Find(v) != nullptr;
    for (const auto& x : Iterate(seq))
      if (PyEquals(x, v)) return true;
    return false;
  }
  if (name == "sameas") {
    const Value& o = arg0();
    if (v.kind() != o.kind()) return false;
    if (v.is_list()) return &v.list() == &o.list();
    if (v.is_dict()) return &v.dict() == &o.dict();
    return PyEquals(v, o);
  }
  if (name == "filter") return v.is_string() && IsKnownFilter(v.str());
  if (name == "test") return v.is_string() && IsKnownTest(v.str());
  throw JinjaError("No test named '" + name + "'.");
}

Value GetAttr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) FailUndefined(obj);
  if (!name.empty() && name[0] == '_') return Unsafe(obj, name);
  switch (obj.kind()) {
    case Value::Kind::kDict: {
      if (IsDictMethod(name)) return DictMethod(obj, name);
      if (IsUnsafeDictMethod(name)) return Unsafe(obj, name);
      const Value* v = obj.dict().Find(name);
      return v ? *v : MissingAttr(obj, name);
    }
    case Value::Kind::kNamespace: {
      const Value* v = obj.ns().Find(name);
      return v ? *v : MissingAttr(obj, name);
    }
    case Value::Kind::kString: {
      if (IsStrMethod(name)) {
        std::string s = obj.str();
        return BoundMethod(name, [s, name](CallArgs& a) { return StrMethod(s, name, a); });
      }
      return MissingAttr(obj, name);
    }
    case Value::Kind::kList: {
      if (!obj.is_tuple() && IsUnsafeListMethod(name)) return Unsafe(obj, name);
      if (name == "index" || name == "count") {
        return BoundMethod(name, [obj, name](CallArgs& a) {
          if (a.positional.empty()) throw JinjaError(name + "() takes exactly one argument");
          const auto& items = obj.list().items;
          int64_t n = 0;
          for (size_t i = 0; i < items.size(); ++i) {
            if (PyEquals(items[i], a.positional[0])) {
              if (name == "index") return Value(static_cast<int64_t>(i));
              ++n;
            }
          }
          if (name == "index") throw JinjaError(a.positional[0].Repr() + " is not in list");
          return Value(n);
        });
      }
      return MissingAttr(obj, name);
    }
    default:
      return MissingAttr(obj, name);
  }
}

Value GetItem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) FailUndefined(obj);
  switch (obj.kind()) {
    case Value::Kind::kList:
    case Value::Kind::kString: {
      if (key.is_int() || key.is_bool()) {
        int64_t i = key.as_int();
        if (obj.is_list()) {
          int64_t n = static_cast<int64_t>(obj.list().items.size());
          if (i < 0) i += n;
          if (i < 0 || i >= n)
            return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no element " + key.Repr());
          return obj.list().items[static_cast<size_t>(i)];
        }
        std::vector<char32_t> cps = DecodeUtf8(obj.str());
        int64_t n = static_cast<int64_t>(cps.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n)
          return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no element " + key.Repr());
        std::string s;
        AppendUtf8(cps[static_cast<size_t>(i)], &s);
        return Value(s);
      }
      if (key.is_string()) return GetAttr(obj, key.str());
      return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no element " + key.Repr());
    }
    case Value::Kind::kDict: {
      const Value* v = obj.dict().Find(key);
      if (v) return *v;
      if (key.is_string()) {
        if (IsDictMethod(key.str())) return DictMethod(obj, key.str());
        return MissingAttr(obj, key.str());
      }
      return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no element " + key.Repr());
    }
    default:
      if (key.is_string()) return GetAttr(obj, key.str());
      return Value::Undefined("'" + ObjectTypeRepr(obj) + "' has no element " + key.Repr());
  }
}

Value GetSlice(const Value& obj, const Value* start, const Value* stop, const Value* step) {
  if (obj.is_undefined()) FailUndefined(obj);
  auto opt = [](const Value* v) -> const Value* { return (v && !v->is_none()) ? v : nullptr; };
  start = opt(start);
  stop = opt(stop);
  step = opt(step);
  int64_t st = step ? NeedInt(*step, "slice step") : 1;
  if (st == 0) throw JinjaError("slice step cannot be zero");
  std::vector<Value> items;
  std::vector<char32_t> cps;
  int64_t len;
  if (obj.is_string()) {
    cps = DecodeUtf8(obj.str());
    len = static_cast<int64_t>(cps.size());
  } else if (obj.is_list()) {
    len = static_cast<int64_t>(obj.list().items.size());
  } else {
    throw JinjaError("'" + obj.TypeName() + "' object is not subscriptable");
  }
  auto adjust = [&](const Value* v, bool is_start) -> int64_t {
    if (!v) return st < 0 ? (is_start ? len - 1 : -1) : (is_start ? 0 : len);
    int64_t i = NeedInt(*v, "slice index");
    if (i < 0) {
      i += len;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= len) {
      i = st < 0 ? len - 1 : len;
    }
    return i;
  };
  int64_t b = adjust(start, true), e = adjust(stop, false);
  std::vector<size_t> idx;
  if (st > 0) {
    for (int64_t i = b; i < e; i += st) idx.push_back(static_cast<size_t>(i));
  } else {
    for (int64_t i = b; i > e; i += st) idx.push_back(static_cast<size_t>(i));
  }
  if (obj.is_string()) {
    std::string out;
    for (size_t i : idx) AppendUtf8(cps[i], &out);
    return Value(out);
  }
  for (size_t i : idx) items.push_back(obj.list().items[i]);
  return obj.is_tuple() ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
}

Value GetGlobal(const std::string& name) {
  if (name == "range") {
    return Value::Function("range", [](CallArgs& a) {
      if (!a.keyword.empty()) throw JinjaError("range() takes no keyword arguments");
      if (a.positional.empty() || a.positional.size() > 3)
        throw JinjaError("range expected 1 to 3 arguments");
      int64_t start = 0, stop, step = 1;
      if (a.positional.size() == 1) {
        stop = NeedInt(a.positional[0], "range");
      } else {
        start = NeedInt(a.positional[0], "range");
        stop = NeedInt(a.positional[1], "range");
        if (a.positional.size() == 3) step = NeedInt(a.positional[2], "range");
      }
      if (step == 0) throw JinjaError("range() arg 3 must not be zero");
      std::vector<Value> out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (static_cast<int64_t>(out.size()) >= kMaxRange)
          throw JinjaError(
              "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        out.emplace_back(i);
      }
      return Value::List(std::move(out));
    });
  }
  if (name == "namespace" || name == "dict") {
    bool ns = name == "namespace";
    return Value::Function(name, [ns](CallArgs& a) {
      Value out = ns ? Value::Namespace() : Value::Dict();
      auto set = [&](const std::string& k, const Value& v) {
        if (ns) {
          out.ns().Set(k, v);
        } else {
          out.dict().Set(Value(k), v);
        }
      };
      for (const auto& p : a.positional) {
        if (!p.is_dict())
          throw JinjaError(std::string(ns ? "namespace" : "dict") +
                           "() positional argument must be a mapping");
        for (const auto& [k, v] : p.dict().items) set(k.ToStr(), v);
      }
      for (const auto& [k, v] : a.keyword) set(k, v);
      return out;
    });
  }
  if (name == "raise_exception") {
    return Value::Function("raise_exception", [](CallArgs& a) -> Value {
      const Value* m = Arg(a, 0, "message");
      throw JinjaError(m ? m->ToStr() : std::string("raise_exception() called"));
    });
  }
  if (name == "strftime_now") {
    return Value::Function("strftime_now", [](CallArgs& a) {
      const Value* f = Arg(a, 0, "format");
      if (!f) throw JinjaError("strftime_now() missing required argument 'format'");
      std::string fmt = NeedStr(*f, "strftime_now format");
      std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      std::string buf(256 + fmt.size() * 8, '\0');
      size_t n = fmt.empty() ? 0 : std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
      buf.resize(n);
      return Value(buf);
    });
  }
  return Value::Undefined("'" + name + "' is undefined");
}

}  // namespace c8::jinja
