#include <pwd.h>
#include <sys/resource.h>
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
#include "libmez/auth/ssh_cert.h"
#include "libmez/auth/token.h"
#include "libmez/record/asciicast_reader.h"
#include "libmez/recorder/sync_recorder.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/util/file.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::agent {
namespace {

using ::mez::recorder::BearerToken;
using ::mez::recorder::MakeSyncTapFactory;
using ::mez::recorder::SyncRecorder;
using ::mez::recorder::SyncRecorderOptions;
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
    rec_opt.node_token =
        std::make_shared<BearerToken>(rec_->Token(auth::Role::kNode, "web-01"));
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
                           rec_->Grant("alice", "web-01")}};
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

// CPU seconds this process (server, recorder and gRPC threads) used.
double ProcessCpuSeconds() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

TEST_F(AgentTest, IdleSessionsDoNotSpin) {
  // A pty shell and an exec, both idle for 3 s, recorded live: the
  // server's loop and the recorder's writer wait instead of polling in a
  // busy loop (a spinning thread would use up to 3 CPU seconds here, the
  // idle ones about 0.05).
  double before = ProcessCpuSeconds();
  std::thread exec([&] { mez::testing::Run(Ssh("sleep 3 </dev/null")); });
  auto shell = mez::testing::Run("(sleep 3; echo exit) | " + Ssh("-tt"));
  exec.join();
  EXPECT_EQ(shell.exit_code, 0) << Stderr();
  double used = ProcessCpuSeconds() - before;
  EXPECT_LT(used, 0.5) << "the server used " << used << " CPU seconds";
  EXPECT_EQ(Casts("exec").size(), 1u);
  EXPECT_EQ(Casts("shell").size(), 1u);
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
  info.kind = ChannelKind::kExec;
  info.command = "true";
  info.login = CurrentUser();
  std::atomic<int> calls{0};
  std::string message;
  SyncRecorderOptions opt;
  opt.channel = rec_->Channel();
  opt.node_token =
      std::make_shared<BearerToken>(rec_->Token(auth::Role::kNode, "web-01"));
  opt.node = "web-01";
  opt.on_broken = [&](const std::string& m) {
    ++calls;
    message = m;
  };
  auto tap = SyncRecorder::Start(opt, info);
  tap->OnData(Direction::kOut, "before\n", 1000);
  rec_->Kill9();
  for (int i = 0; i < 200 && !tap->broken(); ++i) {
    tap->OnData(Direction::kOut, "after\n", 2000 + i);
    usleep(10000);
  }
  tap->OnExit(0, 5000000);
  EXPECT_TRUE(tap->broken());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_NE(message.find("recording failed"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST_F(AgentTest, BurstOfFramesIsRecordedInOrder) {
  // Frames queued while the writer lingers go out merged and batched;
  // the recording must hold every byte, in order, with its size changes.
  ssh::ChannelInfo info;
  info.kind = ChannelKind::kShell;
  info.pty = true;
  info.width = 80;
  info.height = 24;
  info.login = CurrentUser();
  info.key_id = "alice";
  info.cert_extensions[std::string(auth::kMeziteTokenExtension)] =
      rec_->Grant("alice", "web-01");
  SyncRecorderOptions opt;
  opt.channel = rec_->Channel();
  opt.node_token =
      std::make_shared<BearerToken>(rec_->Token(auth::Role::kNode, "web-01"));
  opt.node = "web-01";
  opt.linger_us = 50'000;
  opt.merge_bytes = 4096;  // Several messages, some of them batches.
  auto tap = SyncRecorder::Start(opt, info);
  ASSERT_FALSE(tap->broken()) << tap->broken_message();
  std::string want;
  std::vector<std::string> sizes;
  for (int i = 0; i < 3000; ++i) {
    std::string piece = "line " + std::to_string(i) + "\r\n";
    tap->OnData(Direction::kOut, piece, 1000 + i);
    want += piece;
    if (i % 500 == 250) {
      tap->OnResize(100 + i / 500, 40, 1000 + i);
      sizes.push_back(std::to_string(100 + i / 500) + "x40");
    }
  }
  tap->OnExit(0, 10000);
  ASSERT_FALSE(tap->broken()) << tap->broken_message();
  ASSERT_EQ(tap->summary().bytes(), want.size());
  Cast cast = ReadCast(dir_.File("data") + "/recordings/alice/shell/" +
                       tap->session_id() + ".cast");
  EXPECT_EQ(cast.Output("o"), want);
  std::vector<std::string> got_sizes;
  int64_t last = 0;
  size_t out_before = 0;
  for (const auto& e : cast.events) {
    EXPECT_GE(e.time_us, last);
    last = e.time_us;
    if (e.code == "o") out_before += e.data.size();
    if (e.code != "r") continue;
    got_sizes.push_back(e.data);
    // Each resize comes after exactly the output sent before it.
    int i = 250 + 500 * static_cast<int>(got_sizes.size() - 1);
    size_t expected = 0;
    for (int j = 0; j <= i; ++j) {
      expected += ("line " + std::to_string(j) + "\r\n").size();
    }
    EXPECT_EQ(out_before, expected) << "resize " << e.data;
  }
  EXPECT_EQ(got_sizes, sizes);
}

// A Recording service that accepts the header and then reads nothing.
class StalledRecording final : public mezite::v1::Recording::CallbackService {
  grpc::ServerReadReactor<mezite::v1::RecordFrame>* Record(
      grpc::CallbackServerContext* ctx,
      mezite::v1::RecordSummary* /*summary*/) override {
    class Reactor : public grpc::ServerReadReactor<mezite::v1::RecordFrame> {
     public:
      explicit Reactor(grpc::CallbackServerContext* ctx) : ctx_(ctx) {
        StartRead(&frame_);
      }
      void OnReadDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status::CANCELLED);
          return;
        }
        ctx_->AddInitialMetadata("mezite-accepted", "1");
        StartSendInitialMetadata();
      }
      void OnCancel() override { Finish(grpc::Status::CANCELLED); }
      void OnDone() override { delete this; }

     private:
      grpc::CallbackServerContext* ctx_;
      mezite::v1::RecordFrame frame_;
    };
    return new Reactor(ctx);
  }
};

TEST(SyncRecorderTest, ServiceThatTakesNothingBreaksTheStream) {
  // mezrecd accepted the header, then hangs: the session must not hang
  // with it once the queue stays full for stall_timeout_us.
  StalledRecording service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ssh::ChannelInfo info;
  info.kind = ChannelKind::kExec;
  info.command = "cat big";
  info.login = CurrentUser();
  SyncRecorderOptions opt;
  opt.channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                    grpc::InsecureChannelCredentials());
  opt.node = "web-01";
  opt.max_queued_bytes = 256 << 10;
  opt.stall_timeout_us = 1'000'000;
  std::atomic<int> calls{0};
  opt.on_broken = [&](const std::string&) { ++calls; };
  auto tap = SyncRecorder::Start(opt, info);
  ASSERT_FALSE(tap->broken()) << tap->broken_message();
  // Far more than gRPC's flow-control windows and the queue together.
  const std::string piece(64 << 10, 'x');
  int64_t sent = 0;
  for (int i = 0; i < 4096 && !tap->broken(); ++i) {
    tap->OnData(Direction::kOut, piece, 1000 + i);
    sent += static_cast<int64_t>(piece.size());
  }
  ASSERT_TRUE(tap->broken()) << "sent " << sent << " bytes without a stall";
  EXPECT_NE(tap->broken_message().find("took no data for 1 s"),
            std::string::npos)
      << tap->broken_message();
  // The end of the session does not wait for the stalled service either.
  tap->OnExit(0, 5'000'000);
  tap.reset();
  EXPECT_EQ(calls.load(), 1);
  server->Shutdown(std::chrono::system_clock::now());
}

}  // namespace
}  // namespace mez::agent
