// Loss is never silent: bursts, a full ring buffer, a full task table;
// and a lone event is not left waiting for more.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "libmez/bpf/monitor.h"
#include "libmez/bpf/monitor_test_util.h"

extern char** environ;

namespace mez::bpf {
namespace {

// 20,000 execs (from two CPUs at once) while the test polls: each one is
// delivered, or counted in a loss event; nothing goes missing without a
// count. On a loaded two-core machine this takes a minute or two.
TEST(BpfMonitorTest, BurstOfTwentyThousandExecsIsAccountedForExactly) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  constexpr int kExecs = 20000;
  PausedChild child([] { TwoSpawnLoops(kExecs); });
  ASSERT_TRUE(m->Track(child.pid(), 41).ok());
  child.Release();
  Collector c(m.get());
  auto accounted = [&] {
    uint64_t execs = 0, exits = 0;
    for (const auto& e : c.events) {
      if (e.cookie != 41) continue;
      if (e.kind == EventKind::kExec) ++execs;
      if (e.kind == EventKind::kExit) ++exits;
      if (e.kind == EventKind::kLoss) {
        execs += e.lost_exec;
        exits += e.lost_exit;
      }
    }
    return std::make_pair(execs, exits);
  };
  ASSERT_TRUE(c.PollUntil(
      [&] {
        auto [execs, exits] = accounted();
        return execs >= kExecs && exits >= kExecs;
      },
      480));
  EXPECT_EQ(child.Wait(), 0);
  c.Drain();
  auto [execs, exits] = accounted();
  EXPECT_EQ(execs, uint64_t{kExecs});
  EXPECT_EQ(exits, uint64_t{kExecs});
  ExpectSeqAccountedFor(c, m.get(), 41);
  Result<SessionCounters> counters = m->Counters(41);
  ASSERT_TRUE(counters.ok());
  // Each /bin/true also opens files (the loader's): those are counted too.
  EXPECT_GT(counters->seq, 2u * kExecs);
  EXPECT_EQ(counters->lost_forks, 0u);
  RecordProperty("lost_exec", std::to_string(counters->lost_exec));
  RecordProperty("lost_exit", std::to_string(counters->lost_exit));
  RecordProperty("lost_file", std::to_string(counters->lost_file));
}

// A ring buffer of one page that nobody reads while 500 execs run must
// drop; every drop is reported, with the exact count, per kind.
TEST(BpfMonitorTest, FullRingBufferReportsTheExactLoss) {
  MEZ_SKIP_WITHOUT_BPF();
  MonitorOptions options;
  options.ring_bytes = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  auto m = OpenMonitor(options);
  ASSERT_NE(m, nullptr);
  constexpr int kExecs = 500;
  PausedChild child([] { SpawnLoop(kExecs); });
  ASSERT_TRUE(m->Track(child.pid(), 51).ok());
  child.Release();
  EXPECT_EQ(child.Wait(), 0);  // no Poll while it runs
  Collector c(m.get());
  c.Drain();
  Result<SessionCounters> counters = m->Counters(51);
  ASSERT_TRUE(counters.ok());
  uint64_t execs = 0, exits = 0, files = 0, losses = 0;
  uint64_t lost_exec = 0, lost_exit = 0, lost_file = 0;
  for (const auto& e : c.events) {
    ASSERT_EQ(e.cookie, 51u);
    if (e.kind == EventKind::kExec) ++execs;
    if (e.kind == EventKind::kExit) ++exits;
    if (e.kind == EventKind::kFile) ++files;
    if (e.kind == EventKind::kLoss) {
      ++losses;
      lost_exec += e.lost_exec;
      lost_exit += e.lost_exit;
      lost_file += e.lost_file;
      EXPECT_EQ(e.seq, counters->seq);  // read after everything happened
    }
  }
  EXPECT_EQ(losses, 1u);
  EXPECT_GT(lost_exec + lost_exit, 0u);
  EXPECT_EQ(files + lost_file + execs + lost_exec + exits + lost_exit,
            counters->seq);
  EXPECT_EQ(execs + lost_exec, uint64_t{kExecs});
  EXPECT_EQ(exits + lost_exit, uint64_t{kExecs});
  ExpectSeqAccountedFor(c, m.get(), 51);
  // Nothing more to report once it was reported.
  int more = 0;
  ASSERT_TRUE(m->Poll(0, [&](const Event&) { ++more; }).ok());
  EXPECT_EQ(more, 0);
}

// A session that forks more processes than the kernel can follow (a
// hostile way to slip children past the monitor) is reported, by count.
TEST(BpfMonitorTest, ForksPastTheTaskLimitAreCountedAsLost) {
  MEZ_SKIP_WITHOUT_BPF();
  MonitorOptions options;
  options.max_tasks = 4;
  auto m = OpenMonitor(options);
  ASSERT_NE(m, nullptr);
  int hold[2];
  ASSERT_EQ(pipe(hold), 0);
  // The child and 3 of its 8 children fit; 5 children are not followed.
  PausedChild child([&] {
    close(hold[1]);
    std::vector<pid_t> kids;
    for (int i = 0; i < 8; ++i) {
      pid_t kid = fork();
      if (kid == 0) {
        char ch;
        if (read(hold[0], &ch, 1) < 0) _exit(1);
        _exit(0);
      }
      kids.push_back(kid);
    }
    for (pid_t kid : kids) waitpid(kid, nullptr, 0);
    _exit(0);
  });
  close(hold[0]);
  ASSERT_TRUE(m->Track(child.pid(), 81).ok());
  child.Release();
  Collector c(m.get());
  uint64_t lost_forks = 0;
  ASSERT_TRUE(c.PollUntil([&] {
    lost_forks = 0;
    for (const auto& e : c.Of(81, EventKind::kLoss)) lost_forks += e.lost_forks;
    return lost_forks >= 5;
  }));
  close(hold[1]);  // the children exit
  EXPECT_EQ(child.Wait(), 0);
  c.Drain();
  lost_forks = 0;
  for (const auto& e : c.Of(81, EventKind::kLoss)) lost_forks += e.lost_forks;
  EXPECT_EQ(lost_forks, 5u);
}

// The kernel wakes the reader only once wakeup_bytes (256 KiB by default)
// wait, so a few small records never wake it: Poll must read on its own
// and return them, not sit out its whole timeout.
TEST(BpfMonitorTest, ALoneEventIsDeliveredLongBeforePollsTimeout) {
  MEZ_SKIP_WITHOUT_BPF();
  MonitorOptions options;
  options.file_events = false;  // only the exec and the exit: 2 records
  auto m = OpenMonitor(options);
  ASSERT_NE(m, nullptr);
  PausedChild child([] { Exec({"/bin/true"}); });
  ASSERT_TRUE(m->Track(child.pid(), 61).ok());
  child.Release();
  EXPECT_EQ(child.Wait(), 0);
  Collector c(m.get());
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3 && !c.Find(61, EventKind::kExit, child.pid()); ++i) {
    Result<int> n =
        m->Poll(120'000, [&](const Event& e) { c.events.push_back(e); });
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_GT(*n, 0);  // it returned because it delivered, not timed out
  }
  ASSERT_NE(c.Find(61, EventKind::kExit, child.pid()), nullptr);
  // Read within 50 ms here; 60 s leaves room for any loaded machine and
  // is still half the timeout a missed read would sit out.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
}

}  // namespace
}  // namespace mez::bpf
