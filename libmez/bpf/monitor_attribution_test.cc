// Attribution against the running kernel: escapes that do not escape,
// sessions that are not mixed up, Track/Untrack and Open's refusals.
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

// The classic escapes: a new session (setsid), a double fork that leaves
// the grandchild orphaned, a move to another cgroup. Attribution follows
// fork in the kernel, so none of them matters.
TEST(BpfMonitorTest, SetsidDoubleForkAndCgroupMoveStayAttributed) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  // A cgroup to flee to, when cgroup v2 is writable here.
  std::string cgroup =
      "/sys/fs/cgroup/mez-bpf-test-" + std::to_string(getpid());
  bool have_cgroup = mkdir(cgroup.c_str(), 0755) == 0;

  char marker_path[] = "/tmp/mez-bpf-pid-XXXXXX";
  int marker = mkstemp(marker_path);
  ASSERT_GE(marker, 0);
  close(marker);
  PausedChild child([&] {
    if (setsid() < 0) _exit(123);
    pid_t mid = fork();
    if (mid != 0) _exit(mid > 0 ? 0 : 124);
    if (fork() != 0) _exit(0);  // the grandchild is orphaned
    if (have_cgroup) {
      int fd = open((cgroup + "/cgroup.procs").c_str(), O_WRONLY);
      if (fd >= 0) {
        std::string self = std::to_string(getpid());
        if (write(fd, self.data(), self.size()) < 0) _exit(125);
        close(fd);
      }
    }
    Exec(
        {"/bin/sh", "-c",
         "echo $$ > " + std::string(marker_path) + "; exec /bin/true escaped"});
  });
  ASSERT_TRUE(m->Track(child.pid(), 14).ok());
  child.Release();
  EXPECT_EQ(child.Wait(), 0);
  Collector c(m.get());
  ASSERT_TRUE(c.PollUntil([&] {
    const Event* e = c.FindArg(EventKind::kExec, "escaped");
    return e != nullptr && c.Find(14, EventKind::kExit, e->pid) != nullptr;
  }));
  const Event* exec = c.FindArg(EventKind::kExec, "escaped");
  EXPECT_EQ(exec->cookie, 14u);
  EXPECT_EQ(exec->path, RealPath("/bin/true"));
  EXPECT_NE(exec->pid, child.pid());
  EXPECT_EQ(c.Find(14, EventKind::kExit, exec->pid)->exit_code, 0);
  // The shell that ran before it was attributed too, with the same pid.
  const Event* sh = c.FindArg(EventKind::kExec, "/bin/sh");
  ASSERT_NE(sh, nullptr);
  EXPECT_EQ(sh->cookie, 14u);
  EXPECT_EQ(sh->pid, exec->pid);
  unlink(marker_path);
  if (have_cgroup) rmdir(cgroup.c_str());
}

TEST(BpfMonitorTest, OtherProcessesAndSessionsAreNotMixedUp) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  auto loop = [](const std::string& tag) {
    return [tag] {
      Exec({"/bin/sh", "-c",
            "for i in 1 2 3 4 5; do /bin/echo " + tag + "; done"});
    };
  };
  PausedChild a(loop("session-a"));
  PausedChild b(loop("session-b"));
  PausedChild outside(loop("not-tracked"));
  ASSERT_TRUE(m->Track(a.pid(), 21).ok());
  ASSERT_TRUE(m->Track(b.pid(), 22).ok());
  outside.Release();
  a.Release();
  b.Release();
  Collector c(m.get());
  auto echoes = [&](uint64_t cookie) {
    int n = 0;
    for (const auto& e : c.Of(cookie, EventKind::kExec)) {
      if (e.path == RealPath("/bin/echo")) ++n;
    }
    return n;
  };
  ASSERT_TRUE(c.PollUntil([&] { return echoes(21) == 5 && echoes(22) == 5; }));
  EXPECT_EQ(a.Wait(), 0);
  EXPECT_EQ(b.Wait(), 0);
  EXPECT_EQ(outside.Wait(), 0);
  c.Drain();
  for (const auto& e : c.events) {
    ASSERT_TRUE(e.cookie == 21 || e.cookie == 22) << ToJsonLine(e);
    if (e.kind != EventKind::kExec || e.path != RealPath("/bin/echo")) continue;
    ASSERT_EQ(e.argv.size(), 2u);
    EXPECT_EQ(e.argv[1], e.cookie == 21 ? "session-a" : "session-b");
  }
  EXPECT_EQ(c.FindArg(EventKind::kExec, "not-tracked"), nullptr);
  ExpectSeqAccountedFor(c, m.get(), 21);
  ExpectSeqAccountedFor(c, m.get(), 22);
}

TEST(BpfMonitorTest, OpenRefusesBadOptions) {
  MEZ_SKIP_WITHOUT_BPF();
  MonitorOptions options;
  options.ring_bytes = 12345;
  EXPECT_EQ(Monitor::Open(options).status().code(), Code::kInvalidArgument);
  options = MonitorOptions{};
  options.max_tasks = 0;
  EXPECT_EQ(Monitor::Open(options).status().code(), Code::kInvalidArgument);
}

TEST(BpfMonitorTest, UntrackStopsFollowingTheSession) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  PausedChild child([&] {
    close(go[1]);
    char ch;
    if (read(go[0], &ch, 1) != 1) _exit(122);
    Exec({"/bin/true", "after-untrack"});
  });
  close(go[0]);
  ASSERT_TRUE(m->Track(child.pid(), 61).ok());
  child.Release();
  ASSERT_TRUE(m->Untrack(61).ok());
  EXPECT_EQ(m->Untrack(61).code(), Code::kNotFound);
  ASSERT_EQ(write(go[1], "x", 1), 1);
  close(go[1]);
  EXPECT_EQ(child.Wait(), 0);
  Collector c(m.get());
  c.Drain();
  EXPECT_EQ(c.FindArg(EventKind::kExec, "after-untrack"), nullptr);
  // Two Polls after Untrack the cookie is forgotten and can be reused.
  EXPECT_EQ(m->Counters(61).status().code(), Code::kNotFound);
}

TEST(BpfMonitorTest, TrackRefusesBadRequests) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  PausedChild child([] { _exit(0); });
  EXPECT_EQ(m->Track(child.pid(), 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(m->Track(INT_MAX, 71).code(), Code::kNotFound);
  ASSERT_TRUE(m->Track(child.pid(), 71).ok());
  EXPECT_TRUE(m->Track(child.pid(), 71).ok());  // again: no change
  EXPECT_EQ(m->Track(child.pid(), 72).code(), Code::kAlreadyExists);
  EXPECT_EQ(m->Untrack(73).code(), Code::kNotFound);
}

TEST(BpfMonitorTest, OpenInABuildWithoutBpfSaysSo) {
  if (Monitor::Built()) GTEST_SKIP() << "this build has BPF";
  Result<std::unique_ptr<Monitor>> opened = Monitor::Open();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(opened.status().message().find("-DMEZ_BPF=ON"), std::string::npos);
}

// Without the privilege, Open fails with one line naming cause and fix.
TEST(BpfMonitorTest, OpenWithoutPrivilegeSaysSo) {
  MEZ_SKIP_WITHOUT_BPF();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    Result<std::unique_ptr<Monitor>> opened = Monitor::Open();
    std::string text = opened.ok() ? "opened" : opened.status().ToString();
    if (write(fds[1], text.data(), text.size()) < 0) _exit(3);
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) text.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(text,
            "PERMISSION_DENIED: enhanced recording: loading BPF programs needs "
            "root (or CAP_BPF and CAP_PERFMON); run mezd as root");
}

}  // namespace
}  // namespace mez::bpf
