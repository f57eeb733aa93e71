#include "libmez/util/thread_name.h"

#include <pthread.h>

namespace mez {

void NameThisThread(std::string_view name) {
  std::string cut(name.substr(0, kMaxThreadName));
  // Fails only for a name over 15 bytes, which `cut` never is; a thread
  // without its name works the same.
  (void)pthread_setname_np(pthread_self(), cut.c_str());
}

std::string ThisThreadName() {
  char buf[kMaxThreadName + 1] = {};
  if (pthread_getname_np(pthread_self(), buf, sizeof(buf)) != 0) return "";
  return buf;
}

}  // namespace mez
