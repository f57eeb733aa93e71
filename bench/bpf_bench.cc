// The overhead of enhanced recording, with the BPF monitor off and on in
// one run, each time with a thread polling the events as mezd would:
//  - exec-heavy: a process spawns /bin/true N times (10,000 by default),
//    one after the other; off, on with every event, on without file events;
//  - file-heavy: a process stats, opens, reads and closes each of 500
//    small files, ROUNDS times (200 by default); off, on, and with the
//    monitor loaded but the process not tracked (the cost to the rest of
//    the machine: the sys_exit program runs on every system call);
//  - paced: /bin/true spawned at 2,000 execs/s for 3 s by 4 processes
//    (the "no loss below 2,000 execs/s"), monitor on: the rate
//    reached and the events lost.
// Prints wall and CPU times, their ratios, and the events delivered and
// lost; asserts nothing about time. Needs root.
//
//   bpf_bench [EXECS [ROUNDS]]
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "libmez/bpf/monitor.h"

extern char** environ;

namespace {

constexpr int kFiles = 500;
constexpr int kPacedRate = 2000;  // execs per second
constexpr int kPacedSeconds = 3;
constexpr int kPacers = 4;

pid_t SpawnTrue() {
  char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  pid_t pid;
  if (posix_spawn(&pid, arg0, nullptr, nullptr, argv, environ) != 0) {
    _exit(1);
  }
  return pid;
}

[[noreturn]] void SpawnLoop(int n) {
  for (int i = 0; i < n; ++i) {
    int status;
    waitpid(SpawnTrue(), &status, 0);
  }
  _exit(0);
}

// Every file: stat, open, fstat, read, close.
[[noreturn]] void FileLoop(const std::string& dir, int rounds) {
  char buf[256];
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < kFiles; ++i) {
      const std::string path = dir + "/f" + std::to_string(i);
      struct stat st;
      if (stat(path.c_str(), &st) != 0) _exit(1);
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || fstat(fd, &st) != 0 || read(fd, buf, sizeof(buf)) <= 0) {
        _exit(1);
      }
      close(fd);
    }
  }
  _exit(0);
}

// Spawns at `rate` per second on a fixed schedule (catching up when
// late), reaping as it goes; at most 512 children at once.
[[noreturn]] void PacedSpawnOne(int rate, int seconds) {
  const int n = rate * seconds;
  const auto start = std::chrono::steady_clock::now();
  int running = 0;
  for (int i = 0; i < n; ++i) {
    const auto due =
        start + std::chrono::nanoseconds(int64_t{1'000'000'000} * i / rate);
    std::this_thread::sleep_until(due);
    while (running > 0 && waitpid(-1, nullptr, WNOHANG) > 0) --running;
    if (running >= 512) {
      waitpid(-1, nullptr, 0);
      --running;
    }
    SpawnTrue();
    ++running;
  }
  while (running-- > 0) waitpid(-1, nullptr, 0);
  _exit(0);
}

// kPacers processes (one could not spawn 2,000 a second here), each at
// rate / kPacers; fails if one does.
[[noreturn]] void PacedSpawn(int rate, int seconds) {
  pid_t pacers[kPacers];
  for (pid_t& pid : pacers) {
    pid = fork();
    if (pid < 0) _exit(1);
    if (pid == 0) PacedSpawnOne(rate / kPacers, seconds);
  }
  int failed = 0;
  for (pid_t pid : pacers) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  _exit(failed == 0 ? 0 : 1);
}

struct Times {
  double wall = 0;  // seconds from release to the workload's exit
  double cpu = 0;   // user + system seconds of it and its children
};

double Seconds(const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

// Forks `workload` stopped on a pipe, lets `before_start` see its pid,
// releases it and returns its times. The CPU time includes what the BPF
// programs cost (they run in the processes they report on); wall time on
// a VM also moves with how often idle CPUs are woken.
Times TimeLoop(const std::function<void()>& workload,
               const std::function<void(pid_t)>& before_start) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[1]);
    char c;
    if (read(fds[0], &c, 1) != 1) _exit(1);
    workload();
    _exit(0);
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
    std::fprintf(stderr, "bpf_bench: the workload failed\n");
    std::exit(1);
  }
  Times t;
  t.wall = std::chrono::duration<double>(end - start).count();
  // wait4 reports the process with the children it waited for.
  t.cpu = Seconds(usage.ru_utime) + Seconds(usage.ru_stime);
  return t;
}

struct Counts {
  uint64_t execs = 0, exits = 0, files = 0, file_events = 0, lost = 0;
};

// Runs the workload tracked by a new Monitor (or, with track false, with
// the Monitor loaded but the workload not tracked: what every other
// process of the machine pays) while a thread polls it.
Times TimeTracked(const mez::bpf::MonitorOptions& options,
                  const std::function<void()>& workload, Counts* counts,
                  bool track = true) {
  auto opened = mez::bpf::Monitor::Open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "bpf_bench: %s\n", opened.status().message().c_str());
    std::exit(1);
  }
  auto& monitor = *opened;
  std::atomic<bool> stop{false};
  auto count = [&](const mez::bpf::Event& e) {
    if (e.kind == mez::bpf::EventKind::kExec) ++counts->execs;
    if (e.kind == mez::bpf::EventKind::kExit) ++counts->exits;
    if (e.kind == mez::bpf::EventKind::kFile) {
      counts->files += e.count;
      ++counts->file_events;
    }
    if (e.kind == mez::bpf::EventKind::kLoss) {
      counts->lost +=
          e.lost_exec + e.lost_exit + e.lost_file + e.lost_net + e.lost_forks;
    }
  };
  std::thread poller([&] {
    while (!stop) monitor->Poll(100, count).status().IgnoreError();
  });
  Times t = TimeLoop(workload, [&](pid_t pid) {
    if (!track) return;
    mez::Status st = monitor->Track(pid, 1);
    if (!st.ok()) {
      std::fprintf(stderr, "bpf_bench: %s\n", st.ToString().c_str());
      std::exit(1);
    }
  });
  stop = true;
  poller.join();
  monitor->Poll(0, count).status().IgnoreError();
  monitor->Flush(count);
  return t;
}

void PrintOn(const char* what, int n, const Times& t, const Counts& c) {
  std::printf(
      "%s: %.2f s wall (%.0f/s), %.2f s CPU; events: %llu exec, %llu exit, "
      "%llu file opens in %llu file events, %llu lost\n",
      what, t.wall, n / t.wall, t.cpu, static_cast<unsigned long long>(c.execs),
      static_cast<unsigned long long>(c.exits),
      static_cast<unsigned long long>(c.files),
      static_cast<unsigned long long>(c.file_events),
      static_cast<unsigned long long>(c.lost));
}

// The workload without the monitor, before and after the runs with it
// (the machine's load drifts): the mean of both.
Times MeanOff(const Times& before, const Times& after, const char* unit,
              int n) {
  Times mean{(before.wall + after.wall) / 2, (before.cpu + after.cpu) / 2};
  std::printf(
      "monitor off: %.2f s wall (%.0f %s/s), %.2f s CPU (before: %.2f s, "
      "%.2f s CPU; after: %.2f s, %.2f s CPU)\n",
      mean.wall, n / mean.wall, unit, mean.cpu, before.wall, before.cpu,
      after.wall, after.cpu);
  return mean;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 200;
  if (n <= 0 || rounds <= 0) {
    std::fprintf(stderr, "usage: bpf_bench [EXECS [ROUNDS]]\n");
    return 2;
  }
  mez::bpf::MonitorOptions all;
  mez::bpf::MonitorOptions no_files;
  no_files.file_events = false;

  std::printf("exec-heavy: %d runs of /bin/true, one after the other\n", n);
  auto execs = [n] { SpawnLoop(n); };
  const Times off_before = TimeLoop(execs, [](pid_t) {});
  Counts c_all, c_no_files;
  const Times on = TimeTracked(all, execs, &c_all);
  const Times on_nf = TimeTracked(no_files, execs, &c_no_files);
  const Times off =
      MeanOff(off_before, TimeLoop(execs, [](pid_t) {}), "execs", n);
  PrintOn("monitor on", n, on, c_all);
  PrintOn("monitor on without file events", n, on_nf, c_no_files);
  std::printf("exec overhead ratio (on/off): wall %.3f, CPU %.3f\n",
              on.wall / off.wall, on.cpu / off.cpu);
  std::printf(
      "exec overhead ratio without file events (on/off): wall %.3f, CPU "
      "%.3f\n",
      on_nf.wall / off.wall, on_nf.cpu / off.cpu);

  char tmpl[] = "/tmp/bpf-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::abort();
  const std::string dir = tmpl;
  for (int i = 0; i < kFiles; ++i) {
    FILE* f = std::fopen((dir + "/f" + std::to_string(i)).c_str(), "w");
    if (f == nullptr) std::abort();
    std::fputs("a small file\n", f);
    std::fclose(f);
  }
  const int file_ops = kFiles * rounds;
  std::printf(
      "file-heavy: %d files x %d rounds of stat, open, fstat, read, close\n",
      kFiles, rounds);
  auto files = [&] { FileLoop(dir, rounds); };
  const Times f_off_before = TimeLoop(files, [](pid_t) {});
  Counts c_files;
  const Times f_on = TimeTracked(all, files, &c_files);
  Counts c_untracked;
  const Times f_untracked = TimeTracked(all, files, &c_untracked, false);
  const Times f_off =
      MeanOff(f_off_before, TimeLoop(files, [](pid_t) {}), "files", file_ops);
  PrintOn("monitor on", file_ops, f_on, c_files);
  PrintOn("monitor loaded, workload not tracked", file_ops, f_untracked,
          c_untracked);
  std::printf("file overhead ratio (on/off): wall %.3f, CPU %.3f\n",
              f_on.wall / f_off.wall, f_on.cpu / f_off.cpu);
  std::printf(
      "file overhead ratio, not tracked (loaded/off): wall %.3f, CPU %.3f\n",
      f_untracked.wall / f_off.wall, f_untracked.cpu / f_off.cpu);
  std::filesystem::remove_all(dir);

  const int paced = kPacedRate * kPacedSeconds;
  std::printf("paced: %d runs of /bin/true at %d execs/s, monitor on\n", paced,
              kPacedRate);
  Counts c_paced;
  const Times p_on = TimeTracked(
      all, [] { PacedSpawn(kPacedRate, kPacedSeconds); }, &c_paced);
  PrintOn("monitor on", paced, p_on, c_paced);
  std::printf(
      "paced: reached %.0f execs/s; %llu of %d execs delivered, "
      "%llu events lost\n",
      paced / p_on.wall, static_cast<unsigned long long>(c_paced.execs), paced,
      static_cast<unsigned long long>(c_paced.lost));
  return 0;
}
