// Monitor in a build without BPF (MEZ_BPF=OFF, or AUTO without clang,
// bpftool, libbpf-dev or kernel BTF at configure time): Open says so.
#include "libmez/bpf/monitor.h"

namespace mez::bpf {

struct Monitor::Impl {};

Monitor::Monitor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Monitor::~Monitor() = default;

bool Monitor::Built() { return false; }

Result<std::unique_ptr<Monitor>> Monitor::Open(const MonitorOptions&) {
  return FailedPrecondition(
      "enhanced recording: this build has no BPF support; rebuild with "
      "-DMEZ_BPF=ON (needs clang, bpftool, libbpf-dev and "
      "/sys/kernel/btf/vmlinux on the build machine)");
}

Status Monitor::Track(pid_t, uint64_t) {
  return FailedPrecondition("enhanced recording: built without BPF");
}
Status Monitor::Untrack(uint64_t, std::vector<pid_t>*) {
  return FailedPrecondition("enhanced recording: built without BPF");
}
Result<int> Monitor::Poll(int, const EventCallback&) {
  return FailedPrecondition("enhanced recording: built without BPF");
}
int Monitor::Flush(const EventCallback&) { return 0; }
Result<SessionCounters> Monitor::Counters(uint64_t) {
  return FailedPrecondition("enhanced recording: built without BPF");
}
uint64_t Monitor::bad_records() const { return 0; }

}  // namespace mez::bpf
