// Names the calling thread, as `top -H`, `ps -L` and perf show it, so that
// an operator can tell a session's threads from gRPC's and the pools'.
#ifndef MEZ_UTIL_THREAD_NAME_H_
#define MEZ_UTIL_THREAD_NAME_H_

#include <string>
#include <string_view>

namespace mez {

// Linux keeps 15 bytes of a name; longer names are cut to that.
inline constexpr size_t kMaxThreadName = 15;

void NameThisThread(std::string_view name);

// The calling thread's name ("" if it cannot be read).
std::string ThisThreadName();

}  // namespace mez

#endif  // MEZ_UTIL_THREAD_NAME_H_
