// Small file helpers. All return Status; none throws.
#ifndef MEZ_UTIL_FILE_H_
#define MEZ_UTIL_FILE_H_

#include <sys/types.h>

#include <string>
#include <string_view>

#include "libmez/util/status.h"

namespace mez {

// Writes `data` to `path` so that a reader sees either the old content or
// the new one, never a mix: write to a temporary file in the same
// directory, fsync, rename over `path`, fsync the directory. Refuses to
// replace a symlink.
Status AtomicWriteFile(const std::string& path, std::string_view data,
                       mode_t mode = 0640);

// Reads a whole file (meant for small files: keys, configs, test output).
Result<std::string> ReadFile(const std::string& path);

// Writes all of `data` to `fd`, retrying on EINTR and short writes.
Status WriteAll(int fd, std::string_view data);

}  // namespace mez

#endif  // MEZ_UTIL_FILE_H_
