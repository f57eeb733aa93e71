// Clocks. Recording times come from a monotonic clock so that wall-clock
// steps (NTP, manual changes) never make event times go backwards. Tests
// substitute FakeClock.
#ifndef MEZ_UTIL_CLOCK_H_
#define MEZ_UTIL_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace mez {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds on a monotonic clock with an arbitrary origin.
  virtual int64_t MonotonicMicros() = 0;
  // Microseconds since the Unix epoch (wall clock; may step).
  virtual int64_t WallMicros() = 0;
};

// The process-wide real clock. Thread-safe.
Clock* RealClock();

// A clock that moves only when told to. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_micros = 1'700'000'000'000'000)
      : mono_(0), wall_(start_micros) {}
  int64_t MonotonicMicros() override { return mono_.load(); }
  int64_t WallMicros() override { return wall_.load(); }
  void Advance(int64_t micros) {
    mono_ += micros;
    wall_ += micros;
  }
  // Steps only the wall clock (as NTP would).
  void StepWall(int64_t micros) { wall_ += micros; }

 private:
  std::atomic<int64_t> mono_;
  std::atomic<int64_t> wall_;
};

}  // namespace mez

#endif  // MEZ_UTIL_CLOCK_H_
