// EventsFrames' bounds, and the EventRouter with the real BPF monitor: a
// child held until it is tracked, its events (the exits included) all
// delivered by Finish, under the feed's own cookie only.
#include "libmez/recorder/events.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "libmez/ssh/child_process.h"

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

}  // namespace
}  // namespace mez::recorder
