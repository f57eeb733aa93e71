// SshServer through the stock OpenSSH client: sessions, authentication and
// the login policies, connection ids. Forwarding is in tcpip_channel_test.cc.
#include "libmez/ssh/ssh_server.h"

#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/auth/token.h"
#include "libmez/ssh/child_process.h"
#include "libmez/ssh/login_policy.h"
#include "libmez/ssh/ssh_server_test_util.h"
#include "libmez/util/file.h"
#include "tests/test_util.h"

namespace mez::ssh {
namespace {

using ::mez::testing::ShellQuote;
using ::mez::testing::TempDir;

TEST_F(SshServerTest, ExecSeparatesStreamsAndPassesExitStatus) {
  std::string key = GoodKey();
  auto result =
      mez::testing::Run(Ssh(key, ShellQuote("echo out; echo err >&2; exit 3")));
  EXPECT_EQ(result.exit_code, 3) << Stderr();
  EXPECT_EQ(result.out, "out\n");
  EXPECT_EQ(Stderr(), "err\n");
  EXPECT_TRUE(Refusals().empty());
  std::lock_guard<std::mutex> lock(tap_.mu);
  ASSERT_EQ(tap_.starts.size(), 1u);
  EXPECT_EQ(tap_.starts[0].kind, ChannelKind::kExec);
  EXPECT_EQ(tap_.starts[0].command, "echo out; echo err >&2; exit 3");
  EXPECT_EQ(tap_.starts[0].key_id, "alice");
  EXPECT_FALSE(tap_.starts[0].pty);
  EXPECT_EQ(tap_.out, "out\n");
  EXPECT_EQ(tap_.err, "err\n");
  EXPECT_EQ(tap_.exits, std::vector<int>{3});
}

TEST_F(SshServerTest, ExecPassesStdinThrough) {
  std::string key = GoodKey();
  auto result = mez::testing::Run("printf 'a\\nb\\n' | " + Ssh(key, "wc -l"));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out.find_first_not_of(' '), result.out.find('2'));
  std::lock_guard<std::mutex> lock(tap_.mu);
  EXPECT_EQ(tap_.in, "a\nb\n");
}

TEST_F(SshServerTest, ExecStdinSurvivesASlowReader) {
  // The program reads nothing for a while: the client is held back, and
  // every byte still arrives, in order, once it reads.
  std::string key = GoodKey();
  std::string data = dir_.File("data");
  mez::testing::WriteFileOrDie(data, RandomBytes(16 << 20, 5));
  auto want = mez::testing::Run("sha256sum < " + ShellQuote(data));
  auto result = mez::testing::Run(Ssh(key, ShellQuote("sleep 1; sha256sum")) +
                                  " < " + ShellQuote(data));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out, want.out);
  std::lock_guard<std::mutex> lock(tap_.mu);
  EXPECT_EQ(tap_.in.size(), 16u << 20);
}

TEST_F(SshServerTest, ShellWithPty) {
  std::string key = GoodKey();
  auto result = mez::testing::Run("printf 'echo mez-$((40+2))\\nexit 5\\n' | " +
                                  Ssh(key, "-tt"));
  EXPECT_EQ(result.exit_code, 5) << Stderr();
  EXPECT_NE(result.out.find("mez-42"), std::string::npos) << result.out;
  std::lock_guard<std::mutex> lock(tap_.mu);
  ASSERT_EQ(tap_.starts.size(), 1u);
  EXPECT_EQ(tap_.starts[0].kind, ChannelKind::kShell);
  EXPECT_TRUE(tap_.starts[0].pty);
  EXPECT_NE(tap_.in.find("echo mez-"), std::string::npos);
  EXPECT_NE(tap_.out.find("mez-42"), std::string::npos) << tap_.out;
  EXPECT_EQ(tap_.exits, std::vector<int>{5});
}

TEST_F(SshServerTest, RefusesCertWithoutThePrincipal) {
  int64_t now = time(nullptr);
  ExpectRefused(
      MakeKey("other", ca_pem_, {"somebody-else"}, now - 60, now + 3600),
      "somebody-else");
}

TEST_F(SshServerTest, RefusesExpiredCert) {
  int64_t now = time(nullptr);
  ExpectRefused(
      MakeKey("expired", ca_pem_, {CurrentUser()}, now - 7200, now - 3600),
      "expired");
}

TEST_F(SshServerTest, RefusesCertFromAnotherCa) {
  int64_t now = time(nullptr);
  std::string other_ca = auth::GenerateEd25519Pem().value();
  ExpectRefused(
      MakeKey("foreign", other_ca, {CurrentUser()}, now - 60, now + 3600),
      "untrusted CA");
}

TEST_F(SshServerTest, RefusesPlainKey) {
  ExpectRefused(MakeKey("plain", "", {}, 0, 0), "plain");
}

// check_certificate has the last word on a certificate that passed the
// server's own checks: it sees the login and the certificate, and its
// refusal goes to on_refusal with its reason, before any channel. A
// certificate the server refuses by itself never reaches it.
TEST_F(SshServerTest, CertificateCheckCanRefuseAnAcceptableCertificate) {
  std::atomic<bool> refuse{false};
  std::mutex seen_mu;
  std::vector<std::pair<std::string, std::string>> seen;  // login, key id
  StartServer([&](SshServerOptions& o) {
    o.check_certificate = [&](const std::string& login,
                              const auth::SshCert& cert) -> Status {
      {
        std::lock_guard<std::mutex> lock(seen_mu);
        seen.emplace_back(login, cert.key_id);
      }
      if (refuse.load()) {
        return PermissionDenied("user " + cert.key_id + " was removed");
      }
      return Status::Ok();
    };
  });
  std::string key = GoodKey();
  auto result = mez::testing::Run(Ssh(key, "echo let-in"));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out, "let-in\n");
  EXPECT_TRUE(Refusals().empty());
  {
    std::lock_guard<std::mutex> lock(seen_mu);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen[0].first, CurrentUser());
    EXPECT_EQ(seen[0].second, "alice");
    seen.clear();
  }
  // Expired: refused by the server itself, the hook is not asked.
  int64_t now = time(nullptr);
  auto expired = mez::testing::Run(
      Ssh(MakeKey("expired", ca_pem_, {CurrentUser()}, now - 7200, now - 3600),
          "true"));
  EXPECT_EQ(expired.exit_code, 255) << Stderr();
  {
    std::lock_guard<std::mutex> lock(seen_mu);
    EXPECT_TRUE(seen.empty());
  }
  // Forget the first connection (once it has ended) for ExpectRefused.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ConnectionEnds().empty() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(ConnectionEnds().size(), 1u);
  {
    std::lock_guard<std::mutex> lock(mu_);
    refusals_.clear();
    connection_ends_.clear();
  }
  {
    std::lock_guard<std::mutex> lock(tap_.mu);
    tap_.starts.clear();
  }
  refuse = true;
  ExpectRefused(key, "user alice was removed");
  // (ssh also offers the plain key after the certificate: refused apart.)
  for (const AuthRefusal& r : Refusals()) {
    if (r.reason.find("was removed") != std::string::npos) {
      EXPECT_EQ(r.key_id, "alice");
    }
  }
}

TEST_F(SshServerTest, StopHangsUpRunningSessions) {
  std::string key = GoodKey();
  mez::testing::CommandResult result;
  std::thread client([&] { result = mez::testing::Run(Ssh(key, "sleep 60")); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(tap_.mu);
      if (!tap_.starts.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto stop_start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_start,
            std::chrono::seconds(5));
  client.join();
  EXPECT_NE(result.exit_code, 0);
  std::lock_guard<std::mutex> lock(tap_.mu);
  EXPECT_EQ(tap_.starts.size(), 1u);
}

TEST_F(SshServerTest, ConnectionEndIsReportedOnceWithTheId) {
  std::string key = GoodKey();
  auto result = mez::testing::Run(Ssh(key, "true"));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  ASSERT_TRUE(WaitFor([&] { return !ConnectionEnds().empty(); }));
  server_->Stop();  // Joins the connection threads: no late second call.
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 1u);
  EXPECT_TRUE(IsLowerHex32(taps[0].info.connection_id));
  EXPECT_EQ(ConnectionEnds(),
            std::vector<std::string>{taps[0].info.connection_id});
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_FALSE(ended_with_live_tap_);
}

TEST_F(SshServerTest, ConnectionIdsDiffer) {
  std::string key = GoodKey();
  EXPECT_EQ(mez::testing::Run(Ssh(key, "true")).exit_code, 0) << Stderr();
  EXPECT_EQ(mez::testing::Run(Ssh(key, "true")).exit_code, 0) << Stderr();
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 2u);
  EXPECT_NE(taps[0].info.connection_id, taps[1].info.connection_id);
}

TEST_F(SshServerTest, RefusesALoginWithoutPasswdEntry) {
  int64_t now = time(nullptr);
  std::string login = "meznosuchuser";
  std::string key = MakeKey("nosuch", ca_pem_, {login}, now - 60, now + 3600);
  auto result = mez::testing::Run(Ssh(key, "true", login));
  EXPECT_EQ(result.exit_code, 255) << Stderr();
  std::vector<AuthRefusal> refusals = Refusals();
  ASSERT_FALSE(refusals.empty());
  EXPECT_EQ(refusals[0].login, login);
  if (geteuid() == 0) {
    EXPECT_NE(refusals[0].reason.find("does not exist"), std::string::npos)
        << refusals[0].reason;
  } else {
    EXPECT_NE(refusals[0].reason.find("run mezd as root"), std::string::npos)
        << refusals[0].reason;
  }
}

TEST_F(SshServerTest, NonRootRefusesOtherLogins) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "runs as root, where other logins are allowed (see "
                    "RootRunsProgramsAsTheLogin)";
  }
  int64_t now = time(nullptr);
  std::string key = MakeKey("root", ca_pem_, {"root"}, now - 60, now + 3600);
  auto result = mez::testing::Run(Ssh(key, "true", "root"));
  EXPECT_EQ(result.exit_code, 255) << Stderr();
  std::vector<AuthRefusal> refusals = Refusals();
  ASSERT_FALSE(refusals.empty());
  EXPECT_EQ(refusals[0].login, "root");
  EXPECT_EQ(refusals[0].reason, "mezd runs as " + CurrentUser() +
                                    " and can only start sessions "
                                    "for " +
                                    CurrentUser() +
                                    ", not for root; run mezd as root "
                                    "to allow other logins");
}

// A throwaway system user with its own home, removed again in any case.
class TemporaryUser {
 public:
  TemporaryUser() {
    char tmpl[] = "/tmp/mez-home-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return;
    home_ = tmpl;
    name_ = "meztest" + std::to_string(getpid() % 100000);
    auto r = mez::testing::Run("useradd -M -s /bin/sh -d " + ShellQuote(home_) +
                               " " + ShellQuote(name_) + " 2>&1 && chown " +
                               ShellQuote(name_) + ": " + ShellQuote(home_));
    created_ = r.exit_code == 0;
    error_ = r.out;
  }
  ~TemporaryUser() {
    if (created_) mez::testing::Run("userdel " + ShellQuote(name_));
    if (!home_.empty()) mez::testing::Run("rm -rf " + ShellQuote(home_));
  }
  bool ok() const { return created_; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }
  const std::string& home() const { return home_; }

 private:
  std::string name_, home_, error_;
  bool created_ = false;
};

TEST_F(SshServerTest, RootRunsProgramsAsTheLogin) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to create a user and to change users (see "
                    "NonRootRefusesOtherLogins)";
  }
  TemporaryUser user;
  ASSERT_TRUE(user.ok()) << user.error();
  int64_t now = time(nullptr);
  std::string key =
      MakeKey("other-user", ca_pem_, {user.name()}, now - 60, now + 3600);
  auto result = mez::testing::Run(Ssh(key,
                                      ShellQuote("id -un; pwd; echo $HOME; "
                                                 "echo $USER $LOGNAME $SHELL; "
                                                 "echo $PATH; id -u"),
                                      user.name()));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  struct passwd* pw = getpwnam(user.name().c_str());
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(result.out, user.name() + "\n" + user.home() + "\n" + user.home() +
                            "\n" + user.name() + " " + user.name() +
                            " /bin/sh\n/usr/local/bin:/usr/bin:/bin\n" +
                            std::to_string(pw->pw_uid) + "\n");
  // With a pty, the terminal belongs to the user (mode 620).
  result = mez::testing::Run(
      Ssh(key, "-tt " + ShellQuote("stat -c '%U %a' $(tty)"), user.name()));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_NE(result.out.find(user.name() + " 620"), std::string::npos)
      << result.out;
  // A home that is gone: the session starts in / with a note, like sshd.
  ASSERT_EQ(rmdir(user.home().c_str()), 0);
  result = mez::testing::Run(Ssh(key, "pwd", user.name()));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out, "/\n");
  EXPECT_NE(Stderr().find("Could not chdir to home directory"),
            std::string::npos)
      << Stderr();
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 3u);
  EXPECT_EQ(taps[0].info.login, user.name());
}

// The jump host's policy through the server: the certificate's key id is
// a login (standing for its first principal), any other name must be a
// principal, and no session channel opens.
TEST_F(SshServerTest, JumpHostPolicyTakesTheKeyIdAndOpensNoSessions) {
  StartServer([](SshServerOptions& o) {
    o.login_policy = std::make_shared<JumpHostLoginPolicy>();
  });
  int64_t now = time(nullptr);
  std::string key =
      MakeKey("jump", ca_pem_, {"ubuntu"}, now - 60, now + 3600);  // id alice
  auto result = mez::testing::Run(Ssh(key, "true", "alice"));
  EXPECT_EQ(result.exit_code, 255);
  EXPECT_TRUE(Refusals().empty()) << Refusals()[0].reason;
  result = mez::testing::Run(Ssh(key, "true", "mallory"));
  EXPECT_EQ(result.exit_code, 255);
  std::vector<AuthRefusal> refusals = Refusals();
  ASSERT_FALSE(refusals.empty());
  EXPECT_EQ(refusals[0].login, "mallory");
  EXPECT_NE(refusals[0].reason.find("mallory"), std::string::npos)
      << refusals[0].reason;
  server_->Stop();
  {
    std::lock_guard<std::mutex> lock(tap_.mu);
    EXPECT_TRUE(tap_.starts.empty());
  }
  // Only alice's connection authenticated.
  EXPECT_EQ(ConnectionEnds().size(), 1u);
}

// The bridge's policy through the server: a login that is no local account
// is accepted when the certificate names it, and its session runs what the
// launcher made, recorded like any other.
TEST_F(SshServerTest, BridgePolicyRunsWhatTheLauncherMakes) {
  std::mutex seen_mu;
  std::vector<std::string> seen_env;
  StartServer([&](SshServerOptions& o) {
    o.login_policy = std::make_shared<BridgeLoginPolicy>(
        [&](const ChannelInfo& info, const std::vector<std::string>& env)
            -> Result<std::unique_ptr<Program>> {
          {
            std::lock_guard<std::mutex> lock(seen_mu);
            seen_env = env;
          }
          ChildSpec spec;
          spec.shell = "/bin/sh";
          spec.command = "echo bridged: " + info.command;
          spec.home = "/";
          spec.env = {"PATH=/usr/bin:/bin"};
          MEZ_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> child,
                               ChildProcess::Spawn(spec));
          return std::unique_ptr<Program>(std::move(child));
        });
  });
  int64_t now = time(nullptr);
  std::string login = "meznosuchuser";
  std::string key = MakeKey("bridge", ca_pem_, {login}, now - 60, now + 3600);
  auto result = mez::testing::Run("LANG=C.UTF-8 " +
                                  Ssh(key, "-o SendEnv=LANG hello", login));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out, "bridged: hello\n");
  EXPECT_TRUE(Refusals().empty()) << Refusals()[0].reason;
  {
    std::lock_guard<std::mutex> lock(seen_mu);
    EXPECT_EQ(seen_env, std::vector<std::string>{"LANG=C.UTF-8"});
  }
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 1u);
  EXPECT_EQ(taps[0].info.login, login);
  EXPECT_EQ(taps[0].info.command, "hello");
}

TEST_F(SshServerTest, StartRejectsBadOptions) {
  SshServerOptions options;
  EXPECT_FALSE(SshServer::Start(options).ok());  // no CA
  options.trusted_user_ca_blob = "x";
  options.listen_address = "not-an-ip";
  EXPECT_FALSE(SshServer::Start(options).ok());
  options.listen_address = "127.0.0.1";
  options.host_key_openssh = "garbage";
  EXPECT_FALSE(SshServer::Start(options).ok());
}

}  // namespace
}  // namespace mez::ssh
