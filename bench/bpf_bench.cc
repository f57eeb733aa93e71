// The overhead of enhanced recording on an exec-heavy workload: a process
// spawns /bin/true N times (10,000 by default), one after the other,
// without the BPF monitor, tracked by it with every event (exec, exit,
// file, connect), and tracked without file events, each time with a
// thread polling the events as mezd would. Prints the ratios of the wall
// times and the events delivered and lost. Needs root.
//
//   bpf_bench [N]
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "libmez/bpf/monitor.h"

extern char** environ;

namespace {

[[noreturn]] void SpawnLoop(int n) {
  char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  for (int i = 0; i < n; ++i) {
    pid_t pid;
    if (posix_spawn(&pid, arg0, nullptr, nullptr, argv, environ) != 0) {
      _exit(1);
    }
    int status;
    waitpid(pid, &status, 0);
  }
  _exit(0);
}

struct Times {
  double wall = 0;  // seconds from release to the spawner's exit
  double cpu = 0;   // user + system seconds of the spawner and its children
};

double Seconds(const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

// Forks the spawning process stopped on a pipe, lets `before_start` see
// its pid, releases it and returns its times. The CPU time includes what
// the BPF programs cost (they run in the processes they report on); wall
// time on a VM also moves with how often idle CPUs are woken.
template <typename F>
Times TimeLoop(int n, F before_start) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[1]);
    char c;
    if (read(fds[0], &c, 1) != 1) _exit(1);
    SpawnLoop(n);
  }
  close(fds[0]);
  before_start(pid);
  auto start = std::chrono::steady_clock::now();
  if (write(fds[1], "x", 1) != 1) std::abort();
  close(fds[1]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  auto end = std::chrono::steady_clock::now();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "bpf_bench: the spawning process failed\n");
    std::exit(1);
  }
  Times t;
  t.wall = std::chrono::duration<double>(end - start).count();
  // wait4 reports the spawner with the children it waited for.
  t.cpu = Seconds(usage.ru_utime) + Seconds(usage.ru_stime);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 10000;
  if (n <= 0) {
    std::fprintf(stderr, "usage: bpf_bench [EXECS]\n");
    return 2;
  }
  const Times off = TimeLoop(n, [](pid_t) {});
  Times on[2];
  for (int with_files = 1; with_files >= 0; --with_files) {
    mez::bpf::MonitorOptions options;
    options.file_events = with_files == 1;
    auto opened = mez::bpf::Monitor::Open(options);
    if (!opened.ok()) {
      std::fprintf(stderr, "bpf_bench: %s\n",
                   opened.status().message().c_str());
      return 1;
    }
    auto& monitor = *opened;
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> execs{0}, exits{0}, files{0}, lost{0};
    std::thread poller([&] {
      auto count = [&](const mez::bpf::Event& e) {
        if (e.kind == mez::bpf::EventKind::kExec) ++execs;
        if (e.kind == mez::bpf::EventKind::kExit) ++exits;
        if (e.kind == mez::bpf::EventKind::kFile) ++files;
        if (e.kind == mez::bpf::EventKind::kLoss) {
          lost += e.lost_exec + e.lost_exit + e.lost_file + e.lost_net +
                  e.lost_forks;
        }
      };
      while (!stop) monitor->Poll(100, count).status().IgnoreError();
      monitor->Poll(0, count).status().IgnoreError();
    });
    on[with_files] = TimeLoop(n, [&](pid_t pid) {
      mez::Status st = monitor->Track(pid, 1);
      if (!st.ok()) {
        std::fprintf(stderr, "bpf_bench: %s\n", st.ToString().c_str());
        std::exit(1);
      }
    });
    stop = true;
    poller.join();
    std::printf(
        "monitor on%s: %.2f s wall (%.0f execs/s), %.2f s CPU; events: "
        "%llu exec, %llu exit, %llu file, %llu lost\n",
        with_files ? "" : " without file events", on[with_files].wall,
        n / on[with_files].wall, on[with_files].cpu,
        static_cast<unsigned long long>(execs),
        static_cast<unsigned long long>(exits),
        static_cast<unsigned long long>(files),
        static_cast<unsigned long long>(lost));
  }
  std::printf("execs: %d of /bin/true, one after the other\n", n);
  std::printf("monitor off: %.2f s wall (%.0f execs/s), %.2f s CPU\n", off.wall,
              n / off.wall, off.cpu);
  std::printf("overhead ratio (on/off): wall %.3f, CPU %.3f\n",
              on[1].wall / off.wall, on[1].cpu / off.cpu);
  std::printf(
      "overhead ratio without file events (on/off): wall %.3f, CPU %.3f\n",
      on[0].wall / off.wall, on[0].cpu / off.cpu);
  return 0;
}
