#include "libmez/play/flags.h"

#include <charconv>
#include <cmath>
#include <string>

#include "libmez/play/timing.h"
#include "libmez/util/duration.h"

namespace mez::play {
namespace {

// A plain decimal number ("2", "0.5", "1e3"), the whole of `text`.
std::optional<double> Number(std::string_view text) {
  if (text.empty() || text.front() == '+') return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

std::string Quoted(std::string_view text) {
  constexpr size_t kShown = 40;
  if (text.size() > kShown)
    return "'" + std::string(text.substr(0, kShown)) + "...'";
  return "'" + std::string(text) + "'";
}

// Bare seconds or a duration with a unit, at most a year.
Result<int64_t> Seconds(std::string_view text, const char* what) {
  constexpr double kMaxSeconds = 366.0 * 24 * 3600;
  if (auto v = Number(text)) {
    if (*v < 0)
      return InvalidArgument(std::string(what) + " must not be negative");
    if (*v > kMaxSeconds)
      return InvalidArgument(Quoted(text) + " is over a year");
    return std::llround(*v * 1e6);
  }
  auto d = ParseDuration(text);
  if (!d.ok()) {
    return InvalidArgument(Quoted(text) + " is not " + what +
                           " (seconds, e.g. 2 or 0.5, or a duration with a "
                           "unit, e.g. 500ms, 1m30s)");
  }
  if (*d > static_cast<int64_t>(kMaxSeconds * 1e6)) {
    return InvalidArgument(Quoted(text) + " is over a year");
  }
  return *d;
}

}  // namespace

Result<double> ParseSpeed(std::string_view text) {
  std::string_view digits = text;
  if (!digits.empty() && (digits.back() == 'x' || digits.back() == 'X')) {
    digits.remove_suffix(1);
  }
  auto v = Number(digits);
  if (!v.has_value() || *v <= 0) {
    return InvalidArgument(Quoted(text) +
                           " is not a speed (a number above 0, e.g. 2, 0.5 "
                           "or 2x)");
  }
  if (*v > kMaxStartSpeed) {
    return InvalidArgument(Quoted(text) + " is too fast (at most 1000x)");
  }
  return *v;
}

Result<int64_t> ParseIdleLimit(std::string_view text) {
  if (text == "off" || text == "none") return kNoIdleLimit;
  return Seconds(text, "an idle limit");
}

Result<StartAt> ParseStartAt(std::string_view text) {
  StartAt at;
  if (!text.empty() && text.back() == '%') {
    auto v = Number(text.substr(0, text.size() - 1));
    if (!v.has_value() || *v < 0 || *v > 100) {
      return InvalidArgument(Quoted(text) +
                             " is not a percentage (0% to 100%)");
    }
    at.percent = *v;
    return at;
  }
  MEZ_ASSIGN_OR_RETURN(at.time_us, Seconds(text, "a time"));
  return at;
}

}  // namespace mez::play
