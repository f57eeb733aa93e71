// Base64 (RFC 4648, standard alphabet, padded) and lowercase hex.
#ifndef MEZ_UTIL_ENCODING_H_
#define MEZ_UTIL_ENCODING_H_

#include <string>
#include <string_view>

#include "libmez/util/status.h"

namespace mez {

std::string Base64Encode(std::string_view data);
// Appends the encoding of `data` to `out` (no intermediate string).
void Base64EncodeTo(std::string_view data, std::string* out);
// Strict: padding required, no whitespace, no other alphabet.
Result<std::string> Base64Decode(std::string_view text);

std::string HexEncode(std::string_view data);
// Accepts upper and lower case; odd length or other characters are errors.
Result<std::string> HexDecode(std::string_view text);

}  // namespace mez

#endif  // MEZ_UTIL_ENCODING_H_
