#include "libmez/ssh/ssh_server.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/auth/token.h"
#include "libmez/util/file.h"
#include "tests/test_util.h"

namespace mez::ssh {
namespace {

using ::mez::testing::ShellQuote;
using ::mez::testing::TempDir;

struct TapLog {
  std::mutex mu;
  std::vector<ChannelInfo> starts;
  std::string in, out, err;
  std::vector<int> exits;
};

class CollectingTap : public ChannelTap {
 public:
  explicit CollectingTap(TapLog* log) : log_(log) {}
  void OnData(Direction direction, std::string_view bytes, int64_t) override {
    std::lock_guard<std::mutex> lock(log_->mu);
    (direction == Direction::kIn    ? log_->in
     : direction == Direction::kOut ? log_->out
                                    : log_->err)
        .append(bytes);
  }
  void OnResize(int, int, int64_t) override {}
  void OnExit(int exit_status, int64_t) override {
    std::lock_guard<std::mutex> lock(log_->mu);
    log_->exits.push_back(exit_status);
  }

 private:
  TapLog* log_;
};

std::string CurrentUser() {
  struct passwd* pw = getpwuid(geteuid());
  return pw != nullptr ? pw->pw_name : "root";
}

class SshServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mez::testing::HaveProgram("ssh"))
        << "ssh is missing: run scripts/deps";
    ca_pem_ = auth::GenerateEd25519Pem().value();
    SshServerOptions options;
    options.trusted_user_ca_blob =
        auth::Ed25519PublicBlobFromPem(ca_pem_).value();
    options.on_refusal = [this](const AuthRefusal& r) {
      std::lock_guard<std::mutex> lock(mu_);
      refusals_.push_back(r);
    };
    options.tap_factory = [this](const ChannelInfo& info) {
      {
        std::lock_guard<std::mutex> lock(tap_.mu);
        tap_.starts.push_back(info);
      }
      return std::make_unique<CollectingTap>(&tap_);
    };
    auto server = SshServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    ASSERT_NE(server_->port(), 0);
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  // Writes a key (and, with a CA, its certificate) named `name`; returns
  // the private key's path.
  std::string MakeKey(const std::string& name, const std::string& ca_pem,
                      std::vector<std::string> principals, int64_t valid_after,
                      int64_t valid_before) {
    auto key = auth::GenerateSshUserKey().value();
    std::string path = dir_.File(name);
    EXPECT_TRUE(AtomicWriteFile(path, key.first, 0600).ok());
    if (!ca_pem.empty()) {
      auth::SshCertRequest request;
      request.public_key_blob = key.second;
      request.key_id = "alice";
      request.principals = std::move(principals);
      request.valid_after = valid_after;
      request.valid_before = valid_before;
      request.extensions = {{"permit-pty", ""}};
      std::string cert = auth::SignSshCert(ca_pem, request).value();
      EXPECT_TRUE(AtomicWriteFile(path + "-cert.pub",
                                  auth::SshCertLine(cert, name) + "\n", 0644)
                      .ok());
    }
    return path;
  }

  std::string GoodKey() {
    int64_t now = time(nullptr);
    return MakeKey("good", ca_pem_, {CurrentUser()}, now - 60, now + 3600);
  }

  // The ssh command line; its stderr goes to err.txt.
  std::string Ssh(const std::string& key, const std::string& args) {
    std::string cmd = "timeout 30 ssh -F /dev/null -i " + ShellQuote(key);
    if (access((key + "-cert.pub").c_str(), R_OK) == 0) {
      cmd += " -o CertificateFile=" + ShellQuote(key + "-cert.pub");
    }
    return cmd +
           " -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes"
           " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
           " -o LogLevel=ERROR -o ConnectTimeout=10 -p " +
           std::to_string(server_->port()) + " " + CurrentUser() +
           "@127.0.0.1 " + args + " 2>" + ShellQuote(dir_.File("err.txt"));
  }

  std::string Stderr() { return ReadFile(dir_.File("err.txt")).value(); }

  std::vector<AuthRefusal> Refusals() {
    std::lock_guard<std::mutex> lock(mu_);
    return refusals_;
  }

  void ExpectRefused(const std::string& key, const std::string& reason_part) {
    auto result = mez::testing::Run(Ssh(key, "true"));
    EXPECT_EQ(result.exit_code, 255) << Stderr();
    std::vector<AuthRefusal> refusals = Refusals();
    ASSERT_FALSE(refusals.empty());
    bool found = false;
    for (const AuthRefusal& r : refusals) {
      EXPECT_FALSE(r.reason.empty());
      EXPECT_EQ(r.login, CurrentUser());
      if (r.reason.find(reason_part) != std::string::npos) found = true;
    }
    EXPECT_TRUE(found) << "no refusal mentions \"" << reason_part
                       << "\"; first: " << refusals[0].reason;
    std::lock_guard<std::mutex> lock(tap_.mu);
    EXPECT_TRUE(tap_.starts.empty());
  }

  TempDir dir_;
  std::string ca_pem_;
  std::unique_ptr<SshServer> server_;
  std::mutex mu_;
  std::vector<AuthRefusal> refusals_;
  TapLog tap_;
};

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
