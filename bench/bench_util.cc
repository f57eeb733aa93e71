#include "bench/bench_util.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace mez::bench {
namespace {

constexpr int kMaxChildren = 256;
volatile sig_atomic_t g_children[kMaxChildren];

void OnSignal(int sig) {
  for (auto& slot : g_children) {
    if (slot > 0) kill(-slot, SIGKILL);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SleepMs(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

void Track(pid_t pgid) {
  for (auto& slot : g_children) {
    if (slot == 0) {
      slot = pgid;
      return;
    }
  }
}

void Untrack(pid_t pgid) {
  for (auto& slot : g_children) {
    if (slot == pgid) slot = 0;
  }
}

void InstallSignalHandlers() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, OnSignal);
  signal(SIGPIPE, SIG_IGN);
}

bool ParseSize(std::string_view s, int64_t* out) {
  int64_t mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'K':
        mult = 1 << 10;
        break;
      case 'M':
        mult = 1 << 20;
        break;
      case 'G':
        mult = 1 << 30;
        break;
    }
    if (mult != 1) s.remove_suffix(1);
  }
  int64_t n = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), n);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || n <= 0) {
    return false;
  }
  *out = n * mult;
  return true;
}

bool Child::Start(const std::vector<std::string>& argv,
                  const std::vector<std::string>& env, Io io,
                  const std::string& err_path) {
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  int in = -1, out = -1;
  if (io == Io::kPty) {
    struct termios tio;
    std::memset(&tio, 0, sizeof(tio));
    cfmakeraw(&tio);
    struct winsize ws = {24, 80, 0, 0};
    if (openpty(&fd_, &out, nullptr, &tio, &ws) != 0) return false;
    in = out;
  } else {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return false;
    fd_ = p[0];
    out = p[1];
    fcntl(fd_, F_SETPIPE_SZ, 1 << 20);
    in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  fcntl(fd_, F_SETFD, FD_CLOEXEC);
  int err =
      open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  pid_ = fork();
  if (pid_ == 0) {
    if (io == Io::kPty) {
      setsid();
      ioctl(out, TIOCSCTTY, 0);
    } else {
      setpgid(0, 0);
    }
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    if (out > 2) close(out);
    if (in > 2 && in != out) close(in);
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  if (pid_ > 0) {
    if (io == Io::kPipe) setpgid(pid_, pid_);
    Track(pid_);
  }
  close(out);
  if (in != out) close(in);
  if (err >= 0) close(err);
  return pid_ > 0;
}

int Child::Reap(int timeout_ms, struct rusage* ru) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (pid_ <= 0) return rc_;
  int64_t deadline = NowNs() + int64_t{timeout_ms} * 1000000;
  int status = 0;
  struct rusage usage = {};
  pid_t got;
  while ((got = wait4(pid_, &status, WNOHANG, &usage)) == 0 &&
         NowNs() < deadline) {
    SleepMs(2);
  }
  if (got != pid_) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    wait4(pid_, &status, 0, &usage);
  }
  if (ru != nullptr) *ru = usage;
  Untrack(pid_);
  pid_ = -1;
  rc_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return rc_;
}

bool ReadUntil(int fd, const std::string& needle, int timeout_ms,
               std::string* seen) {
  int64_t deadline = NowNs() + int64_t{timeout_ms} * 1000000;
  char buf[4096];
  while (seen->find(needle) == std::string::npos) {
    int left = static_cast<int>((deadline - NowNs()) / 1000000);
    if (left <= 0) return false;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return false;
    seen->append(buf, static_cast<size_t>(n));
  }
  return true;
}

bool ReadSome(int fd, int timeout_ms, std::string* seen) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n <= 0) return false;
  seen->append(buf, static_cast<size_t>(n));
  return true;
}

bool EchoLoop(int pty, int warmup, int keystrokes, std::vector<double>* us,
              std::string* error) {
  us->clear();
  us->reserve(static_cast<size_t>(keystrokes));
  char buf[256];
  for (int i = 0; i < warmup + keystrokes; ++i) {
    char key = static_cast<char>('a' + i % 26);
    int64_t t0 = NowNs();
    if (write(pty, &key, 1) != 1) {
      *error = "write to the client's PTY failed";
      return false;
    }
    for (bool back = false; !back;) {
      struct pollfd p = {pty, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) {
        *error = "keystroke " + std::to_string(i) + " never came back";
        return false;
      }
      ssize_t n = read(pty, buf, sizeof(buf));
      if (n <= 0) {
        *error = "the client's PTY closed";
        return false;
      }
      back = std::memchr(buf, key, static_cast<size_t>(n)) != nullptr;
    }
    if (i >= warmup) us->push_back(static_cast<double>(NowNs() - t0) / 1e3);
  }
  std::sort(us->begin(), us->end());
  return true;
}

double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  return sorted[std::min(rank, sorted.size() - 1)];
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Best(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

std::string Tail(const std::string& s, size_t n) {
  return s.substr(s.size() - std::min(n, s.size()));
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("model name")) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

double ProcessCpuSeconds(pid_t pid, bool reaped_children) {
  std::string stat = ReadText("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  // Fields 14-17 (utime stime cutime cstime), counting from the pid as 1;
  // after the ") " come field 3 onwards.
  std::istringstream fields(stat.substr(paren + 2));
  std::string f;
  double ticks = 0;
  int last = reaped_children ? 17 : 15;
  for (int i = 3; i <= last && fields >> f; ++i) {
    if (i >= 14) ticks += std::strtod(f.c_str(), nullptr);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double MachineCpuSeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;
  double busy = 0, v = 0;
  for (int i = 0; i < 8 && in >> v; ++i) {
    if (i != 3 && i != 4) busy += v;  // idle, iowait
  }
  return busy / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::istringstream in(ReadText("/proc/" + std::to_string(pid) + "/task/" +
                                 std::to_string(pid) + "/children"));
  std::vector<pid_t> out;
  for (pid_t child; in >> child;) out.push_back(child);
  return out;
}

std::string LoadAvg() {
  std::string s = ReadText("/proc/loadavg");
  return s.substr(0, s.find(' '));
}

}  // namespace mez::bench
