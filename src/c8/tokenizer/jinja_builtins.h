// Built-in filters, tests, attribute/item lookup (with Python str/dict/list
// methods) and global functions of the Jinja interpreter, matching jinja2's
// ImmutableSandboxedEnvironment plus the globals transformers adds
// (raise_exception, strftime_now) and its tojson override
// (json.dumps with ensure_ascii=False).
#pragma once

#include <string>

#include "c8/tokenizer/jinja_value.h"

namespace c8::jinja {

bool IsKnownFilter(const std::string& name);
bool IsKnownTest(const std::string& name);

// Applies filter `name` to `input`. Throws JinjaError.
Value ApplyFilter(const std::string& name, const Value& input, CallArgs& args);
// Evaluates test `name` on `input`. Throws JinjaError.
bool ApplyTest(const std::string& name, const Value& input, CallArgs& args);

// obj.name (attribute first, then item), as jinja2's sandboxed getattr.
Value GetAttr(const Value& obj, const std::string& name);
// obj[key] (item first, then attribute for string keys), as jinja2's getitem.
Value GetItem(const Value& obj, const Value& key);
// obj[start:stop:step]; null pointers are omitted parts.
Value GetSlice(const Value& obj, const Value* start, const Value* stop, const Value* step);

// Global functions: range, namespace, dict, raise_exception, strftime_now.
Value GetGlobal(const std::string& name);

// Throws the JinjaError for using an undefined value.
[[noreturn]] void FailUndefined(const Value& v);

}  // namespace c8::jinja
