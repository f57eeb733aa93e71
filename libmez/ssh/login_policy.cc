#include "libmez/ssh/login_policy.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

namespace mez::ssh {
namespace {

constexpr char kJumpHostRefusal[] = "this server is a jump host (use ssh -J)";

// A local account's sessions: its programs, started after the tap.
class LocalLogin : public Login {
 public:
  LocalLogin(LoginUser user, bool change_user)
      : user_(std::move(user)), change_user_(change_user) {}

  std::string SessionRefusal() const override { return ""; }
  Result<std::unique_ptr<Program>> Launch(const SessionRequest&) override {
    return std::unique_ptr<Program>();
  }
  Result<std::unique_ptr<Program>> Spawn(
      const SessionRequest& request) override {
    MEZ_ASSIGN_OR_RETURN(
        std::unique_ptr<ChildProcess> child,
        ChildProcess::Spawn(LocalSessionSpec(user_, change_user_, request)));
    return std::unique_ptr<Program>(std::move(child));
  }

 private:
  LoginUser user_;
  bool change_user_;
};

// Forwarding only.
class JumpHostLogin : public Login {
 public:
  std::string SessionRefusal() const override { return kJumpHostRefusal; }
  Result<std::unique_ptr<Program>> Launch(const SessionRequest&) override {
    return FailedPrecondition(kJumpHostRefusal);
  }
  Result<std::unique_ptr<Program>> Spawn(const SessionRequest&) override {
    return FailedPrecondition(kJumpHostRefusal);
  }
};

// Sessions bridged to the node behind: made before the tap, started after.
class BridgeLogin : public Login {
 public:
  explicit BridgeLogin(ProgramLauncher launch) : launch_(std::move(launch)) {}

  std::string SessionRefusal() const override { return ""; }
  Result<std::unique_ptr<Program>> Launch(
      const SessionRequest& request) override {
    std::vector<std::string> env = request.env;
    if (request.info.pty && !request.info.term.empty()) {
      env.push_back("TERM=" + request.info.term);
    }
    MEZ_ASSIGN_OR_RETURN(std::unique_ptr<Program> program,
                         launch_(request.info, env));
    if (!program) return Internal("the bridge made no program");
    return program;
  }
  Result<std::unique_ptr<Program>> Spawn(const SessionRequest&) override {
    return Internal("the bridge starts no local program");
  }

 private:
  ProgramLauncher launch_;
};

}  // namespace

std::string LoginPolicy::Principal(const std::string& login,
                                   const auth::SshCert&) const {
  return login;
}

LocalLoginPolicy::LocalLoginPolicy(std::string server_user, bool is_root)
    : server_user_(std::move(server_user)), is_root_(is_root) {}

Result<std::shared_ptr<LocalLoginPolicy>> LocalLoginPolicy::ForThisProcess() {
  uid_t uid = geteuid();
  MEZ_ASSIGN_OR_RETURN(std::string user, UserNameOf(uid));
  return std::make_shared<LocalLoginPolicy>(std::move(user), uid == 0);
}

Result<std::unique_ptr<Login>> LocalLoginPolicy::Admit(
    const std::string& login, const auth::SshCert&) const {
  if (!is_root_ && login != server_user_) {
    return PermissionDenied("mezd runs as " + server_user_ +
                            " and can only start sessions for " + server_user_ +
                            ", not for " + login +
                            "; run mezd as root to allow other logins");
  }
  MEZ_ASSIGN_OR_RETURN(LoginUser user, LookUpLogin(login));
  return std::unique_ptr<Login>(
      std::make_unique<LocalLogin>(std::move(user), is_root_));
}

std::string LocalLoginPolicy::Describe(const std::string&) const { return ""; }

ChildSpec LocalSessionSpec(const LoginUser& user, bool change_user,
                           const SessionRequest& request) {
  ChildSpec spec;
  spec.shell = user.shell;
  spec.command = request.info.command;
  spec.home = user.home;
  spec.pty = request.info.pty;
  spec.width = request.width;
  spec.height = request.height;
  spec.before_start = request.track;
  spec.env = {"USER=" + user.name, "LOGNAME=" + user.name, "HOME=" + user.home,
              "SHELL=" + user.shell,
              user.uid == 0
                  ? "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                    "/sbin:/bin"
                  : "PATH=/usr/local/bin:/usr/bin:/bin"};
  if (change_user) {
    spec.change_user = true;
    spec.uid = user.uid;
    spec.gid = user.gid;
    spec.groups = GroupsOfUser(user.name, user.gid);
    spec.tty_gid = TtyGroup(user.gid);
  }
  if (request.info.pty && !request.info.term.empty()) {
    spec.env.push_back("TERM=" + request.info.term);
  }
  spec.env.insert(spec.env.end(), request.env.begin(), request.env.end());
  return spec;
}

std::string JumpHostLoginPolicy::Principal(const std::string& login,
                                           const auth::SshCert& cert) const {
  // The principals name logins on the nodes behind, not on the jump host:
  // the Mezite user name (the key id) stands for the first of them.
  if (login == cert.key_id && !cert.principals.empty() &&
      std::find(cert.principals.begin(), cert.principals.end(), login) ==
          cert.principals.end()) {
    return cert.principals.front();
  }
  return login;
}

Result<std::unique_ptr<Login>> JumpHostLoginPolicy::Admit(
    const std::string&, const auth::SshCert&) const {
  return std::unique_ptr<Login>(std::make_unique<JumpHostLogin>());
}

std::string JumpHostLoginPolicy::Describe(const std::string&) const {
  return " on the jump host";
}

BridgeLoginPolicy::BridgeLoginPolicy(ProgramLauncher launch)
    : launch_(std::move(launch)) {}

Result<std::unique_ptr<Login>> BridgeLoginPolicy::Admit(
    const std::string&, const auth::SshCert&) const {
  return std::unique_ptr<Login>(std::make_unique<BridgeLogin>(launch_));
}

std::string BridgeLoginPolicy::Describe(const std::string& target) const {
  return " for " + (target.empty() ? std::string("?") : target);
}

}  // namespace mez::ssh
