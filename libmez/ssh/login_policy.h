// Who may log in through an SshServer, once the certificate is good, and
// what the session channels of an accepted login run. The server makes the
// certificate checks every policy shares (CA, type, validity, principal,
// critical options, required extensions, then
// SshServerOptions::check_certificate); the policy has the last word on
// the login and decides what runs behind shell and exec channels.
//
// Three policies, one per role:
//   LocalLoginPolicy     mezd: logins are local accounts; programs run as
//                        the login (root) or as the server's own user.
//   JumpHostLoginPolicy  the proxy's jump host: no session channels at all,
//                        only forwarding (ssh -J).
//   BridgeLoginPolicy    the proxy's agentless bridge: a session channel
//                        runs what a ProgramLauncher makes (a channel on
//                        the node's own sshd); logins are checked there.
#ifndef MEZ_SSH_LOGIN_POLICY_H_
#define MEZ_SSH_LOGIN_POLICY_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "libmez/auth/ssh_cert.h"
#include "libmez/ssh/channel_tap.h"
#include "libmez/ssh/child_process.h"
#include "libmez/ssh/passwd.h"
#include "libmez/ssh/program.h"
#include "libmez/util/status.h"

namespace mez::ssh {

// A shell or exec request on a session channel.
struct SessionRequest {
  // The channel as its tap sees it (kind, login, command, pty, term, size,
  // target, ...).
  ChannelInfo info;
  // The channel's terminal size, also without a pty (then 80x24).
  int width = 80;
  int height = 24;
  // "NAME=value" variables the client set that accept_env let through, in
  // the order they came; without TERM.
  std::vector<std::string> env;
  // When set, a local program's first process is handed to it after fork
  // and before it runs anything of the user's (ChildSpec::before_start).
  std::function<Status(pid_t)> track;
};

// Makes the program behind a shell or exec channel instead of a local
// child process (the proxy bridges to an agentless node's sshd this way).
// `info` is the channel (kind, login, command, pty and size, target);
// `env` the variables the client set that accept_env let through, and
// TERM with a pty. Called on the connection's thread before the channel's
// tap is made; the program is Start()ed once the tap accepted. A non-OK
// result ends the channel with its message on the user's stderr.
using ProgramLauncher = std::function<Result<std::unique_ptr<Program>>(
    const ChannelInfo& info, const std::vector<std::string>& env)>;

// An accepted login: what the session channels of its connection run.
// Made by LoginPolicy::Admit; used from the connection's thread only.
//
// A session starts in up to two steps around its tap. Launch is called
// before the tap is made: a program returned there is Start()ed once the
// tap accepted (the bridge connects upstream first, and runs nothing
// unless the recording started). When Launch returns nullptr, Spawn is
// called once the tap accepted and returns the running program.
class Login {
 public:
  virtual ~Login() = default;

  // Empty when the login may open session channels; otherwise why not (a
  // line for the log; the open is refused).
  virtual std::string SessionRefusal() const = 0;
  // Non-OK: the channel ends before anything ran, with the message on the
  // user's stderr (exit status 255); no tap is made.
  virtual Result<std::unique_ptr<Program>> Launch(
      const SessionRequest& request) = 0;
  // Non-OK: the shell or exec request is refused (the message is logged).
  virtual Result<std::unique_ptr<Program>> Spawn(
      const SessionRequest& request) = 0;
};

// Implementations are immutable once made and called from connection
// threads, possibly concurrently.
class LoginPolicy {
 public:
  virtual ~LoginPolicy() = default;

  // The principal the certificate must carry for the SSH user name
  // `login`. The default: `login` itself.
  virtual std::string Principal(const std::string& login,
                                const auth::SshCert& cert) const;
  // Called when `cert` passed every check, at each public key attempt (the
  // client's query without a signature too). OK accepts `login`: once the
  // signature is verified, the Login serves the connection's session
  // channels. Otherwise the login is refused and the message is the reason
  // (logged and given to SshServerOptions::on_refusal), so it should say
  // what happened and what to do.
  virtual Result<std::unique_ptr<Login>> Admit(
      const std::string& login, const auth::SshCert& cert) const = 0;
  // Where an accepted login leads, for the "authenticated as" log line:
  // appended after the login name (e.g. " on the jump host"). `target` is
  // ChannelInfo::target of the connection.
  virtual std::string Describe(const std::string& target) const = 0;
};

// mezd: the SSH user name must name an account in the passwd database. A
// server running as root starts each program as that login (setgid,
// supplementary groups, setuid; its home, shell and environment from
// passwd); a server running as another user accepts only that user's own
// login.
class LocalLoginPolicy : public LoginPolicy {
 public:
  // `server_user`: the account the server runs as; `is_root`: whether it
  // runs as root (and may then start programs as any login).
  LocalLoginPolicy(std::string server_user, bool is_root);
  // For the user this process runs as (its effective uid).
  // kFailedPrecondition when that uid has no passwd entry.
  static Result<std::shared_ptr<LocalLoginPolicy>> ForThisProcess();

  Result<std::unique_ptr<Login>> Admit(
      const std::string& login, const auth::SshCert& cert) const override;
  std::string Describe(const std::string& target) const override;

 private:
  std::string server_user_;
  bool is_root_;
};

// What a local session runs for `user`: its shell (or the command through
// it) in its home, with a login environment, then TERM with a pty, then the
// client's variables. With `change_user` (the server is root) the child
// becomes the user and gets the pty (tty group).
ChildSpec LocalSessionSpec(const LoginUser& user, bool change_user,
                           const SessionRequest& request);

// The proxy's jump host. The SSH user name need not be a local login: it
// may be the certificate's key id (the Mezite user, as in
// `ssh -J alice@proxy`), which then stands for the certificate's first
// principal, or one of its principals. No session channel is ever opened.
class JumpHostLoginPolicy : public LoginPolicy {
 public:
  std::string Principal(const std::string& login,
                        const auth::SshCert& cert) const override;
  Result<std::unique_ptr<Login>> Admit(
      const std::string& login, const auth::SshCert& cert) const override;
  std::string Describe(const std::string& target) const override;
};

// The proxy's agentless bridge: logins are accounts on the node behind,
// checked there (here the certificate must name the login as a
// principal); shell and exec channels run what `launch` makes.
class BridgeLoginPolicy : public LoginPolicy {
 public:
  explicit BridgeLoginPolicy(ProgramLauncher launch);

  Result<std::unique_ptr<Login>> Admit(
      const std::string& login, const auth::SshCert& cert) const override;
  std::string Describe(const std::string& target) const override;

 private:
  ProgramLauncher launch_;
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_LOGIN_POLICY_H_
