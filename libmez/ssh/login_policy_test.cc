#include "libmez/ssh/login_policy.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "libmez/auth/ssh_cert.h"
#include "libmez/ssh/passwd.h"

namespace mez::ssh {
namespace {

std::string CurrentUser() { return UserNameOf(geteuid()).value(); }

auth::SshCert Cert(const std::string& key_id,
                   std::vector<std::string> principals) {
  auth::SshCert cert;
  cert.type = auth::kSshUserCert;
  cert.key_id = key_id;
  cert.principals = std::move(principals);
  return cert;
}

SessionRequest Exec(const std::string& login, const std::string& command) {
  SessionRequest request;
  request.info.kind = ChannelKind::kExec;
  request.info.login = login;
  request.info.command = command;
  return request;
}

// Stands for a bridged channel: records that it was started.
class FakeProgram : public Program {
 public:
  explicit FakeProgram(bool* started) : started_(started) {}
  Status Start() override {
    *started_ = true;
    return Status::Ok();
  }
  bool has_pty() const override { return false; }
  int input_fd() const override { return -1; }
  int output_fd() const override { return -1; }
  int error_fd() const override { return -1; }
  int exit_fd() const override { return -1; }
  void CloseInput() override {}
  void CloseOutput() override {}
  void CloseError() override {}
  void Resize(int, int) override {}
  bool Reap(int* exit_status) override {
    *exit_status = 0;
    return true;
  }
  int term_signal() const override { return 0; }

 private:
  bool* started_;
};

// Everything `program` writes to its output until EOF, and its exit
// status; gives up after 10 s.
std::string ReadToExit(Program& program, int* exit_status) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string out;
  char buf[4096];
  while (program.output_fd() >= 0 &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd p = {program.output_fd(), POLLIN, 0};
    poll(&p, 1, 100);
    ssize_t n = read(program.output_fd(), buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      program.CloseOutput();
    }
  }
  *exit_status = -1;
  while (!program.Reap(exit_status) &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd p = {program.exit_fd(), POLLIN, 0};
    poll(&p, program.exit_fd() >= 0 ? 1 : 0, 50);
  }
  return out;
}

TEST(SshLocalLoginPolicyTest, AcceptsTheServersOwnLogin) {
  LocalLoginPolicy policy(CurrentUser(), /*is_root=*/false);
  auth::SshCert cert = Cert("alice", {CurrentUser()});
  EXPECT_EQ(policy.Principal(CurrentUser(), cert), CurrentUser());
  Result<std::unique_ptr<Login>> login = policy.Admit(CurrentUser(), cert);
  ASSERT_TRUE(login.ok()) << login.status().ToString();
  EXPECT_EQ((*login)->SessionRefusal(), "");
  EXPECT_EQ(policy.Describe("node-1"), "");
}

TEST(SshLocalLoginPolicyTest, NonRootRefusesOtherLogins) {
  LocalLoginPolicy policy("mezd", /*is_root=*/false);
  Result<std::unique_ptr<Login>> login =
      policy.Admit("root", Cert("alice", {"root"}));
  ASSERT_FALSE(login.ok());
  EXPECT_EQ(login.status().message(),
            "mezd runs as mezd and can only start sessions for mezd, not for "
            "root; run mezd as root to allow other logins");
}

TEST(SshLocalLoginPolicyTest, RefusesALoginWithoutPasswdEntry) {
  LocalLoginPolicy policy("root", /*is_root=*/true);
  Result<std::unique_ptr<Login>> login =
      policy.Admit("meznosuchuser", Cert("alice", {"meznosuchuser"}));
  ASSERT_FALSE(login.ok());
  EXPECT_EQ(login.status().code(), Code::kNotFound);
  EXPECT_EQ(login.status().message(),
            "the login \"meznosuchuser\" does not exist on this host (no "
            "passwd entry)");
}

TEST(SshLocalLoginPolicyTest, ForThisProcessIsTheEffectiveUser) {
  Result<std::shared_ptr<LocalLoginPolicy>> policy =
      LocalLoginPolicy::ForThisProcess();
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  EXPECT_TRUE((*policy)->Admit(CurrentUser(), Cert("alice", {})).ok());
  if (geteuid() != 0) {
    EXPECT_FALSE((*policy)->Admit("root", Cert("alice", {})).ok());
  }
}

TEST(SshLocalLoginPolicyTest, SessionSpecIsALoginEnvironment) {
  LoginUser user{"alice", 1000, 1001, "/home/alice", "/bin/zsh"};
  SessionRequest request = Exec("alice", "");
  request.info.kind = ChannelKind::kShell;
  request.info.pty = true;
  request.info.term = "xterm-256color";
  request.width = 120;
  request.height = 40;
  request.env = {"LANG=C.UTF-8", "LC_ALL=C"};
  ChildSpec spec = LocalSessionSpec(user, /*change_user=*/false, request);
  EXPECT_EQ(spec.shell, "/bin/zsh");
  EXPECT_EQ(spec.command, "");
  EXPECT_EQ(spec.home, "/home/alice");
  EXPECT_TRUE(spec.pty);
  EXPECT_EQ(spec.width, 120);
  EXPECT_EQ(spec.height, 40);
  EXPECT_FALSE(spec.change_user);
  EXPECT_EQ(spec.env, (std::vector<std::string>{
                          "USER=alice", "LOGNAME=alice", "HOME=/home/alice",
                          "SHELL=/bin/zsh", "PATH=/usr/local/bin:/usr/bin:/bin",
                          "TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C"}));
}

TEST(SshLocalLoginPolicyTest, SessionSpecAsRootChangesToTheLogin) {
  LoginUser user{"bob", 1002, 1003, "/home/bob", "/bin/sh"};
  SessionRequest request = Exec("bob", "id -u");
  request.env = {"LANG=C"};
  ChildSpec spec = LocalSessionSpec(user, /*change_user=*/true, request);
  EXPECT_EQ(spec.command, "id -u");
  EXPECT_FALSE(spec.pty);
  EXPECT_TRUE(spec.change_user);
  EXPECT_EQ(spec.uid, 1002u);
  EXPECT_EQ(spec.gid, 1003u);
  // No pty, no TERM: the client's variables follow the login's.
  EXPECT_EQ(spec.env.back(), "LANG=C");
  EXPECT_EQ(spec.env[4], "PATH=/usr/local/bin:/usr/bin:/bin");

  LoginUser root{"root", 0, 0, "/root", "/bin/sh"};
  EXPECT_EQ(LocalSessionSpec(root, true, request).env[4],
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
            "/bin");
}

TEST(SshLocalLoginPolicyTest, SessionRunsTheCommandAsTheLogin) {
  LocalLoginPolicy policy(CurrentUser(), geteuid() == 0);
  Result<std::unique_ptr<Login>> login =
      policy.Admit(CurrentUser(), Cert("alice", {CurrentUser()}));
  ASSERT_TRUE(login.ok()) << login.status().ToString();
  SessionRequest request =
      Exec(CurrentUser(), "printf '%s|%s|%s' \"$USER\" \"$LANG\" \"$HOME\"");
  request.env = {"LANG=C.UTF-8"};
  // Nothing is made before the tap: a local program runs only after it.
  Result<std::unique_ptr<Program>> launched = (*login)->Launch(request);
  ASSERT_TRUE(launched.ok());
  EXPECT_EQ(*launched, nullptr);
  Result<std::unique_ptr<Program>> program = (*login)->Spawn(request);
  ASSERT_TRUE(program.ok()) << program.status().ToString();
  int exit_status = -1;
  EXPECT_EQ(ReadToExit(**program, &exit_status),
            CurrentUser() + "|C.UTF-8|" + LookUpLogin(CurrentUser())->home);
  EXPECT_EQ(exit_status, 0);
}

TEST(SshJumpHostLoginPolicyTest, TheKeyIdStandsForTheFirstPrincipal) {
  JumpHostLoginPolicy policy;
  auth::SshCert cert = Cert("alice", {"ubuntu", "deploy"});
  EXPECT_EQ(policy.Principal("alice", cert), "ubuntu");
  EXPECT_EQ(policy.Principal("deploy", cert), "deploy");
  // Any other name is checked as itself (and refused by the certificate
  // check when it is no principal).
  EXPECT_EQ(policy.Principal("mallory", cert), "mallory");
  // A key id that is also a principal is that principal.
  EXPECT_EQ(policy.Principal("alice", Cert("alice", {"root", "alice"})),
            "alice");
  // Without principals there is nothing to stand for.
  EXPECT_EQ(policy.Principal("alice", Cert("alice", {})), "alice");
}

TEST(SshJumpHostLoginPolicyTest, AcceptsButOpensNoSessions) {
  JumpHostLoginPolicy policy;
  Result<std::unique_ptr<Login>> login =
      policy.Admit("alice", Cert("alice", {"ubuntu"}));
  ASSERT_TRUE(login.ok());
  EXPECT_EQ((*login)->SessionRefusal(),
            "this server is a jump host (use ssh -J)");
  EXPECT_FALSE((*login)->Launch(Exec("alice", "id")).ok());
  EXPECT_FALSE((*login)->Spawn(Exec("alice", "id")).ok());
  EXPECT_EQ(policy.Describe(""), " on the jump host");
}

TEST(SshBridgeLoginPolicyTest, SessionsRunWhatTheLauncherMakes) {
  ChannelInfo seen;
  std::vector<std::string> seen_env;
  bool started = false;
  BridgeLoginPolicy policy([&](const ChannelInfo& info,
                               const std::vector<std::string>& env)
                               -> Result<std::unique_ptr<Program>> {
    seen = info;
    seen_env = env;
    return std::unique_ptr<Program>(std::make_unique<FakeProgram>(&started));
  });
  // Any login the certificate names: the node behind checks the account.
  EXPECT_EQ(policy.Principal("ubuntu", Cert("alice", {"ubuntu"})), "ubuntu");
  Result<std::unique_ptr<Login>> login =
      policy.Admit("meznosuchuser", Cert("alice", {"meznosuchuser"}));
  ASSERT_TRUE(login.ok());
  EXPECT_EQ((*login)->SessionRefusal(), "");

  SessionRequest request = Exec("meznosuchuser", "uptime");
  request.info.pty = true;
  request.info.term = "vt100";
  request.info.target = "db-1";
  request.env = {"LANG=C"};
  Result<std::unique_ptr<Program>> program = (*login)->Launch(request);
  ASSERT_TRUE(program.ok()) << program.status().ToString();
  ASSERT_NE(*program, nullptr);
  EXPECT_EQ(seen.command, "uptime");
  EXPECT_EQ(seen.target, "db-1");
  EXPECT_EQ(seen_env, (std::vector<std::string>{"LANG=C", "TERM=vt100"}));
  // Made, not started: the server starts it once the recording accepted.
  EXPECT_FALSE(started);
  EXPECT_TRUE((*program)->Start().ok());
  EXPECT_TRUE(started);
  EXPECT_FALSE((*login)->Spawn(request).ok());
  EXPECT_EQ(policy.Describe("db-1"), " for db-1");
  EXPECT_EQ(policy.Describe(""), " for ?");
}

TEST(SshBridgeLoginPolicyTest, ALauncherFailureEndsTheSessionWithItsMessage) {
  BridgeLoginPolicy policy(
      [](const ChannelInfo&,
         const std::vector<std::string>&) -> Result<std::unique_ptr<Program>> {
        return Status(Code::kUnavailable, "node db-1 is unreachable");
      });
  Result<std::unique_ptr<Login>> login =
      policy.Admit("ubuntu", Cert("alice", {"ubuntu"}));
  ASSERT_TRUE(login.ok());
  Result<std::unique_ptr<Program>> program =
      (*login)->Launch(Exec("ubuntu", ""));
  ASSERT_FALSE(program.ok());
  EXPECT_EQ(program.status().message(), "node db-1 is unreachable");
}

}  // namespace
}  // namespace mez::ssh
