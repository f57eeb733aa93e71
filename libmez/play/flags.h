// The values `msh play` takes on its command line, in the forms asciinema
// and tsh users type them. Errors are kInvalidArgument naming what is
// expected, never a range of 300 digits.
#ifndef MEZ_PLAY_FLAGS_H_
#define MEZ_PLAY_FLAGS_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "libmez/util/status.h"

namespace mez::play {

inline constexpr double kMaxStartSpeed = 1000;

// "2", "0.5", "2x", "1.5X": a factor above 0 and at most kMaxStartSpeed.
Result<double> ParseSpeed(std::string_view text);

// An idle limit: a bare number of seconds ("2", "0.5", as asciinema's
// idle_time_limit), a duration with its unit ("500ms", "1m"), or "off"
// (kNoIdleLimit: every pause kept, whatever the header says).
Result<int64_t> ParseIdleLimit(std::string_view text);

// Where playback starts: a time (bare seconds or a duration, "90", "1m30s")
// or a percentage of the recording ("50%").
struct StartAt {
  std::optional<int64_t> time_us;
  std::optional<double> percent;  // 0..100.
};
Result<StartAt> ParseStartAt(std::string_view text);

}  // namespace mez::play

#endif  // MEZ_PLAY_FLAGS_H_
