// Path handling for names that come from untrusted input. Every path that
// reaches the filesystem under a storage root is built with SafeJoin.
#ifndef MEZ_UTIL_PATH_H_
#define MEZ_UTIL_PATH_H_

#include <string>
#include <string_view>

#include "libmez/util/status.h"

namespace mez {

// Longest single path component accepted (Linux NAME_MAX).
inline constexpr size_t kMaxComponent = 255;

// Checks one path component: non-empty, at most kMaxComponent bytes, no '/',
// no NUL, not "." or "..". `what` names the value in the error message.
Status ValidateComponent(std::string_view name, std::string_view what);

// True for a "plain identifier": 1..128 bytes of [A-Za-z0-9._-], not
// starting with '.' or '-'. Session ids, connection ids and usernames are
// plain identifiers.
bool IsPlainIdentifier(std::string_view s);

// Joins `rel` (a relative path of validated components) under `base`.
// Refuses absolute paths, empty components, ".", "..", NUL bytes, over-long
// components, and any existing symlink between `base` and the result (so a
// symlink planted inside the storage tree cannot redirect a write outside).
// `base` itself may be or contain symlinks: it is trusted configuration.
Result<std::string> SafeJoin(std::string_view base, std::string_view rel);

// Creates `rel`'s directories under `base` (mode 0750), refusing symlinks
// like SafeJoin. Returns the joined path.
Result<std::string> SafeMakeDirs(std::string_view base, std::string_view rel);

}  // namespace mez

#endif  // MEZ_UTIL_PATH_H_
