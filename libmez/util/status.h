// Status and Result<T>: errors are values. No exception crosses a libmez API.
#ifndef MEZ_UTIL_STATUS_H_
#define MEZ_UTIL_STATUS_H_

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace mez {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // The caller's input is malformed.
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kUnauthenticated,
  kFailedPrecondition,
  kOutOfRange,
  kDataLoss,  // Stored bytes are corrupt, truncated or tampered with.
  kUnavailable,
  kInternal,
  kIoError,
};

std::string_view CodeName(Code code);

// [[nodiscard]]: a Status or Result that is dropped does not compile
// (warnings are errors); use it, or say so with IgnoreError().
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: message", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "context: message".
  Status WithContext(std::string_view context) const;

  // Drops the status on purpose: for a second failure on a path that
  // already fails or reports the first one, or a best-effort step.
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return Status(Code::kInvalidArgument, std::move(m));
}
inline Status NotFound(std::string m) {
  return Status(Code::kNotFound, std::move(m));
}
inline Status DataLoss(std::string m) {
  return Status(Code::kDataLoss, std::move(m));
}
inline Status IoError(std::string m) {
  return Status(Code::kIoError, std::move(m));
}
inline Status Internal(std::string m) {
  return Status(Code::kInternal, std::move(m));
}
inline Status FailedPrecondition(std::string m) {
  return Status(Code::kFailedPrecondition, std::move(m));
}
inline Status PermissionDenied(std::string m) {
  return Status(Code::kPermissionDenied, std::move(m));
}

// Status from errno: "what: strerror(errno)".
Status ErrnoStatus(std::string_view what, int err);

[[noreturn]] void CheckFailed(const char* file, int line, const char* expr);

// Aborts on programmer error only; never on bad input.
#define MEZ_CHECK(cond) \
  ((cond) ? (void)0 : ::mez::CheckFailed(__FILE__, __LINE__, #cond))

// A value or an error. Accessing value() of an error is a programmer error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    MEZ_CHECK(!status_.ok());
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    MEZ_CHECK(ok());
    return *value_;
  }
  const T& value() const& {
    MEZ_CHECK(ok());
    return *value_;
  }
  T&& value() && {
    MEZ_CHECK(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace mez

#define MEZ_CONCAT_INNER(a, b) a##b
#define MEZ_CONCAT(a, b) MEZ_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when it is not ok.
#define MEZ_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::mez::Status mez_status_ = (expr);        \
    if (!mez_status_.ok()) return mez_status_; \
  } while (0)

#define MEZ_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

// MEZ_ASSIGN_OR_RETURN(auto x, Fn()) binds x or returns Fn()'s error.
#define MEZ_ASSIGN_OR_RETURN(lhs, expr) \
  MEZ_ASSIGN_OR_RETURN_IMPL(MEZ_CONCAT(mez_result_, __LINE__), lhs, expr)

#endif  // MEZ_UTIL_STATUS_H_
