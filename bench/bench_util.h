// Helpers shared by the benchmarks that drive real SSH clients and servers
// (ssh_bench, proxy_bench): child processes on a pipe or a PTY, killed by a
// signal handler if the benchmark is interrupted, timed reads, the echo
// loop, and a few figures about the machine. Not thread-safe: one thread
// runs a benchmark.
#ifndef MEZ_BENCH_BENCH_UTIL_H_
#define MEZ_BENCH_BENCH_UTIL_H_

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mez::bench {

int64_t NowNs();
void SleepMs(int ms);

// Process groups killed (SIGKILL) by OnSignal. Track a group when it is
// started, Untrack it once reaped; at most 256 at a time.
void Track(pid_t pgid);
void Untrack(pid_t pgid);
// Installs OnSignal for SIGINT, SIGTERM and SIGHUP, and ignores SIGPIPE.
void InstallSignalHandlers();

// "64", "64K", "64M", "1G" -> bytes; false unless a positive number.
bool ParseSize(std::string_view s, int64_t* out);

// A client process in its own process group: stdout a pipe, or stdin and
// stdout a PTY (raw, 24x80, the child's controlling terminal) whose master
// is fd(). stderr goes to a file. Tracked while it runs.
class Child {
 public:
  enum class Io { kPipe, kPty };

  Child() = default;
  ~Child() { Reap(2000); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // `argv[0]` is a path (no PATH search); `env` is the whole environment.
  bool Start(const std::vector<std::string>& argv,
             const std::vector<std::string>& env, Io io,
             const std::string& err_path);

  int fd() const { return fd_; }
  pid_t pid() const { return pid_; }

  // Closes our end, waits up to `timeout_ms` for exit (then SIGKILLs the
  // group). The exit code, 128+signal, or -1.
  int Reap(int timeout_ms, struct rusage* ru = nullptr);

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int rc_ = -1;
};

// Reads into *seen until it contains `needle`; false on EOF or timeout.
bool ReadUntil(int fd, const std::string& needle, int timeout_ms,
               std::string* seen);
// Appends whatever arrives within `timeout_ms`; false if nothing did.
bool ReadSome(int fd, int timeout_ms, std::string* seen);

// Writes one byte at a time to `pty` (the master of a client whose remote
// end echoes, e.g. `stty raw -echo; exec cat`) and times each until it
// comes back: `warmup` untimed bytes, then `keystrokes` timed ones, in
// microseconds, sorted, in *us. False with *error set when a byte is not
// back within 5 s or the PTY closes.
bool EchoLoop(int pty, int warmup, int keystrokes, std::vector<double>* us,
              std::string* error);

// The q-quantile (0..1) of sorted values; 0 when empty.
double Quantile(const std::vector<double>& sorted, double q);
double Median(std::vector<double> v);
double Best(const std::vector<double>& v);

std::string ReadText(const std::string& path);
// The last `n` characters of `s`.
std::string Tail(const std::string& s, size_t n = 2000);
std::string CpuModel();
// utime + stime of a process (its threads included), in seconds; 0 when
// it is gone. With `reaped_children`, plus those of the children it has
// waited for (cutime + cstime): how a forking server's sessions count.
double ProcessCpuSeconds(pid_t pid, bool reaped_children = false);
// Busy CPU seconds of the whole machine (all but idle and iowait).
double MachineCpuSeconds();
// The children of `pid` (from /proc/PID/task/PID/children).
std::vector<pid_t> ChildrenOf(pid_t pid);
// The 1-minute load average: the machine is shared with whatever else runs.
std::string LoadAvg();

}  // namespace mez::bench

#endif  // MEZ_BENCH_BENCH_UTIL_H_
