#include <pwd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "libmez/agent/sync_recorder.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/auth/token.h"
#include "libmez/record/asciicast_reader.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/util/file.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::agent {
namespace {

using ::mez::testing::ShellQuote;

std::string CurrentUser() {
  struct passwd* pw = getpwuid(geteuid());
  return pw != nullptr ? pw->pw_name : "root";
}

struct Cast {
  record::AsciicastInfo info;
  std::vector<record::AsciicastEvent> events;
  std::string Output(const std::string& code) const {
    std::string s;
    for (const auto& e : events) {
      if (e.code == code) s += e.data;
    }
    return s;
  }
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mez::testing::HaveProgram("ssh"))
        << "ssh is missing: run scripts/deps";
    rec_ = std::make_unique<mez::testing::Mezrecd>(dir_.File("data"));
    ASSERT_TRUE(rec_->Start()) << rec_->log();
    {
      std::string err;
      rec_->RegisterNode("web-01", "127.0.0.1:22", &err);
      ASSERT_EQ(err, "") << "registering node web-01";
    }
    ca_pem_ = ReadFile(dir_.File("data") + "/user_ca.key").value();

    SyncRecorderOptions rec_opt;
    rec_opt.channel = rec_->Channel();
    rec_opt.node_token = rec_->Token(auth::Role::kNode, "web-01");
    rec_opt.node = "web-01";
    rec_opt.on_broken = [this](const std::string&) { broken_ = true; };
    ssh::SshServerOptions options;
    options.trusted_user_ca_blob =
        auth::Ed25519PublicBlobFromPem(ca_pem_).value();
    options.tap_factory = MakeSyncTapFactory(rec_opt);
    auto server = ssh::SshServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();

    auto key = auth::GenerateSshUserKey().value();
    key_ = dir_.File("id");
    ASSERT_TRUE(AtomicWriteFile(key_, key.first, 0600).ok());
    auth::SshCertRequest request;
    request.public_key_blob = key.second;
    request.key_id = "alice";
    request.principals = {CurrentUser()};
    int64_t now = time(nullptr);
    request.valid_after = now - 60;
    request.valid_before = now + 3600;
    request.extensions = {{"permit-pty", ""},
                          {std::string(auth::kMeziteTokenExtension),
                           rec_->Token(auth::Role::kUser, "alice")}};
    std::string cert = auth::SignSshCert(ca_pem_, request).value();
    ASSERT_TRUE(AtomicWriteFile(key_ + "-cert.pub",
                                auth::SshCertLine(cert, "alice") + "\n", 0644)
                    .ok());
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  std::string Ssh(const std::string& args) {
    return "timeout 30 ssh -F /dev/null -i " + ShellQuote(key_) +
           " -o CertificateFile=" + ShellQuote(key_ + "-cert.pub") +
           " -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes"
           " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
           " -o LogLevel=ERROR -o ConnectTimeout=10 -p " +
           std::to_string(server_->port()) + " " + CurrentUser() +
           "@127.0.0.1 " + args + " 2>" + ShellQuote(dir_.File("err.txt"));
  }

  std::string Stderr() { return ReadFile(dir_.File("err.txt")).value(); }

  // The recordings under DATA/recordings/alice/<kind>/.
  std::vector<std::string> Casts(const std::string& kind) {
    std::vector<std::string> out;
    std::string root = dir_.File("data") + "/recordings/alice/" + kind;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
      if (e.path().extension() == ".cast") out.push_back(e.path().string());
    }
    return out;
  }

  Cast ReadCast(const std::string& path) {
    Cast cast;
    auto reader = record::AsciicastReader::OpenFile(path);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (!reader.ok()) return cast;
    cast.info = (*reader)->info();
    record::AsciicastEvent e;
    while (true) {
      auto more = (*reader)->Next(&e);
      EXPECT_TRUE(more.ok()) << more.status().ToString();
      if (!more.ok() || !*more) break;
      cast.events.push_back(e);
    }
    return cast;
  }

  mez::testing::TempDir dir_;
  std::unique_ptr<mez::testing::Mezrecd> rec_;
  std::string ca_pem_;
  std::string key_;
  std::unique_ptr<ssh::SshServer> server_;
  std::atomic<bool> broken_{false};
};

TEST_F(AgentTest, ExecIsRecordedLive) {
  auto result = mez::testing::Run(
      Ssh(ShellQuote("echo recorded-out; echo recorded-err >&2; exit 3")));
  EXPECT_EQ(result.exit_code, 3) << Stderr();
  EXPECT_EQ(result.out, "recorded-out\n");
  EXPECT_NE(Stderr().find("recorded-err"), std::string::npos);
  std::vector<std::string> casts = Casts("exec");
  ASSERT_EQ(casts.size(), 1u) << rec_->log();
  Cast cast = ReadCast(casts[0]);
  std::string all;
  for (const auto& e : cast.events) all += e.data;
  EXPECT_NE(all.find("recorded-out"), std::string::npos) << all;
  EXPECT_NE(all.find("recorded-err"), std::string::npos) << all;
  EXPECT_EQ(cast.Output("x"), "3");
  EXPECT_FALSE(broken_.load());
}

TEST_F(AgentTest, ShellIsRecordedLive) {
  auto result = mez::testing::Run(
      "printf 'echo shell-$((40+2))\\nexit 5\\n' | " + Ssh("-tt"));
  EXPECT_EQ(result.exit_code, 5) << Stderr();
  EXPECT_NE(result.out.find("shell-42"), std::string::npos) << result.out;
  std::vector<std::string> casts = Casts("shell");
  ASSERT_EQ(casts.size(), 1u) << rec_->log();
  Cast cast = ReadCast(casts[0]);
  EXPECT_GT(cast.info.width, 0);
  EXPECT_NE(cast.Output("o").find("shell-42"), std::string::npos)
      << cast.Output("o");
  EXPECT_EQ(cast.Output("x"), "5");
  EXPECT_FALSE(broken_.load());
}

TEST_F(AgentTest, SessionEndsWhenTheRecordingServiceDies) {
  mez::testing::CommandResult result;
  std::thread client(
      [&] { result = mez::testing::Run(Ssh("sleep 20 </dev/null")); });
  // Wait for the live recording to exist, then take the service away.
  for (int i = 0; i < 100 && Casts("exec").empty(); ++i) usleep(50000);
  usleep(200000);
  auto killed = std::chrono::steady_clock::now();
  rec_->Kill9();
  client.join();
  auto took = std::chrono::steady_clock::now() - killed;
  EXPECT_LT(took, std::chrono::milliseconds(1500));
  EXPECT_EQ(result.exit_code, 255);
  EXPECT_NE(Stderr().find("session recording failed"), std::string::npos)
      << Stderr();
  EXPECT_TRUE(broken_.load());
}

TEST_F(AgentTest, BrokenStreamIsDetected) {
  // A dead recording service: the tap must notice and say so once.
  ssh::ChannelInfo info;
  info.kind = ssh::ChannelKind::kExec;
  info.command = "true";
  info.login = CurrentUser();
  std::atomic<int> calls{0};
  std::string message;
  SyncRecorderOptions opt;
  opt.channel = rec_->Channel();
  opt.node_token = rec_->Token(auth::Role::kNode, "web-01");
  opt.node = "web-01";
  opt.on_broken = [&](const std::string& m) {
    ++calls;
    message = m;
  };
  auto tap = SyncRecorder::Start(opt, info);
  tap->OnData(ssh::Direction::kOut, "before\n", 1000);
  rec_->Kill9();
  for (int i = 0; i < 200 && !tap->broken(); ++i) {
    tap->OnData(ssh::Direction::kOut, "after\n", 2000 + i);
    usleep(10000);
  }
  tap->OnExit(0, 5000000);
  EXPECT_TRUE(tap->broken());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_NE(message.find("recording failed"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace mez::agent
