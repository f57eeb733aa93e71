#include "libmez/bpf/monitor_test_util.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>

extern char** environ;

namespace mez::bpf {

[[noreturn]] void Exec(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  _exit(127);
}

std::string SkipReason() {
  if (!Monitor::Built()) return "this build has no BPF (MEZ_BPF)";
  if (geteuid() != 0) return "loading BPF programs needs root";
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
  }
  return "";
}

std::unique_ptr<Monitor> OpenMonitor(const MonitorOptions& options) {
  Result<std::unique_ptr<Monitor>> m = Monitor::Open(options);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : nullptr;
}

std::string RealPath(const std::string& path) {
  return std::filesystem::canonical(path).string();
}

void ExpectSeqAccountedFor(const Collector& c, Monitor* m, uint64_t cookie) {
  std::set<uint64_t> seqs;
  uint64_t delivered = 0, lost = 0;
  for (const auto& e : c.events) {
    if (e.cookie != cookie) continue;
    if (e.kind == EventKind::kLoss) {
      lost += e.lost_exec + e.lost_exit + e.lost_net + e.lost_file;
      continue;
    }
    EXPECT_GE(e.count, 1u);
    delivered += e.count;
    for (uint64_t seq = e.seq; seq < e.seq + e.count; ++seq) {
      EXPECT_TRUE(seqs.insert(seq).second) << "seq " << seq << " twice";
    }
    EXPECT_GE(e.seq, 1u);
  }
  Result<SessionCounters> counters = m->Counters(cookie);
  ASSERT_TRUE(counters.ok()) << counters.status().ToString();
  EXPECT_EQ(delivered + lost, counters->seq);
  if (!seqs.empty()) {
    EXPECT_LE(*seqs.rbegin(), counters->seq);
  }
}

[[noreturn]] void SpawnLoop(int n) {
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

[[noreturn]] void TwoSpawnLoops(int n) {
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

}  // namespace mez::bpf
