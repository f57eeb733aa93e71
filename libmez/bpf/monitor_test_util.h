// What the Monitor tests share: the skip rule, a child that waits to be
// tracked, a collector that polls with a deadline, the sequence check.
#ifndef MEZ_BPF_MONITOR_TEST_UTIL_H_
#define MEZ_BPF_MONITOR_TEST_UTIL_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "libmez/bpf/monitor.h"

namespace mez::bpf {

// Why BPF cannot load here ("" when it can).
std::string SkipReason();

#define MEZ_SKIP_WITHOUT_BPF()                     \
  do {                                             \
    std::string reason = ::mez::bpf::SkipReason(); \
    if (!reason.empty()) GTEST_SKIP() << reason;   \
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

// Polls until `done` holds or 60 s pass; keeps every event.
class Collector {
 public:
  explicit Collector(Monitor* monitor) : monitor_(monitor) {}
  bool PollUntil(const std::function<bool()>& done, int seconds = 60) {
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
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
  // untracked session is forgotten at its second Poll), then delivers the
  // collapsed opens still held back.
  void Drain() {
    for (int round = 0;; ++round) {
      Result<int> n =
          monitor_->Poll(0, [this](const Event& e) { events.push_back(e); });
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      if (*n == 0 && round >= 1) break;
    }
    monitor_->Flush([this](const Event& e) { events.push_back(e); });
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

// Opens a Monitor or fails the test (nullptr).
std::unique_ptr<Monitor> OpenMonitor(const MonitorOptions& options = {});

// The canonical absolute path.
std::string RealPath(const std::string& path);

// Runs execv(args[0], args) or _exit(127).
[[noreturn]] void Exec(const std::vector<std::string>& args);

// Everything the kernel counted for a session adds up: delivered events
// (a collapsed open counting for its `count` numbers) have distinct
// sequence numbers, and delivered plus lost equals the number of events
// the kernel produced (the last sequence number).
void ExpectSeqAccountedFor(const Collector& c, Monitor* m, uint64_t cookie);

// Spawns /bin/true n times, one after the other, and _exits.
[[noreturn]] void SpawnLoop(int n);

// Two processes that spawn n/2 /bin/true each, in parallel; _exits.
[[noreturn]] void TwoSpawnLoops(int n);

}  // namespace mez::bpf

#endif  // MEZ_BPF_MONITOR_TEST_UTIL_H_
