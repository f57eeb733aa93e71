// The mode of a new session: decided from what the recorder already knows,
// never by asking mezrecd on the connection's thread.
#include "libmez/recorder/recorders.h"

#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "libmez/recorder/sync_recorder.h"
#include "libmez/settings/settings.h"
#include "mezite/v1/cluster.grpc.pb.h"

namespace mez::recorder {
namespace {

namespace pb = mezite::v1;

bool PollUntil(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// A mezrecd whose GetConfig is as slow as a catalog that does not answer:
// it holds every call until the test ends. It counts the calls and keeps
// the audit events it is sent.
class SlowCluster final : public pb::Cluster::Service {
 public:
  grpc::Status GetConfig(grpc::ServerContext* ctx, const pb::GetConfigRequest*,
                         pb::ConfigValue* resp) override {
    ++get_config_calls;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return released_ || ctx->IsCancelled(); });
    resp->set_key("session_recording");
    resp->set_value(answer_);
    return grpc::Status::OK;
  }
  grpc::Status NodeAudit(grpc::ServerContext*, const pb::NodeAuditRequest* req,
                         pb::NodeAuditResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    audit_.push_back(*req);
    return grpc::Status::OK;
  }
  void SetAnswer(const std::string& value) {
    std::lock_guard<std::mutex> lock(mu_);
    answer_ = value;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  std::vector<pb::NodeAuditRequest> Audit() {
    std::lock_guard<std::mutex> lock(mu_);
    return audit_;
  }

  std::atomic<int> get_config_calls{0};

 private:
  std::mutex mu_;
  std::string answer_ = "off";  // guarded by mu_
  std::condition_variable cv_;
  bool released_ = false;
  std::vector<pb::NodeAuditRequest> audit_;
};

class RecordersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recorders_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    cluster_.Release();
    if (recorders_) recorders_->Stop();
    recorders_.reset();
    watcher_.reset();
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    std::filesystem::remove_all(dir_);
  }

  // Serves SlowCluster on loopback.
  std::string Serve() {
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&cluster_);
    server_ = b.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    return "127.0.0.1:" + std::to_string(port);
  }

  void Start(const std::string& addr, RecordersOptions o = {}) {
    channel_ = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
    watcher_ = WatchChannel(channel_);
    o.channel = channel_;
    o.token = std::make_shared<BearerToken>("token");
    o.spool_dir = dir_;
    auto r = Recorders::Start(std::move(o));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    recorders_ = std::move(r).value();
  }

  bool Connected() { return channel_->GetState(true) == GRPC_CHANNEL_READY; }

  int SpoolFiles() {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      n += e.path().extension() == ".part";
    }
    return n;
  }

  static ssh::ChannelInfo Shell() {
    ssh::ChannelInfo info;
    info.kind = ChannelKind::kShell;
    info.connection_id = "c1";
    info.login = "web";
    info.key_id = "alice";
    info.remote = "127.0.0.1:5555";
    return info;
  }

  std::string dir_;
  SlowCluster cluster_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<void> watcher_;
  std::unique_ptr<Recorders> recorders_;
};

// mezrecd (its catalog) does not answer GetConfig: new sessions start at
// once, in the mode last learnt, and nobody asked.
TEST_F(RecordersTest, NewSessionUsesTheModeLastLearntWithoutAskingMezrecd) {
  Start(Serve());
  ASSERT_TRUE(PollUntil([&] { return Connected(); }));
  recorders_->NoteSetting("off");
  auto off = recorders_->NewTap(Shell(), "n1");
  ASSERT_NE(off, nullptr);
  off->OnExit(0, 0);
  off.reset();
  // off: the start and end are still audited, marked unrecorded.
  ASSERT_TRUE(PollUntil([&] { return cluster_.Audit().size() == 2; }));
  EXPECT_EQ(cluster_.Audit()[0].type(), "session.start");
  EXPECT_NE(cluster_.Audit()[0].details().find("\"recording\":\"off\""),
            std::string::npos);
  EXPECT_EQ(SpoolFiles(), 0);

  // A change applies to the next session.
  recorders_->NoteSetting("node");
  auto node = recorders_->NewTap(Shell(), "n1");
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(SpoolFiles(), 1);
  EXPECT_EQ(recorders_->ModeForNewSession(), RecordingMode::kNode);
  node.reset();
  EXPECT_EQ(cluster_.get_config_calls.load(), 0);
}

// Before the first answer, and for a value the recorder does not know:
// node (records everything, uploads later).
TEST_F(RecordersTest, NodeBeforeTheFirstAnswerAndForAnUnknownValue) {
  Start(Serve());
  ASSERT_TRUE(PollUntil([&] { return Connected(); }));
  EXPECT_EQ(recorders_->ModeForNewSession(), RecordingMode::kNode);
  recorders_->NoteSetting("off");
  recorders_->NoteSetting("");  // No news: the value kept stays.
  EXPECT_EQ(recorders_->ModeForNewSession(), RecordingMode::kOff);
  recorders_->NoteSetting("mirror");
  EXPECT_EQ(recorders_->ModeForNewSession(), RecordingMode::kNode);
  EXPECT_EQ(cluster_.get_config_calls.load(), 0);
}

// mezrecd unreachable: node whatever was learnt (node-sync could not
// stream); the setting is still what the node reports. (Each call waits
// for the channel to connect, at most 2 s.)
TEST_F(RecordersTest, UnreachableMezrecdMeansNode) {
  std::string addr = Serve();
  server_->Shutdown(std::chrono::system_clock::now());
  server_.reset();
  Start(addr);
  recorders_->NoteSetting("node-sync");
  EXPECT_EQ(recorders_->LastKnownMode(), RecordingMode::kNodeSync);
  EXPECT_EQ(recorders_->ModeForNewSession(), RecordingMode::kNode);
  EXPECT_EQ(recorders_->ModeForNewSession(), RecordingMode::kNode);
}

TEST_F(RecordersTest, OverrideWinsOverTheSetting) {
  RecordersOptions o;
  o.mode_override = RecordingMode::kOff;
  Start(Serve(), std::move(o));
  recorders_->NoteSetting("node-sync");
  EXPECT_EQ(recorders_->ModeForNewSession(), RecordingMode::kOff);
  EXPECT_EQ(recorders_->LastKnownMode(), RecordingMode::kOff);
}

// The in-process proxy's source (the catalog): read for every new session;
// when it fails, the value last read applies.
TEST_F(RecordersTest, SettingSourceIsReadForEverySession) {
  std::atomic<int> reads{0};
  std::atomic<bool> fail{false};
  RecordersOptions o;
  o.setting_source = [&]() -> Result<std::string> {
    ++reads;
    if (fail) return Status(Code::kUnavailable, "catalog down");
    return std::string("off");
  };
  Start(Serve(), std::move(o));
  ASSERT_TRUE(PollUntil([&] { return Connected(); }));
  EXPECT_EQ(recorders_->ModeForNewSession(), RecordingMode::kOff);
  fail = true;
  EXPECT_EQ(recorders_->ModeForNewSession(), RecordingMode::kOff);
  EXPECT_EQ(reads.load(), 2);
  EXPECT_EQ(cluster_.get_config_calls.load(), 0);
}

// The proxy-only mezrecd: a thread asks, sessions do not wait for it.
TEST_F(RecordersTest, RefreshThreadLearnsTheSettingOffTheSessionPath) {
  cluster_.Release();  // GetConfig answers at once here.
  cluster_.SetAnswer("off");
  RecordersOptions o;
  o.setting_refresh_us = 20'000;
  Start(Serve(), std::move(o));
  ASSERT_TRUE(PollUntil(
      [&] { return recorders_->LastKnownMode() == RecordingMode::kOff; }));
  cluster_.SetAnswer("node-sync");
  ASSERT_TRUE(PollUntil(
      [&] { return recorders_->LastKnownMode() == RecordingMode::kNodeSync; }));
  EXPECT_GE(cluster_.get_config_calls.load(), 2);
}

TEST(RecordingModeTest, EveryAllowedValueParsesAndEnvNamesTheVariable) {
  const settings::Setting* s = settings::Find(settings::kSessionRecording);
  ASSERT_NE(s, nullptr);
  for (std::string_view v : s->allowed) {
    auto m = ParseRecordingMode(v);
    ASSERT_TRUE(m.ok()) << v;
    EXPECT_EQ(RecordingModeName(*m), v);
  }
  EXPECT_EQ(ParseRecordingMode("sometimes").status().message(),
            "recording mode must be one of node-sync, node, off (got "
            "'sometimes')");
  auto unset = RecordingModeFromEnv(nullptr);
  ASSERT_TRUE(unset.ok());
  EXPECT_FALSE(unset->has_value());
  auto empty = RecordingModeFromEnv("");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
  auto node = RecordingModeFromEnv("node");
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(*node, RecordingMode::kNode);
  auto bad = RecordingModeFromEnv("x");
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "MEZITE_RECORDING_MODE: recording mode must be one of node-sync, "
            "node, off (got 'x')");
}

}  // namespace
}  // namespace mez::recorder
