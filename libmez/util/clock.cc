#include "libmez/util/clock.h"

#include <time.h>

namespace mez {
namespace {

int64_t ReadClock(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

class SystemClock : public Clock {
 public:
  int64_t MonotonicMicros() override { return ReadClock(CLOCK_MONOTONIC); }
  int64_t WallMicros() override { return ReadClock(CLOCK_REALTIME); }
};

}  // namespace

Clock* RealClock() {
  static SystemClock clock;
  return &clock;
}

}  // namespace mez
