#include "libmez/util/byte_size.h"

namespace mez {

Result<uint64_t> ParseByteSize(std::string_view text) {
  auto bad = [&] {
    return InvalidArgument("a size looks like 4096, 512K, 100M or 1G, not \"" +
                           std::string(text) + "\"");
  };
  size_t digits = 0;
  uint64_t value = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    if (value > (UINT64_MAX - 9) / 10) return bad();
    value = value * 10 + static_cast<uint64_t>(text[digits] - '0');
    ++digits;
  }
  if (digits == 0) return bad();
  std::string_view unit = text.substr(digits);
  if (unit == "B" || unit.empty()) return value;
  int shift = 0;
  switch (unit[0]) {
    case 'K':
    case 'k':
      shift = 10;
      break;
    case 'M':
      shift = 20;
      break;
    case 'G':
      shift = 30;
      break;
    case 'T':
      shift = 40;
      break;
    default:
      return bad();
  }
  std::string_view rest = unit.substr(1);
  if (!rest.empty() && rest != "B" && rest != "iB") return bad();
  if (value > (UINT64_MAX >> shift)) return bad();
  return value << shift;
}

std::string FormatByteSize(uint64_t bytes) {
  static const char kUnits[] = {'T', 'G', 'M', 'K'};
  for (int i = 0; i < 4; ++i) {
    int shift = 40 - 10 * i;
    uint64_t unit = 1ULL << shift;
    if (bytes >= unit && bytes % unit == 0) {
      return std::to_string(bytes >> shift) + kUnits[i];
    }
  }
  return std::to_string(bytes);
}

}  // namespace mez
