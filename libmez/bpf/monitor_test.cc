// Monitor against the running kernel: loads the BPF programs, so these
// tests need root and kernel BTF (CI has both) and skip with the reason
// otherwise. Every process they start is waited for.
#include "libmez/bpf/monitor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

extern char** environ;

namespace mez::bpf {
namespace {

using std::chrono::steady_clock;

std::string SkipReason() {
  if (!Monitor::Built()) return "this build has no BPF (MEZ_BPF)";
  if (geteuid() != 0) return "loading BPF programs needs root";
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
  }
  return "";
}

#define MEZ_SKIP_WITHOUT_BPF()                   \
  do {                                           \
    std::string reason = SkipReason();           \
    if (!reason.empty()) GTEST_SKIP() << reason; \
  } while (0)

// A child forked stopped on a pipe: it runs `body` (which should exec or
// _exit) only after Release, so the test can Track it first.
class PausedChild {
 public:
  explicit PausedChild(std::function<void()> body) {
    int fds[2];
    MEZ_CHECK(pipe(fds) == 0);
    pid_ = fork();
    MEZ_CHECK(pid_ >= 0);
    if (pid_ == 0) {
      close(fds[1]);
      char c;
      if (read(fds[0], &c, 1) != 1) _exit(120);
      close(fds[0]);
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      body();
      _exit(121);
    }
    close(fds[0]);
    release_fd_ = fds[1];
  }
  ~PausedChild() {
    if (release_fd_ >= 0) close(release_fd_);
    if (!waited_) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }
  pid_t pid() const { return pid_; }
  void Release() {
    MEZ_CHECK(write(release_fd_, "x", 1) == 1);
    close(release_fd_);
    release_fd_ = -1;
  }
  int Wait() {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    waited_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int release_fd_ = -1;
  bool waited_ = false;
};

[[noreturn]] void Exec(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  _exit(127);
}

// Polls until `done` holds or 60 s pass; keeps every event.
class Collector {
 public:
  explicit Collector(Monitor* monitor) : monitor_(monitor) {}
  bool PollUntil(const std::function<bool()>& done, int seconds = 60) {
    auto deadline = steady_clock::now() + std::chrono::seconds(seconds);
    while (!done()) {
      if (steady_clock::now() > deadline) return false;
      Result<int> n =
          monitor_->Poll(100, [this](const Event& e) { events.push_back(e); });
      if (!n.ok()) {
        ADD_FAILURE() << n.status().ToString();
        return false;
      }
    }
    return true;
  }
  // Polls without waiting until a Poll finds nothing, at least twice (an
  // untracked session is forgotten at its second Poll).
  void Drain() {
    for (int round = 0;; ++round) {
      Result<int> n =
          monitor_->Poll(0, [this](const Event& e) { events.push_back(e); });
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      if (*n == 0 && round >= 1) return;
    }
  }
  std::vector<Event> Of(uint64_t cookie, EventKind kind) const {
    std::vector<Event> out;
    for (const auto& e : events) {
      if (e.cookie == cookie && e.kind == kind) out.push_back(e);
    }
    return out;
  }
  const Event* Find(uint64_t cookie, EventKind kind, int pid) const {
    for (const auto& e : events) {
      if (e.cookie == cookie && e.kind == kind && e.pid == pid) return &e;
    }
    return nullptr;
  }
  const Event* FindArg(EventKind kind, const std::string& arg) const {
    for (const auto& e : events) {
      if (e.kind != kind) continue;
      for (const auto& a : e.argv) {
        if (a == arg) return &e;
      }
    }
    return nullptr;
  }
  std::vector<Event> events;

 private:
  Monitor* monitor_;
};

std::unique_ptr<Monitor> OpenMonitor(const MonitorOptions& options = {}) {
  Result<std::unique_ptr<Monitor>> m = Monitor::Open(options);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : nullptr;
}

std::string RealPath(const std::string& path) {
  return std::filesystem::canonical(path).string();
}

// Everything the kernel counted for a session adds up: delivered events
// have distinct sequence numbers, and delivered plus lost equals the
// number of events the kernel produced (the last sequence number).
void ExpectSeqAccountedFor(const Collector& c, Monitor* m, uint64_t cookie) {
  std::set<uint64_t> seqs;
  uint64_t delivered = 0, lost = 0;
  for (const auto& e : c.events) {
    if (e.cookie != cookie) continue;
    if (e.kind == EventKind::kLoss) {
      lost += e.lost_exec + e.lost_exit + e.lost_connect;
      continue;
    }
    ++delivered;
    EXPECT_TRUE(seqs.insert(e.seq).second) << "seq " << e.seq << " twice";
    EXPECT_GE(e.seq, 1u);
  }
  Result<SessionCounters> counters = m->Counters(cookie);
  ASSERT_TRUE(counters.ok()) << counters.status().ToString();
  EXPECT_EQ(delivered + lost, counters->seq);
  if (!seqs.empty()) {
    EXPECT_LE(*seqs.rbegin(), counters->seq);
  }
}

TEST(BpfMonitorTest, EchoWithFiftyArgsAndAnEightKiBArgIsComplete) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
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

// A listening socket on loopback (IPv4 or IPv6) and a port nobody listens
// on; -1 ports when the family is not available here.
struct Ports {
  int listener = -1;
  uint16_t open = 0;
  uint16_t closed = 0;
};

Ports LoopbackPorts(bool v6) {
  Ports p;
  auto bound = [&](int* fd) -> uint16_t {
    *fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (*fd < 0) return 0;
    sockaddr_storage ss{};
    socklen_t len;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    }
    if (bind(*fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return 0;
    len = sizeof(ss);
    getsockname(*fd, reinterpret_cast<sockaddr*>(&ss), &len);
    return ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  };
  int closed_fd = -1;
  p.open = bound(&p.listener);
  p.closed = bound(&closed_fd);
  if (closed_fd >= 0) close(closed_fd);
  if (p.open == 0 || p.closed == 0 || listen(p.listener, 8) != 0) {
    if (p.listener >= 0) close(p.listener);
    p = Ports{};
  }
  return p;
}

// Connects to port on loopback; returns the local port (0 on failure).
// A non-blocking connect waits for its outcome with poll.
uint16_t ConnectLoopback(bool v6, uint16_t port, bool nonblocking = false) {
  int fd = socket(v6 ? AF_INET6 : AF_INET,
                  SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons(port);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(port);
    len = sizeof(*a);
  }
  uint16_t local = 0;
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t err_len = sizeof(err);
    if (poll(&p, 1, 30000) == 1 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0 && err == 0) {
      rc = 0;
    }
  }
  if (rc == 0) {
    len = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    local = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  close(fd);
  return local;
}

// TCP connects over IPv4 and IPv6 loopback, to a listener (blocking and
// non-blocking) and to a closed port: both endpoints, established or the
// errno. A process outside the
// session connecting to the same listener is not reported.
TEST(BpfMonitorTest, TcpConnectsWithBothEndpointsAndTheOutcome) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    Ports ports = LoopbackPorts(v6);
    if (ports.listener < 0) {
      ASSERT_TRUE(v6) << "no IPv4 loopback";
      continue;  // no ::1 here
    }
    int report[2];
    ASSERT_EQ(pipe(report), 0);
    const uint64_t cookie = v6 ? 92 : 91;
    PausedChild child([&] {
      uint16_t local = ConnectLoopback(v6, ports.open);
      ConnectLoopback(v6, ports.closed);
      uint16_t async_local = ConnectLoopback(v6, ports.open, true);
      uint16_t both[2] = {local, async_local};
      if (write(report[1], both, sizeof(both)) != sizeof(both)) _exit(1);
      _exit(0);
    });
    PausedChild outside([&] {
      ConnectLoopback(v6, ports.open);
      _exit(0);
    });
    close(report[1]);
    ASSERT_TRUE(m->Track(child.pid(), cookie).ok());
    outside.Release();
    EXPECT_EQ(outside.Wait(), 0);
    child.Release();
    uint16_t local[2] = {0, 0};
    ASSERT_EQ(read(report[0], local, sizeof(local)),
              static_cast<ssize_t>(sizeof(local)));
    close(report[0]);
    EXPECT_EQ(child.Wait(), 0);
    ASSERT_NE(local[0], 0);
    ASSERT_NE(local[1], 0);
    Collector c(m.get());
    ASSERT_TRUE(c.PollUntil(
        [&] { return c.Of(cookie, EventKind::kConnect).size() >= 3; }));
    c.Drain();
    auto connects = c.Of(cookie, EventKind::kConnect);
    ASSERT_EQ(connects.size(), 3u);
    const std::string loopback = v6 ? "::1" : "127.0.0.1";
    const Event* ok = nullptr;
    const Event* async_ok = nullptr;
    const Event* refused = nullptr;
    for (const auto& e : connects) {
      if (!e.established) {
        refused = &e;
      } else if (e.local_port == local[1]) {
        async_ok = &e;
      } else {
        ok = &e;
      }
    }
    ASSERT_NE(ok, nullptr);
    ASSERT_NE(async_ok, nullptr);
    ASSERT_NE(refused, nullptr);
    EXPECT_EQ(async_ok->remote_port, ports.open);
    EXPECT_EQ(async_ok->pid, child.pid());
    EXPECT_EQ(ok->pid, child.pid());
    EXPECT_EQ(ok->ipv6, v6);
    EXPECT_EQ(ok->remote_addr, loopback);
    EXPECT_EQ(ok->remote_port, ports.open);
    EXPECT_EQ(ok->local_addr, loopback);
    EXPECT_EQ(ok->local_port, local[0]);
    EXPECT_EQ(ok->error, 0);
    EXPECT_EQ(refused->pid, child.pid());
    EXPECT_EQ(refused->remote_port, ports.closed);
    EXPECT_EQ(refused->error, ECONNREFUSED);
    EXPECT_NE(ToJsonLine(*refused).find("\"error\":\"ECONNREFUSED\""),
              std::string::npos);
    for (const auto& e : c.events) EXPECT_EQ(e.cookie, cookie);
    close(ports.listener);
    ExpectSeqAccountedFor(c, m.get(), cookie);
  }
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

// Spawns /bin/true `n` times, one after the other, and exits.
void SpawnLoop(int n) {
  char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  for (int i = 0; i < n; ++i) {
    pid_t pid;
    if (posix_spawn(&pid, arg0, nullptr, nullptr, argv, environ) != 0) {
      _exit(126);
    }
    int status;
    waitpid(pid, &status, 0);
  }
  _exit(0);
}

// Two processes of the session that spawn n/2 /bin/true each, in parallel.
void TwoSpawnLoops(int n) {
  pid_t other = fork();
  if (other < 0) _exit(126);
  if (other == 0) SpawnLoop(n / 2);
  char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  for (int i = 0; i < n - n / 2; ++i) {
    pid_t pid;
    if (posix_spawn(&pid, arg0, nullptr, nullptr, argv, environ) != 0) {
      _exit(126);
    }
    int status;
    waitpid(pid, &status, 0);
  }
  int status = 0;
  waitpid(other, &status, 0);
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

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
  EXPECT_EQ(counters->seq, 2u * kExecs);
  EXPECT_EQ(counters->lost_forks, 0u);
  RecordProperty("lost_exec", std::to_string(counters->lost_exec));
  RecordProperty("lost_exit", std::to_string(counters->lost_exit));
}

// A ring buffer of one page that nobody reads while 500 execs run must
// drop; every drop is reported, with the exact count.
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
  uint64_t execs = 0, exits = 0, lost_exec = 0, lost_exit = 0, losses = 0;
  for (const auto& e : c.events) {
    ASSERT_EQ(e.cookie, 51u);
    if (e.kind == EventKind::kExec) ++execs;
    if (e.kind == EventKind::kExit) ++exits;
    if (e.kind == EventKind::kLoss) {
      ++losses;
      lost_exec += e.lost_exec;
      lost_exit += e.lost_exit;
      EXPECT_EQ(e.seq, 2u * kExecs);
    }
  }
  EXPECT_EQ(losses, 1u);
  EXPECT_GT(lost_exec + lost_exit, 0u);
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
