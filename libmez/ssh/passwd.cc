#include "libmez/ssh/passwd.h"

#include <grp.h>
#include <pwd.h>

#include <vector>

namespace mez::ssh {

Result<LoginUser> LookUpLogin(const std::string& login) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  int err = getpwnam_r(login.c_str(), &pw, buf.data(), buf.size(), &found);
  if (err != 0) return ErrnoStatus("getpwnam", err);
  if (found == nullptr) {
    return NotFound("the login \"" + login +
                    "\" does not exist on this host (no passwd entry)");
  }
  LoginUser user;
  user.name = pw.pw_name;
  user.uid = pw.pw_uid;
  user.gid = pw.pw_gid;
  user.home = pw.pw_dir != nullptr ? pw.pw_dir : "";
  user.shell =
      pw.pw_shell != nullptr && pw.pw_shell[0] == '/' ? pw.pw_shell : "/bin/sh";
  return user;
}

Result<std::string> UserNameOf(uid_t uid) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 ||
      found == nullptr) {
    return FailedPrecondition("ssh server: no passwd entry for uid " +
                              std::to_string(uid));
  }
  return std::string(pw.pw_name);
}

gid_t TtyGroup(gid_t fallback) {
  struct group gr;
  struct group* found = nullptr;
  std::vector<char> buf(16384);
  if (getgrnam_r("tty", &gr, buf.data(), buf.size(), &found) == 0 &&
      found != nullptr) {
    return gr.gr_gid;
  }
  return fallback;
}

}  // namespace mez::ssh
