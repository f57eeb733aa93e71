// Exec and exit events against the running kernel (root, kernel BTF;
// skipped with the reason otherwise): argv, paths, scripts, exit status.
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

// Without file events (MonitorOptions::file_events), the exec and the exit
// are the session's events 1 and 2.
TEST(BpfMonitorTest, EchoWithFiftyArgsAndAnEightKiBArgIsComplete) {
  MEZ_SKIP_WITHOUT_BPF();
  MonitorOptions options;
  options.file_events = false;
  auto m = OpenMonitor(options);
  ASSERT_NE(m, nullptr);
  std::vector<std::string> args = {"/bin/echo"};
  for (int i = 0; i < 50; ++i) args.push_back("arg" + std::to_string(i));
  args.push_back(std::string(8192, 'x'));
  uint64_t bytes = 0;
  for (const auto& a : args) bytes += a.size() + 1;

  PausedChild child([&] { Exec(args); });
  ASSERT_TRUE(m->Track(child.pid(), 11).ok());
  child.Release();
  Collector c(m.get());
  ASSERT_TRUE(
      c.PollUntil([&] { return c.Find(11, EventKind::kExit, child.pid()); }));
  EXPECT_EQ(child.Wait(), 0);

  const Event* exec = c.Find(11, EventKind::kExec, child.pid());
  ASSERT_NE(exec, nullptr);
  EXPECT_EQ(exec->path, RealPath("/bin/echo"));
  EXPECT_FALSE(exec->path_cut);
  EXPECT_EQ(exec->ppid, getpid());
  EXPECT_EQ(exec->pgid, getpgrp());  // The test's own group: no setpgid.
  EXPECT_EQ(exec->uid, 0u);
  EXPECT_EQ(exec->euid, 0u);
  EXPECT_EQ(exec->cwd, RealPath(std::filesystem::current_path()));
  EXPECT_EQ(exec->argv, args);
  EXPECT_EQ(exec->argv_bytes, bytes);
  EXPECT_EQ(exec->argv_cut_bytes, 0u);
  EXPECT_EQ(exec->seq, 1u);

  const Event* exit = c.Find(11, EventKind::kExit, child.pid());
  ASSERT_NE(exit, nullptr);
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_FALSE(exit->signal.has_value());
  EXPECT_EQ(exit->seq, 2u);
  EXPECT_GT(exit->duration_ns, 0u);
  EXPECT_GE(exit->monotonic_ns, exec->monotonic_ns);
  ExpectSeqAccountedFor(c, m.get(), 11);
}

// Untrack names the session's processes still running: from then on
// nothing they do is reported, so the recorder says they were left.
TEST(BpfMonitorTest, UntrackNamesTheProcessesLeftRunning) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  PausedChild child([&] { Exec({"/bin/sleep", "30"}); });
  ASSERT_TRUE(m->Track(child.pid(), 21).ok());
  child.Release();
  Collector c(m.get());
  ASSERT_TRUE(
      c.PollUntil([&] { return c.Find(21, EventKind::kExec, child.pid()); }));
  std::vector<pid_t> left;
  ASSERT_TRUE(m->Untrack(21, &left).ok());
  EXPECT_EQ(left, std::vector<pid_t>{child.pid()});
  kill(child.pid(), SIGKILL);
  child.Wait();
  // An exited session leaves nothing.
  PausedChild done([&] { Exec({"/bin/true"}); });
  ASSERT_TRUE(m->Track(done.pid(), 22).ok());
  done.Release();
  EXPECT_EQ(done.Wait(), 0);
  ASSERT_TRUE(
      c.PollUntil([&] { return c.Find(22, EventKind::kExit, done.pid()); }));
  ASSERT_TRUE(m->Untrack(22, &left).ok());
  EXPECT_TRUE(left.empty());
}

TEST(BpfMonitorTest, ArgvOverTheCapIsCutByAnExactCount) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  std::vector<std::string> args = {"/bin/echo", std::string(10000, 'a'),
                                   std::string(10000, 'b'),
                                   std::string(10000, 'c')};
  std::string joined;
  for (const auto& a : args) joined += a + '\0';

  PausedChild child([&] { Exec(args); });
  ASSERT_TRUE(m->Track(child.pid(), 12).ok());
  child.Release();
  Collector c(m.get());
  ASSERT_TRUE(
      c.PollUntil([&] { return c.Find(12, EventKind::kExit, child.pid()); }));
  child.Wait();
  const Event* exec = c.Find(12, EventKind::kExec, child.pid());
  ASSERT_NE(exec, nullptr);
  EXPECT_EQ(exec->argv_bytes, joined.size());
  EXPECT_EQ(exec->argv_cut_bytes, joined.size() - kArgvCap);
  std::string kept;
  for (size_t i = 0; i < exec->argv.size(); ++i) {
    kept += exec->argv[i];
    if (i + 1 < exec->argv.size()) kept += '\0';
  }
  EXPECT_EQ(kept, joined.substr(0, kArgvCap));
}

TEST(BpfMonitorTest, ExecByRelativePathShowsTheAbsolutePath) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  char tmpl[] = "/tmp/mez-bpf-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = RealPath(tmpl);
  std::filesystem::create_directory(dir + "/sub dir");
  std::filesystem::copy_file(RealPath("/bin/true"), dir + "/sub dir/mytrue");

  PausedChild child([&] {
    if (chdir((dir + "/sub dir").c_str()) != 0) _exit(122);
    Exec({"./mytrue", "relative"});
  });
  ASSERT_TRUE(m->Track(child.pid(), 13).ok());
  child.Release();
  Collector c(m.get());
  ASSERT_TRUE(
      c.PollUntil([&] { return c.Find(13, EventKind::kExit, child.pid()); }));
  EXPECT_EQ(child.Wait(), 0);
  const Event* exec = c.Find(13, EventKind::kExec, child.pid());
  ASSERT_NE(exec, nullptr);
  EXPECT_EQ(exec->path, dir + "/sub dir/mytrue");
  EXPECT_EQ(exec->cwd, dir + "/sub dir");
  EXPECT_EQ(exec->argv, (std::vector<std::string>{"./mytrue", "relative"}));
  std::filesystem::remove_all(dir);
}

// A #! script runs its interpreter: the path is the interpreter's, argv
// names the script. A file-less program (memfd) shows the memfd's name.
TEST(BpfMonitorTest, ScriptsAndMemfdPrograms) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  char tmpl[] = "/tmp/mez-bpf-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = RealPath(tmpl);
  {
    std::ofstream script(dir + "/script.sh");
    script << "#!/bin/sh\nexit 3\n";
  }
  ASSERT_EQ(chmod((dir + "/script.sh").c_str(), 0755), 0);

  PausedChild script([&] {
    if (chdir(dir.c_str()) != 0) _exit(122);
    Exec({"./script.sh", "arg"});
  });
  PausedChild memfd([&] {
    int fd = memfd_create("mez-prog", 0);
    int src = open("/bin/true", O_RDONLY);
    if (fd < 0 || src < 0) _exit(122);
    char buf[65536];
    ssize_t n;
    while ((n = read(src, buf, sizeof(buf))) > 0) {
      if (write(fd, buf, n) != n) _exit(123);
    }
    char arg0[] = "mez-prog";
    char* argv[] = {arg0, nullptr};
    fexecve(fd, argv, environ);
    _exit(124);
  });
  ASSERT_TRUE(m->Track(script.pid(), 17).ok());
  ASSERT_TRUE(m->Track(memfd.pid(), 18).ok());
  script.Release();
  memfd.Release();
  Collector c(m.get());
  ASSERT_TRUE(c.PollUntil([&] {
    return c.Find(17, EventKind::kExit, script.pid()) &&
           c.Find(18, EventKind::kExit, memfd.pid());
  }));
  EXPECT_EQ(WEXITSTATUS(script.Wait()), 3);
  EXPECT_EQ(memfd.Wait(), 0);

  const Event* e = c.Find(17, EventKind::kExec, script.pid());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->path, RealPath("/bin/sh"));
  EXPECT_EQ(e->argv,
            (std::vector<std::string>{"/bin/sh", "./script.sh", "arg"}));
  EXPECT_EQ(c.Find(17, EventKind::kExit, script.pid())->exit_code, 3);

  e = c.Find(18, EventKind::kExec, memfd.pid());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->path, "/memfd:mez-prog");
  EXPECT_EQ(e->argv, (std::vector<std::string>{"mez-prog"}));
  std::filesystem::remove_all(dir);
}

// Paths deeper than 64 components or longer than the kernel keeps are
// marked cut and keep their last components, never shown as if whole.
TEST(BpfMonitorTest, DeepAndLongPathsAreMarkedCut) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  char tmpl[] = "/tmp/mez-bpf-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = RealPath(tmpl);
  const std::string long_name(200, 'n');
  std::string deep = dir, wide = dir;
  for (int i = 0; i < 70; ++i) deep += "/d";
  for (int i = 0; i < 20; ++i) wide += "/" + long_name;
  std::filesystem::create_directories(deep);
  std::filesystem::create_directories(wide);
  std::filesystem::copy_file(RealPath("/bin/true"), wide + "/t");

  PausedChild in_deep([&] {
    if (chdir(deep.c_str()) != 0) _exit(122);
    Exec({"/bin/true", "deep"});
  });
  PausedChild in_wide([&] {
    if (chdir(wide.c_str()) != 0) _exit(122);
    Exec({"./t", "wide"});
  });
  ASSERT_TRUE(m->Track(in_deep.pid(), 15).ok());
  ASSERT_TRUE(m->Track(in_wide.pid(), 16).ok());
  in_deep.Release();
  in_wide.Release();
  Collector c(m.get());
  ASSERT_TRUE(c.PollUntil([&] {
    return c.Find(15, EventKind::kExit, in_deep.pid()) &&
           c.Find(16, EventKind::kExit, in_wide.pid());
  }));
  EXPECT_EQ(in_deep.Wait(), 0);
  EXPECT_EQ(in_wide.Wait(), 0);

  const Event* e = c.Find(15, EventKind::kExec, in_deep.pid());
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->cwd_cut);
  EXPECT_FALSE(e->path_cut);
  EXPECT_EQ(e->cwd.rfind(".../d/d/", 0), 0u) << e->cwd;
  EXPECT_LE(e->cwd.size(), std::string(".../d").size() * 64);

  e = c.Find(16, EventKind::kExec, in_wide.pid());
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->cwd_cut);
  EXPECT_TRUE(e->path_cut);
  EXPECT_EQ(e->path.rfind(".../" + long_name + "/", 0), 0u);
  EXPECT_TRUE(e->path.ends_with("/" + long_name + "/t"));
  EXPECT_LT(e->path.size(), 4096u);
  std::filesystem::remove_all(dir);
}

TEST(BpfMonitorTest, ExitCodesAndSignals) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  PausedChild code([] { Exec({"/bin/sh", "-c", "exit 7"}); });
  PausedChild killed([] { Exec({"/bin/sleep", "600"}); });
  ASSERT_TRUE(m->Track(code.pid(), 31).ok());
  ASSERT_TRUE(m->Track(killed.pid(), 32).ok());
  code.Release();
  killed.Release();
  Collector c(m.get());
  ASSERT_TRUE(c.PollUntil(
      [&] { return c.Find(32, EventKind::kExec, killed.pid()) != nullptr; }));
  kill(killed.pid(), SIGKILL);
  ASSERT_TRUE(c.PollUntil([&] {
    return c.Find(31, EventKind::kExit, code.pid()) &&
           c.Find(32, EventKind::kExit, killed.pid());
  }));
  EXPECT_EQ(WEXITSTATUS(code.Wait()), 7);
  EXPECT_TRUE(WIFSIGNALED(killed.Wait()));
  const Event* e = c.Find(31, EventKind::kExit, code.pid());
  EXPECT_EQ(e->exit_code, 7);
  EXPECT_FALSE(e->signal.has_value());
  e = c.Find(32, EventKind::kExit, killed.pid());
  EXPECT_FALSE(e->exit_code.has_value());
  EXPECT_EQ(e->signal, SIGKILL);
  EXPECT_FALSE(e->core_dumped);
}

}  // namespace
}  // namespace mez::bpf
