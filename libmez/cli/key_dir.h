// The private directories msh ssh keeps a run's key, certificate and
// known_hosts in: $HOME/.mez/keys/ssh-XXXXXX, removed when ssh exits, and
// swept once stale when a killed run left one behind.
#ifndef MEZ_CLI_KEY_DIR_H_
#define MEZ_CLI_KEY_DIR_H_

#include <string>

#include "libmez/util/status.h"

namespace mez::cli {

// A fresh private directory $HOME/.mez/keys/ssh-XXXXXX (0700). Directories
// of this user's earlier runs older than 15 minutes (their certificates
// have expired) are removed first; a failure there is printed, not fatal.
// kFailedPrecondition when HOME is not set.
Result<std::string> MakeKeyDir();

// Removes the key directory `path` made by MakeKeyDir: the files msh ssh
// writes into it, then the directory. A directory holding anything else
// is left exactly as it is (kFailedPrecondition naming the entry).
Status RemoveKeyDirPath(const std::string& path);

}  // namespace mez::cli

#endif  // MEZ_CLI_KEY_DIR_H_
