// Presentation times. A recording's events are placed on a "timeline":
// recording time with every gap between consecutive events (and before the
// first) capped at the idle limit. Playing at speed s presents an event at
// timeline / s. Seeking and the status line work in timeline time.
#ifndef MEZ_PLAY_TIMING_H_
#define MEZ_PLAY_TIMING_H_

#include <cmath>
#include <cstdint>
#include <optional>

namespace mez::play {

class Timeline {
 public:
  // `idle_cap_us`: the longest gap kept; nullopt keeps every gap.
  explicit Timeline(std::optional<int64_t> idle_cap_us = std::nullopt)
      : cap_(idle_cap_us) {}

  // Places the next event (recording time `time_us`, never less than the
  // previous one) and returns its timeline time.
  int64_t Place(int64_t time_us) {
    int64_t gap = time_us - last_time_us_;
    if (gap < 0) gap = 0;
    if (cap_.has_value() && gap > *cap_) gap = *cap_;
    pos_us_ += gap;
    last_time_us_ = time_us;
    return pos_us_;
  }

  // The state after the last placed event, to resume from a checkpoint.
  int64_t last_time_us() const { return last_time_us_; }
  int64_t pos_us() const { return pos_us_; }
  void Restore(int64_t last_time_us, int64_t pos_us) {
    last_time_us_ = last_time_us;
    pos_us_ = pos_us;
  }

 private:
  std::optional<int64_t> cap_;
  int64_t last_time_us_ = 0;
  int64_t pos_us_ = 0;
};

// An idle limit that keeps every pause, whatever the header says.
inline constexpr int64_t kNoIdleLimit = INT64_MAX;

// The idle limit in force: one given explicitly (kNoIdleLimit: none) wins
// over the recording header's idle_time_limit.
inline std::optional<int64_t> EffectiveIdleLimit(
    std::optional<int64_t> given, std::optional<int64_t> header) {
  if (given.has_value()) {
    if (*given == kNoIdleLimit) return std::nullopt;
    return given;
  }
  return header;
}

// The time an event at timeline time `timeline_us` is shown at `speed`.
inline int64_t Present(int64_t timeline_us, double speed) {
  return std::llround(static_cast<double>(timeline_us) / speed);
}

}  // namespace mez::play

#endif  // MEZ_PLAY_TIMING_H_
