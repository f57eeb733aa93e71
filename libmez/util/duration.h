// Human durations as operators type them: "500ms", "30s", "5m", "24h",
// "7d", and sums like "1h30m".
#ifndef MEZ_UTIL_DURATION_H_
#define MEZ_UTIL_DURATION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "libmez/util/status.h"

namespace mez {

// Parses into microseconds. Units: us, ms, s, m, h, d. A bare number is an
// error (the unit must be explicit). Negative values are errors.
Result<int64_t> ParseDuration(std::string_view text);
// The shortest exact form: 90'000'000 -> "1m30s", 0 -> "0s".
std::string FormatDuration(int64_t micros);

}  // namespace mez

#endif  // MEZ_UTIL_DURATION_H_
