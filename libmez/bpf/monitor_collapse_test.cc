// Collapsed opens against the running kernel (root, kernel BTF; skipped
// with the reason otherwise): a loop of identical opens becomes one event
// whose count and sequence range cover every open exactly; what is not
// identical stays apart; a held run is delivered at Untrack and after its
// time bound.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "libmez/bpf/monitor.h"
#include "libmez/bpf/monitor_test_util.h"

namespace mez::bpf {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mez-bpf-XXXXXX";
    MEZ_CHECK(mkdtemp(tmpl) != nullptr);
    path_ = RealPath(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << "x";
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void OpenTimes(const std::string& path, int flags, int n) {
  for (int i = 0; i < n; ++i) {
    int fd = open(path.c_str(), flags, 0600);
    if (fd >= 0) close(fd);
  }
}

std::vector<Event> OpensOf(const Collector& c, uint64_t cookie,
                           const std::string& prefix) {
  std::vector<Event> out;
  for (const Event& e : c.Of(cookie, EventKind::kFile)) {
    if (e.file_op == "open" && e.path.rfind(prefix, 0) == 0) out.push_back(e);
  }
  std::sort(out.begin(), out.end(),
            [](const Event& a, const Event& b) { return a.seq < b.seq; });
  return out;
}

TEST(BpfMonitorTest, AThousandIdenticalOpensAreOneEventCoveringEverySeq) {
  MEZ_SKIP_WITHOUT_BPF();
  MonitorOptions options;
  options.open_collapse_ms = 60000;  // only the run's end delivers it
  auto m = OpenMonitor(options);
  ASSERT_NE(m, nullptr);
  TempDir dir;
  const std::string file = dir.File("same");
  PausedChild child([&] {
    OpenTimes(file, O_RDONLY | O_CLOEXEC, 1000);
    _exit(0);
  });
  ASSERT_TRUE(m->Track(child.pid(), 201).ok());
  child.Release();
  EXPECT_EQ(child.Wait(), 0);
  Collector c(m.get());
  c.Drain();

  std::vector<Event> opens = OpensOf(c, 201, file);
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(opens[0].count, 1000u);
  EXPECT_EQ(opens[0].error, 0);
  EXPECT_GE(opens[0].last_time_unix_ns, opens[0].time_unix_ns);
  // Every number from 1 to the last is delivered exactly once.
  Result<SessionCounters> counters = m->Counters(201);
  ASSERT_TRUE(counters.ok());
  std::set<uint64_t> covered;
  for (const Event& e : c.events) {
    ASSERT_NE(e.kind, EventKind::kLoss);
    for (uint64_t s = e.seq; s < e.seq + e.count; ++s) covered.insert(s);
  }
  EXPECT_EQ(covered.size(), counters->seq);
  EXPECT_EQ(*covered.begin(), 1u);
  EXPECT_EQ(*covered.rbegin(), counters->seq);
  ExpectSeqAccountedFor(c, m.get(), 201);
}

TEST(BpfMonitorTest, OpensWithOtherFlagsResultsOrBetweenThemStayApart) {
  MEZ_SKIP_WITHOUT_BPF();
  MonitorOptions options;
  options.open_collapse_ms = 60000;
  auto m = OpenMonitor(options);
  ASSERT_NE(m, nullptr);
  TempDir dir;
  const std::string f = dir.File("f");
  const std::string a = dir.File("a");
  const std::string b = dir.File("b");
  const std::string missing = dir.path() + "/missing";
  const std::string excl = dir.path() + "/excl";
  PausedChild child([&] {
    OpenTimes(f, O_RDONLY, 3);
    OpenTimes(f, O_RDONLY | O_CLOEXEC, 3);
    OpenTimes(missing, O_RDONLY, 3);                  // ENOENT
    OpenTimes(excl, O_WRONLY | O_CREAT | O_EXCL, 3);  // then EEXIST twice
    OpenTimes(a, O_RDONLY, 2);
    OpenTimes(b, O_RDONLY, 1);  // breaks the run of a
    OpenTimes(a, O_RDONLY, 2);
    _exit(0);
  });
  ASSERT_TRUE(m->Track(child.pid(), 202).ok());
  child.Release();
  EXPECT_EQ(child.Wait(), 0);
  Collector c(m.get());
  c.Drain();

  std::vector<Event> opens = OpensOf(c, 202, dir.path() + "/");
  struct Want {
    std::string path;
    uint64_t count;
    int error;
    bool cloexec;
  };
  const std::vector<Want> want = {
      {f, 3, 0, false},
      {f, 3, 0, true},
      {missing, 3, ENOENT, false},
      {excl, 1, 0, false},
      {excl, 2, EEXIST, false},
      {a, 2, 0, false},
      {b, 1, 0, false},
      {a, 2, 0, false},
  };
  ASSERT_EQ(opens.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(ToJsonLine(opens[i]));
    EXPECT_EQ(opens[i].path, want[i].path);
    EXPECT_EQ(opens[i].count, want[i].count);
    EXPECT_EQ(opens[i].error, want[i].error);
    EXPECT_EQ((opens[i].flags & O_CLOEXEC) != 0, want[i].cloexec);
    if (i > 0) {
      EXPECT_EQ(opens[i].seq, opens[i - 1].seq + opens[i - 1].count);
    }
  }
  ExpectSeqAccountedFor(c, m.get(), 202);
}

TEST(BpfMonitorTest, AHeldRunIsDeliveredAtUntrack) {
  MEZ_SKIP_WITHOUT_BPF();
  MonitorOptions options;
  options.open_collapse_ms = 3600 * 1000;  // never by time in this test
  auto m = OpenMonitor(options);
  ASSERT_NE(m, nullptr);
  TempDir dir;
  const std::string file = dir.File("held");
  PausedChild child([&] {
    OpenTimes(file, O_RDONLY, 5);
    _exit(0);
  });
  ASSERT_TRUE(m->Track(child.pid(), 203).ok());
  child.Release();
  EXPECT_EQ(child.Wait(), 0);
  Collector c(m.get());
  // Every record is in the ring buffer once the child is gone: Polls read
  // them all and hold the run.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        m->Poll(0, [&](const Event& e) { c.events.push_back(e); }).ok());
  }
  EXPECT_TRUE(OpensOf(c, 203, file).empty());
  ASSERT_TRUE(m->Untrack(203).ok());
  ASSERT_TRUE(m->Poll(0, [&](const Event& e) { c.events.push_back(e); }).ok());
  std::vector<Event> opens = OpensOf(c, 203, file);
  ASSERT_EQ(opens.size(), 1u);
  EXPECT_EQ(opens[0].count, 5u);
}

TEST(BpfMonitorTest, AHeldRunIsDeliveredAfterItsTimeBound) {
  MEZ_SKIP_WITHOUT_BPF();
  MonitorOptions options;
  options.open_collapse_ms = 200;
  auto m = OpenMonitor(options);
  ASSERT_NE(m, nullptr);
  TempDir dir;
  const std::string file = dir.File("timed");
  int go[2], hold[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(hold), 0);
  PausedChild child([&] {
    close(go[1]);
    close(hold[1]);
    char byte;
    if (read(go[0], &byte, 1) != 1) _exit(1);
    OpenTimes(file, O_RDONLY, 5);
    // Nothing else happens in the session until the test closes the pipe.
    if (read(hold[0], &byte, 1) != 0) _exit(1);
    _exit(0);
  });
  close(go[0]);
  close(hold[0]);
  ASSERT_TRUE(m->Track(child.pid(), 204).ok());
  child.Release();
  Collector c(m.get());
  auto keep = [&](const Event& e) { c.events.push_back(e); };
  // Long Polls, each of which must return when the run it saw begin falls
  // due: first the child's open of /dev/null (PausedChild's), then, once
  // it may go on, its five opens of the file.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5 && c.events.empty(); ++i) {
    ASSERT_TRUE(m->Poll(120'000, keep).ok());
  }
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].path, "/dev/null");
  ASSERT_EQ(write(go[1], "x", 1), 1);
  for (int i = 0; i < 5 && OpensOf(c, 204, file).empty(); ++i) {
    ASSERT_TRUE(m->Poll(120'000, keep).ok());
  }
  ASSERT_EQ(OpensOf(c, 204, file).size(), 1u);
  EXPECT_EQ(OpensOf(c, 204, file)[0].count, 5u);
  // Each is due 200 ms after its first open; 60 s is room for any loaded
  // machine and half the timeout a missed deadline would sit out.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
  // Delivered while the child still waits, so by the time bound alone.
  EXPECT_EQ(waitpid(child.pid(), nullptr, WNOHANG), 0);
  close(go[1]);
  close(hold[1]);
  EXPECT_EQ(child.Wait(), 0);
  c.Drain();
  ExpectSeqAccountedFor(c, m.get(), 204);
}

}  // namespace
}  // namespace mez::bpf
