// OpenCollapser on hand-made events: what joins a run, what ends it, and
// that every sequence number is delivered exactly once.
#include "libmez/bpf/collapse.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace mez::bpf {
namespace {

constexpr uint64_t kWindow = 1'000'000'000;  // 1 s

Event Open(uint64_t seq, const std::string& path, uint64_t mono_ns = 0,
           int error = 0) {
  Event e;
  e.kind = EventKind::kFile;
  e.file_op = "open";
  e.cookie = 7;
  e.seq = seq;
  e.monotonic_ns = mono_ns == 0 ? 1000 + seq : mono_ns;
  e.time_unix_ns = static_cast<int64_t>(e.monotonic_ns) + 5;
  e.pid = 100;
  e.ppid = 99;
  e.path = path;
  e.flags = 0;
  e.error = error;
  e.fd = error == 0 ? 3 : -1;
  return e;
}

struct Sink {
  std::vector<Event> events;
  OpenCollapser::Emit emit() {
    return [this](const Event& e) { events.push_back(e); };
  }
};

TEST(BpfCollapseTest, IdenticalOpensBecomeOneEventWithTheirSeqRange) {
  OpenCollapser c(kWindow);
  Sink out;
  for (uint64_t seq = 1; seq <= 1000; ++seq) {
    Event e = Open(seq, "/etc/hosts");
    e.fd = static_cast<int>(3 + seq % 2);  // another descriptor each time
    c.Add(e, out.emit());
  }
  EXPECT_TRUE(out.events.empty());
  EXPECT_EQ(c.held(), 1u);
  c.Flush(7, out.emit());
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].seq, 1u);
  EXPECT_EQ(out.events[0].count, 1000u);
  EXPECT_EQ(out.events[0].fd, 4);  // the first's
  EXPECT_EQ(out.events[0].time_unix_ns, 1001 + 5);
  EXPECT_EQ(out.events[0].last_time_unix_ns, 2000 + 5);
  EXPECT_EQ(out.events[0].last_monotonic_ns, 2000u);
  const std::string json = ToJsonLine(out.events[0]);
  EXPECT_NE(json.find("\"count\":1000"), std::string::npos) << json;
  EXPECT_NE(json.find("\"last_time_unix_ns\":2005"), std::string::npos);
  EXPECT_EQ(c.held(), 0u);
}

TEST(BpfCollapseTest, DifferentFlagsResultsProcessesOrSessionsAreNotMerged) {
  std::vector<Event> differ;
  Event e = Open(2, "/a");
  e.flags = 02000000;  // O_CLOEXEC
  differ.push_back(e);
  differ.push_back(Open(2, "/a", 0, 2));  // ENOENT
  differ.push_back(Open(2, "/b"));
  e = Open(2, "/a");
  e.pid = 101;
  differ.push_back(e);
  e = Open(2, "/a");
  e.euid = 1000;
  differ.push_back(e);
  e = Open(2, "/a");
  e.mode = 0600;
  differ.push_back(e);
  e = Open(2, "/a");
  e.path_cut = true;
  differ.push_back(e);
  e = Open(2, "/a");
  e.file_op = "unlink";
  differ.push_back(e);
  for (const Event& next : differ) {
    EXPECT_FALSE(ExtendsRun(Open(1, "/a"), next, kWindow)) << ToJsonLine(next);
  }
  EXPECT_TRUE(ExtendsRun(Open(1, "/a"), Open(2, "/a"), kWindow));
  EXPECT_FALSE(ExtendsRun(Open(1, "/a"), Open(2, "/a"), 0));
  // Another session: Add keeps one run per session, so both are held.
  OpenCollapser c(kWindow);
  Sink out;
  c.Add(Open(1, "/a"), out.emit());
  e = Open(1, "/a");
  e.cookie = 8;
  c.Add(e, out.emit());
  EXPECT_EQ(c.held(), 2u);
  EXPECT_TRUE(out.events.empty());
}

TEST(BpfCollapseTest, AnyOtherEventOfTheSessionEndsTheRun) {
  OpenCollapser c(kWindow);
  Sink out;
  c.Add(Open(1, "/a"), out.emit());
  c.Add(Open(2, "/a"), out.emit());
  c.Add(Open(3, "/b"), out.emit());  // another file: ends the run of /a
  c.Add(Open(4, "/a"), out.emit());
  Event exit_event;
  exit_event.kind = EventKind::kExit;
  exit_event.cookie = 7;
  exit_event.seq = 5;
  c.Add(exit_event, out.emit());
  ASSERT_EQ(out.events.size(), 4u);
  EXPECT_EQ(out.events[0].path, "/a");
  EXPECT_EQ(out.events[0].count, 2u);
  EXPECT_EQ(out.events[1].path, "/b");
  EXPECT_EQ(out.events[1].count, 1u);
  EXPECT_EQ(out.events[2].seq, 4u);
  EXPECT_EQ(out.events[2].count, 1u);
  EXPECT_EQ(out.events[3].kind, EventKind::kExit);
  EXPECT_EQ(c.held(), 0u);
}

TEST(BpfCollapseTest, AGapOrReorderInTheSequenceEndsTheRun) {
  // Events of one session from two CPUs can arrive out of order: a run
  // only takes the number right after its own, so its range stays exact.
  OpenCollapser c(kWindow);
  Sink out;
  c.Add(Open(1, "/a"), out.emit());
  c.Add(Open(3, "/a"), out.emit());  // 2 is elsewhere (or lost)
  c.Add(Open(2, "/a"), out.emit());
  c.Flush(7, out.emit());
  std::multiset<uint64_t> seqs;
  for (const Event& e : out.events) {
    for (uint64_t s = e.seq; s < e.seq + e.count; ++s) seqs.insert(s);
  }
  EXPECT_EQ(seqs, (std::multiset<uint64_t>{1, 2, 3}));
  EXPECT_EQ(out.events.size(), 3u);
}

TEST(BpfCollapseTest, RunsAreDeliveredOnceTheirWindowHasPassed) {
  OpenCollapser c(kWindow);
  Sink out;
  c.Add(Open(1, "/a", 5'000), out.emit());
  c.Add(Open(2, "/a", 6'000), out.emit());
  ASSERT_TRUE(c.NextDeadline().has_value());
  EXPECT_EQ(*c.NextDeadline(), 5'000 + kWindow);
  c.FlushExpired(5'000 + kWindow - 1, out.emit());
  EXPECT_TRUE(out.events.empty());
  c.FlushExpired(5'000 + kWindow, out.emit());
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].count, 2u);
  EXPECT_FALSE(c.NextDeadline().has_value());
  // An open past the window of its run's first starts a new run.
  c.Add(Open(3, "/a", 10'000), out.emit());
  c.Add(Open(4, "/a", 10'000 + kWindow), out.emit());
  EXPECT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[1].seq, 3u);
  c.FlushIf([](uint64_t cookie) { return cookie == 7; }, out.emit());
  ASSERT_EQ(out.events.size(), 3u);
  EXPECT_EQ(out.events[2].seq, 4u);
}

TEST(BpfCollapseTest, WindowZeroDeliversEveryEventAtOnce) {
  OpenCollapser c(0);
  Sink out;
  c.Add(Open(1, "/a"), out.emit());
  c.Add(Open(2, "/a"), out.emit());
  EXPECT_EQ(out.events.size(), 2u);
  EXPECT_EQ(c.held(), 0u);
  EXPECT_FALSE(c.NextDeadline().has_value());
}

}  // namespace
}  // namespace mez::bpf
