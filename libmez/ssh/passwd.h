// The passwd and group database lookups behind LocalLoginPolicy (mezd's
// logins are local accounts). Thread-safe (the reentrant get*_r calls).
#ifndef MEZ_SSH_PASSWD_H_
#define MEZ_SSH_PASSWD_H_

#include <sys/types.h>

#include <string>

#include "libmez/util/status.h"

namespace mez::ssh {

// A login's passwd entry, as the session's program gets it.
struct LoginUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
  std::string shell;  // "/bin/sh" when passwd has none or a relative one
};

// kNotFound, saying so to the user, when `login` has no passwd entry.
Result<LoginUser> LookUpLogin(const std::string& login);

// The name of the account `uid`, or kFailedPrecondition
// ("ssh server: no passwd entry for uid N").
Result<std::string> UserNameOf(uid_t uid);

// The "tty" group's id, or `fallback` when there is none.
gid_t TtyGroup(gid_t fallback);

}  // namespace mez::ssh

#endif  // MEZ_SSH_PASSWD_H_
