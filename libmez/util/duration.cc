#include "libmez/util/duration.h"

#include <limits>

namespace mez {
namespace {

struct Unit {
  std::string_view name;
  int64_t micros;
};
// Longest names first so "ms" is not read as "m".
constexpr Unit kUnits[] = {
    {"us", 1},         {"ms", 1000},         {"s", 1'000'000},
    {"m", 60'000'000}, {"h", 3'600'000'000}, {"d", 86'400'000'000}};

}  // namespace

Result<int64_t> ParseDuration(std::string_view text) {
  std::string shown(text.substr(0, 40));
  auto bad = [&](const std::string& why) {
    return InvalidArgument("invalid duration '" + shown + "': " + why +
                           " (examples: 500ms, 30s, 5m, 24h, 7d, 1h30m)");
  };
  if (text.empty()) return bad("empty");
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > std::numeric_limits<int64_t>::max() / 10 - 10) {
        return bad("too large");
      }
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    if (i == start) return bad("expected a number");
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (text.substr(i, u.name.size()) == u.name) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return bad("missing or unknown unit");
    i += unit->name.size();
    if (n > (std::numeric_limits<int64_t>::max() - total) / unit->micros) {
      return bad("too large");
    }
    total += n * unit->micros;
  }
  return total;
}

std::string FormatDuration(int64_t micros) {
  if (micros == 0) return "0s";
  std::string out;
  if (micros < 0) {
    out = "-";
    micros = -micros;
  }
  constexpr Unit kDescending[] = {{"d", 86'400'000'000}, {"h", 3'600'000'000},
                                  {"m", 60'000'000},     {"s", 1'000'000},
                                  {"ms", 1000},          {"us", 1}};
  for (const Unit& u : kDescending) {
    if (micros >= u.micros) {
      out += std::to_string(micros / u.micros);
      out += u.name;
      micros %= u.micros;
    }
  }
  return out;
}

}  // namespace mez
