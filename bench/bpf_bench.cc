// The overhead of enhanced recording on an exec-heavy workload: a process
// spawns /bin/true N times (10,000 by default), one after the other, once
// without the BPF monitor and once tracked by it (with a thread polling
// the events, as mezd would), and the ratio of the two wall times is
// printed with the events delivered and lost. Needs root.
//
//   bpf_bench [N]
#include <signal.h>
#include <spawn.h>
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

// Forks the spawning process stopped on a pipe, lets `before_start` see
// its pid, releases it and returns the seconds until it finished.
template <typename F>
double TimeLoop(int n, F before_start) {
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
  waitpid(pid, &status, 0);
  auto end = std::chrono::steady_clock::now();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "bpf_bench: the spawning process failed\n");
    std::exit(1);
  }
  return std::chrono::duration<double>(end - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 10000;
  if (n <= 0) {
    std::fprintf(stderr, "usage: bpf_bench [EXECS]\n");
    return 2;
  }
  auto opened = mez::bpf::Monitor::Open();
  if (!opened.ok()) {
    std::fprintf(stderr, "bpf_bench: %s\n", opened.status().message().c_str());
    return 1;
  }
  auto& monitor = *opened;

  const double off = TimeLoop(n, [](pid_t) {});

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> execs{0}, exits{0}, lost{0};
  std::thread poller([&] {
    auto count = [&](const mez::bpf::Event& e) {
      if (e.kind == mez::bpf::EventKind::kExec) ++execs;
      if (e.kind == mez::bpf::EventKind::kExit) ++exits;
      if (e.kind == mez::bpf::EventKind::kLoss) {
        lost += e.lost_exec + e.lost_exit + e.lost_forks;
      }
    };
    while (!stop) monitor->Poll(100, count).status().IgnoreError();
    monitor->Poll(0, count).status().IgnoreError();
  });
  const double on = TimeLoop(n, [&](pid_t pid) {
    mez::Status st = monitor->Track(pid, 1);
    if (!st.ok()) {
      std::fprintf(stderr, "bpf_bench: %s\n", st.ToString().c_str());
      std::exit(1);
    }
  });
  stop = true;
  poller.join();

  std::printf("execs: %d of /bin/true, one after the other\n", n);
  std::printf("monitor off: %.2f s (%.0f execs/s)\n", off, n / off);
  std::printf("monitor on:  %.2f s (%.0f execs/s)\n", on, n / on);
  std::printf("overhead ratio (on/off): %.3f\n", on / off);
  std::printf("events: %llu exec, %llu exit, %llu lost\n",
              static_cast<unsigned long long>(execs.load()),
              static_cast<unsigned long long>(exits.load()),
              static_cast<unsigned long long>(lost.load()));
  return 0;
}
