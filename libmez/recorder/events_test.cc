// EventsFrames' bounds, and the EventRouter with the real BPF monitor: a
// child held until it is tracked, its events (the exits included) all
// delivered by Finish, under the feed's own cookie only.
#include "libmez/recorder/events.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "libmez/recorder/sync_recorder.h"
#include "libmez/rpc/channel.h"
#include "libmez/ssh/child_process.h"
#include "mezite/v1/recording.grpc.pb.h"

namespace mez::recorder {
namespace {

using nlohmann::json;

TEST(EventsFramesTest, KeepsOrderAndBoundsEachFrame) {
  std::vector<std::string> lines;
  for (int i = 0; i < 2500; ++i)
    lines.push_back("{\"n\":" + std::to_string(i) + "}");
  auto frames = EventsFrames(lines, 42);
  ASSERT_EQ(frames.size(), 3u);  // 1024 + 1024 + 452 lines
  int n = 0;
  for (const auto& f : frames) {
    ASSERT_TRUE(f.has_events());
    EXPECT_EQ(f.events().offset_us(), 42);
    EXPECT_LE(f.events().lines_size(), kMaxEventsFrameLines);
    for (const std::string& l : f.events().lines()) {
      EXPECT_EQ(l, lines[static_cast<size_t>(n++)]);
    }
  }
  EXPECT_EQ(n, 2500);

  // By bytes: 100 KiB lines go two to a frame; a line over the bound alone.
  std::vector<std::string> big(5, std::string(100 << 10, 'x'));
  big.insert(big.begin() + 2, std::string(kMaxEventsFrameBytes + 1, 'y'));
  frames = EventsFrames(big, 0);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].events().lines_size(), 2);
  EXPECT_EQ(frames[1].events().lines_size(), 1);
  EXPECT_EQ(frames[1].events().lines(0)[0], 'y');
  EXPECT_EQ(frames[2].events().lines_size(), 2);
  EXPECT_EQ(frames[3].events().lines_size(), 1);
  for (const auto& f : frames) {
    EXPECT_LT(f.ByteSizeLong(), 2u * kMaxEventsFrameBytes);
  }
  EXPECT_TRUE(EventsFrames({}, 0).empty());
}

class EventRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!bpf::Monitor::Built()) {
      GTEST_SKIP() << "this build has no BPF (MEZ_BPF off or missing tools)";
    }
    auto r = EventRouter::Open();
    ASSERT_TRUE(r.ok()) << r.status().message();
    router_ = std::move(r).value();
  }
  std::unique_ptr<EventRouter> router_;
};

// Runs `command` through /bin/sh, tracked by `feed` before it runs; returns
// its exit status.
int RunTracked(EventFeed& feed, const std::string& command) {
  ssh::ChildSpec spec;
  spec.shell = "/bin/sh";
  spec.command = command;
  spec.home = "/";
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.before_start = [&feed](pid_t pid) { return feed.Track(pid); };
  auto child = ssh::ChildProcess::Spawn(spec);
  EXPECT_TRUE(child.ok()) << child.status().message();
  if (!child.ok()) return -1;
  int status = -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!(*child)->Reap(&status)) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status;
}

TEST_F(EventRouterTest, FinishDeliversEveryEventOfTheFeedOnly) {
  auto a = router_->NewFeed();
  auto b = router_->NewFeed();
  EXPECT_NE(a->cookie(), 0u);
  EXPECT_NE(b->cookie(), 0u);
  EXPECT_NE(a->cookie(), b->cookie());
  EXPECT_EQ(RunTracked(*a, "/bin/echo feed-a >/dev/null; exit 3"), 3);
  EXPECT_EQ(RunTracked(*b, "/bin/echo feed-b >/dev/null"), 0);
  // Nothing is waited for: what Finish returns is all there is.
  std::vector<std::string> lines = a->Take();
  for (std::string& l : a->Finish()) lines.push_back(std::move(l));
  std::vector<std::string> b_lines = b->Finish();

  int sh_exit = -1;
  bool echo_a = false;
  std::set<uint64_t> seqs;
  for (const std::string& l : lines) {
    json e = json::parse(l);
    EXPECT_EQ(e["cookie"].get<uint64_t>(), a->cookie()) << l;
    EXPECT_NE(e["type"], "loss") << l;
    seqs.insert(e["seq"].get<uint64_t>());
    if (e["type"] == "exec" && e["argv"].size() == 2 &&
        e["argv"][1] == "feed-a") {
      echo_a = true;
    }
    EXPECT_EQ(l.find("feed-b"), std::string::npos) << l;
    // The shell's exit: the last process of the feed.
    if (e["type"] == "exit" && e.contains("exit_code") && e["exit_code"] == 3) {
      sh_exit = 3;
    }
  }
  EXPECT_TRUE(echo_a);
  EXPECT_EQ(sh_exit, 3) << "the last exit was not delivered";
  // Gap-free from 1.
  ASSERT_FALSE(seqs.empty());
  EXPECT_EQ(*seqs.begin(), 1u);
  EXPECT_EQ(*seqs.rbegin(), seqs.size());
  bool echo_b = false;
  for (const std::string& l : b_lines) {
    json e = json::parse(l);
    EXPECT_EQ(e["cookie"].get<uint64_t>(), b->cookie());
    echo_b |= l.find("feed-b") != std::string::npos;
  }
  EXPECT_TRUE(echo_b);
  EXPECT_TRUE(a->Finish().empty());  // Once.
}

// Past max_pending_bytes the router drops a channel's events and says how
// many in a loss line: with room for none, the loss line accounts for
// every number handed out.
TEST_F(EventRouterTest, EventsPastTheBoundAreCountedAsLost) {
  router_.reset();
  auto tiny = EventRouter::Open({}, 1);
  ASSERT_TRUE(tiny.ok()) << tiny.status().message();
  auto feed = (*tiny)->NewFeed();
  EXPECT_EQ(RunTracked(*feed, "/bin/true; /bin/true"), 0);
  std::vector<std::string> lines = feed->Finish();
  ASSERT_EQ(lines.size(), 1u);
  json loss = json::parse(lines[0]);
  EXPECT_EQ(loss["type"], "loss");
  EXPECT_EQ(loss["cookie"].get<uint64_t>(), feed->cookie());
  uint64_t lost =
      loss["lost_exec"].get<uint64_t>() + loss["lost_exit"].get<uint64_t>() +
      loss["lost_file"].get<uint64_t>() + loss["lost_net"].get<uint64_t>();
  EXPECT_GE(loss["lost_exec"].get<uint64_t>(), 2u);
  EXPECT_EQ(lost, loss["seq"].get<uint64_t>()) << lines[0];
}

// Record keeps every frame after the header (a batch's frames one by one)
// and fails the stream at the first events frame when told to.
class KeepingRecording : public mezite::v1::Recording::Service {
 public:
  grpc::Status Record(grpc::ServerContext* ctx,
                      grpc::ServerReader<mezite::v1::RecordFrame>* reader,
                      mezite::v1::RecordSummary* summary) override {
    mezite::v1::RecordFrame frame;
    if (!reader->Read(&frame) || !frame.has_header()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no header");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      header_ = frame.header();
    }
    ctx->AddInitialMetadata("mezite-accepted", "1");
    reader->SendInitialMetadata();
    summary->set_session_id(frame.header().session_id());
    while (reader->Read(&frame)) {
      std::vector<mezite::v1::RecordFrame> got;
      if (frame.has_batch()) {
        for (const auto& f : frame.batch().frames()) got.push_back(f);
      } else {
        got.push_back(frame);
      }
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& f : got) {
        if (f.has_events() && refuse_events_) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "events frames are refused here");
        }
        summary->set_bytes(summary->bytes() + f.chunk().data().size());
        frames_.push_back(f);
      }
    }
    return grpc::Status::OK;
  }
  std::vector<mezite::v1::RecordFrame> frames() {
    std::lock_guard<std::mutex> lock(mu_);
    return frames_;
  }
  mezite::v1::RecordHeader header() {
    std::lock_guard<std::mutex> lock(mu_);
    return header_;
  }
  void RefuseEvents() {
    std::lock_guard<std::mutex> lock(mu_);
    refuse_events_ = true;
  }

 private:
  std::mutex mu_;
  mezite::v1::RecordHeader header_;
  std::vector<mezite::v1::RecordFrame> frames_;
  bool refuse_events_ = false;
};

class NodeSyncEventsTest : public EventRouterTest {
 protected:
  void SetUp() override {
    EventRouterTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    options_.channel =
        rpc::OpenPlaintextChannel("127.0.0.1:" + std::to_string(port));
    options_.node_token = std::make_shared<rpc::BearerToken>("t");
    options_.node = "node-1";
    options_.enhanced = true;
    options_.events = router_.get();
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  // An exec channel's recorder, whose program (`command`) the recorder
  // follows from its start; returns the program's exit status.
  int Session(SyncRecorder& rec, const std::string& command) {
    ssh::ChildSpec spec;
    spec.shell = "/bin/sh";
    spec.command = command;
    spec.home = "/";
    spec.env = {"PATH=/usr/bin:/bin"};
    spec.before_start = [&rec](pid_t pid) { return rec.TrackProcess(pid); };
    auto child = ssh::ChildProcess::Spawn(spec);
    EXPECT_TRUE(child.ok()) << child.status().message();
    if (!child.ok()) return -1;
    int status = -1;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!(*child)->Reap(&status)) {
      if (std::chrono::steady_clock::now() > deadline) return -1;
      rec.EndReason();  // As the SSH server polls it.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status;
  }
  static ssh::ChannelInfo ExecInfo() {
    ssh::ChannelInfo info;
    info.kind = ChannelKind::kExec;
    info.login = "someone";
    info.command = "test";
    return info;
  }

  KeepingRecording service_;
  std::unique_ptr<grpc::Server> server_;
  SyncRecorderOptions options_;
};

TEST_F(NodeSyncEventsTest, EventsGoOnTheStreamBeforeTheExit) {
  auto rec = SyncRecorder::Start(options_, ExecInfo());
  ASSERT_TRUE(rec->EndReason().empty()) << rec->EndReason();
  EXPECT_EQ(Session(*rec, "/bin/echo on-the-stream >/dev/null; exit 5"), 5);
  rec->OnExit(5, 0);
  EXPECT_TRUE(rec->EndReason().empty()) << rec->EndReason();
  rec.reset();
  EXPECT_TRUE(service_.header().has_enhanced() && service_.header().enhanced());
  std::vector<mezite::v1::RecordFrame> frames = service_.frames();
  ASSERT_FALSE(frames.empty());
  EXPECT_TRUE(frames.back().has_exit());
  bool echo = false, exit5 = false;
  std::set<uint64_t> cookies;
  for (const auto& f : frames) {
    if (!f.has_events()) continue;
    for (const std::string& l : f.events().lines()) {
      json e = json::parse(l);
      cookies.insert(e["cookie"].get<uint64_t>());
      echo |= e["type"] == "exec" && e["argv"].size() == 2 &&
              e["argv"][1] == "on-the-stream";
      exit5 |=
          e["type"] == "exit" && e.contains("exit_code") && e["exit_code"] == 5;
    }
  }
  EXPECT_TRUE(echo);
  EXPECT_TRUE(exit5) << "the last exit is not before the exit frame";
  EXPECT_EQ(cookies.size(), 1u);
}

// A stream that refuses the events ends the session like any broken
// stream (fail closed), noticed as a refused chunk is: at the next write.
TEST_F(NodeSyncEventsTest, AStreamThatBreaksOnEventsEndsTheSession) {
  service_.RefuseEvents();
  auto rec = SyncRecorder::Start(options_, ExecInfo());
  ASSERT_TRUE(rec->EndReason().empty()) << rec->EndReason();
  EXPECT_EQ(Session(*rec, "/bin/true"), 0);
  std::string reason;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (reason.empty() && std::chrono::steady_clock::now() < deadline) {
    // The user's output goes on: gRPC reports the refusal at a next write.
    rec->OnData(Direction::kOut, "x", 0);
    reason = rec->EndReason();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(reason.find("events frames are refused here"), std::string::npos)
      << reason;
}

}  // namespace
}  // namespace mez::recorder
