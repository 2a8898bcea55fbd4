// Runtime values of the Jinja interpreter, modelled on the Python objects
// jinja2 works with: Undefined, None, bool, int (64-bit), float, str (UTF-8),
// list/tuple, dict (insertion-ordered), namespace() objects and callables.
// Lists, dicts and namespaces are shared by reference like Python objects.
//
// Evaluation errors inside the jinja_* files are raised as JinjaError and
// turned into c8::Status at the Template boundary (jinja_interpreter.h); no
// exception leaves the public API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace c8::jinja {

// Internal evaluation/syntax error; never escapes Template::Parse/Render.
class JinjaError : public std::runtime_error {
 public:
  explicit JinjaError(const std::string& msg) : std::runtime_error(msg) {}
};

class Value;
struct ListData;
struct DictData;
struct NamespaceData;
struct Callable;

// Positional and keyword arguments of a call.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kCallable
  };

  Value() = default;  // Undefined
  static Value Undefined(std::string hint = "");
  static Value None();
  Value(bool b);                                    // NOLINT
  Value(int64_t i);                                 // NOLINT
  Value(int i) : Value(static_cast<int64_t>(i)) {}  // NOLINT
  Value(double d);                                  // NOLINT
  Value(std::string s);                             // NOLINT
  Value(const char* s) : Value(std::string(s)) {}   // NOLINT
  static Value List(std::vector<Value> items = {});
  static Value Tuple(std::vector<Value> items);
  static Value Dict();
  static Value Namespace();
  static Value Function(std::string name, std::function<Value(CallArgs&)> fn);
  static Value FromJson(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const {
    return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool;
  }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }  // list or tuple
  bool is_tuple() const;
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }  // bool is an int
  double as_double() const { return kind_ == Kind::kFloat ? d_ : static_cast<double>(as_int()); }
  const std::string& str() const { return *s_; }
  ListData& list() const { return *list_; }
  DictData& dict() const { return *dict_; }
  NamespaceData& ns() const { return *ns_; }
  Callable& callable() const { return *fn_; }
  // For Undefined: what was looked up ("'x' is undefined").
  const std::string& undefined_hint() const;

  // Python truthiness.
  bool Truthy() const;
  // Python type name as in error messages: 'str', 'int', 'NoneType', 'dict', ...
  std::string TypeName() const;
  // str(value) as Python prints it ({{ value }}); Undefined -> "".
  std::string ToStr() const;
  // repr(value).
  std::string Repr() const;
  // json.dumps(value, ensure_ascii, indent, separators, sort_keys) like transformers' tojson.
  // `indent` empty = no indentation (inline); otherwise the indent string per level.
  std::string ToJson(bool ensure_ascii, const std::string* indent, const std::string& item_sep,
                     const std::string& key_sep, bool sort_keys) const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  std::shared_ptr<std::string> s_;  // string, or the undefined hint
  std::shared_ptr<ListData> list_;
  std::shared_ptr<DictData> dict_;
  std::shared_ptr<NamespaceData> ns_;
  std::shared_ptr<Callable> fn_;
};

struct ListData {
  std::vector<Value> items;
  bool tuple = false;
};

// Insertion-ordered dict (Python dict); keys are Values compared with Python ==.
struct DictData {
  std::vector<std::pair<Value, Value>> items;
  const Value* Find(const Value& key) const;
  const Value* Find(const std::string& key) const;
  void Set(const Value& key, Value v);
};

struct NamespaceData {
  std::vector<std::pair<std::string, Value>> attrs;
  const Value* Find(const std::string& key) const;
  void Set(const std::string& key, Value v);
};

struct Callable {
  std::string name;
  std::function<Value(CallArgs&)> fn;
};

// Python ==.
bool PyEquals(const Value& a, const Value& b);
// Python <; raises JinjaError for unorderable types. Returns -1/0/1.
int PyCompare(const Value& a, const Value& b, const char* op);
// The items Python iteration yields (list items, dict keys, string characters);
// Undefined yields nothing. Raises for non-iterables.
std::vector<Value> Iterate(const Value& v);
// len(v); raises for values without a length.
int64_t PyLen(const Value& v);

}  // namespace c8::jinja
