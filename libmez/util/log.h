// Minimal leveled logging to stderr: one line per message, with a UTC
// timestamp and level, so operators can grep and ship logs. Thread-safe.
#ifndef MEZ_UTIL_LOG_H_
#define MEZ_UTIL_LOG_H_

#include <sstream>
#include <string>

namespace mez {

enum class LogLevel { kDebug = 0, kInfo, kWarning, kError };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void LogLine(LogLevel level, const std::string& message);

namespace internal {
// Turns the stream expression into void for the ?: in MEZ_LOG.
struct Voidify {
  void operator&(std::ostream&) {}
};

class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { LogLine(level_, stream_.str()); }
  std::ostringstream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace mez

// MEZ_LOG(kInfo) << "text " << value;  An expression, so it is safe as the
// body of an unbraced if.
#define MEZ_LOG(level)                            \
  (::mez::LogLevel::level < ::mez::GetLogLevel()) \
      ? (void)0                                   \
      : ::mez::internal::Voidify() &              \
            ::mez::internal::LogMessage(::mez::LogLevel::level).stream()

#endif  // MEZ_UTIL_LOG_H_
