// Byte sizes as operators type them: "4096", "512K", "100M", "1G", "2T"
// (binary multiples; an optional trailing "B" or "iB", as in "1GiB").
#ifndef MEZ_UTIL_BYTE_SIZE_H_
#define MEZ_UTIL_BYTE_SIZE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "libmez/util/status.h"

namespace mez {

// kInvalidArgument for anything else, and for overflow.
Result<uint64_t> ParseByteSize(std::string_view text);
// The largest exact unit: 1 << 30 -> "1G", 1536 -> "1536".
std::string FormatByteSize(uint64_t bytes);

}  // namespace mez

#endif  // MEZ_UTIL_BYTE_SIZE_H_
