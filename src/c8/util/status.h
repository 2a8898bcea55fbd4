// Error values: every fallible function returns Status or Result<T>.
// Messages name the file, tensor, key or field at fault.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace c8 {

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string message) {
    Status s;
    s.message_ = std::move(message);
    s.ok_ = false;
    return s;
  }
  bool ok() const { return ok_; }
  const std::string& message() const { return message_; }
  // Prefix the message with context ("loading model.safetensors: ...").
  Status WithContext(const std::string& ctx) const {
    return ok_ ? *this : Error(ctx + ": " + message_);
  }

 private:
  bool ok_ = true;
  std::string message_;
};

inline Status Error(std::string message) {
  return Status::Error(std::move(message));
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: must be an error
  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  Status status() const { return ok() ? Status::Ok() : std::get<1>(v_); }
  const std::string& message() const {
    static const std::string empty;
    return ok() ? empty : std::get<1>(v_).message();
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace c8

#define C8_CONCAT_INNER(a, b) a##b
#define C8_CONCAT(a, b) C8_CONCAT_INNER(a, b)

// Return early from a function returning Status/Result when `expr` (a Status) fails.
#define C8_RETURN_IF_ERROR(expr)     \
  do {                               \
    ::c8::Status _c8_st = (expr);    \
    if (!_c8_st.ok()) return _c8_st; \
  } while (0)

// `C8_ASSIGN_OR_RETURN(auto x, FnReturningResult());`
#define C8_ASSIGN_OR_RETURN(lhs, expr) \
  C8_ASSIGN_OR_RETURN_IMPL(C8_CONCAT(_c8_r, __LINE__), lhs, expr)
#define C8_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
