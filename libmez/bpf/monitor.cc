// The libbpf side of Monitor: loads the skeleton (exec_monitor.skel.h,
// generated at build time from exec_monitor.bpf.c), keeps the session maps
// and turns ring buffer records and kernel loss counters into events.
#include "libmez/bpf/monitor.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "exec_monitor.skel.h"
#include "libmez/bpf/collapse.h"
#include "libmez/bpf/event_abi.h"

namespace mez::bpf {
namespace {

constexpr char kBtfPath[] = "/sys/kernel/btf/vmlinux";
// bpf_loop (5.17) is the newest kernel feature the programs use.
constexpr int kMinMajor = 5;
constexpr int kMinMinor = 17;
// Poll reads the ring buffer at least this often (the kernel does not
// wake it for every record).
constexpr int kReadEveryMs = 50;
// The kernel wakes Poll once this much of the ring buffer (at most a
// quarter of it) waits.
constexpr uint64_t kWakeupBytes = 256 * 1024;

// libbpf's last warning, for the one line Open returns.
std::mutex libbpf_log_mu;
std::string libbpf_last_warning;

int LibbpfPrint(enum libbpf_print_level level, const char* format,
                va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[512];
  int n = vsnprintf(line, sizeof(line), format, args);
  std::string text(line, n > 0 ? std::min<size_t>(n, sizeof(line) - 1) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  std::lock_guard<std::mutex> lock(libbpf_log_mu);
  libbpf_last_warning = text;
  return 0;
}

std::string LastLibbpfWarning() {
  std::lock_guard<std::mutex> lock(libbpf_log_mu);
  return libbpf_last_warning;
}

// Whether the effective capabilities allow loading tracing programs:
// CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON.
bool HasBpfCapabilities() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    uint64_t caps = std::strtoull(line.c_str() + 7, nullptr, 16);
    constexpr uint64_t kSysAdmin = uint64_t{1} << 21;
    constexpr uint64_t kPerfmon = uint64_t{1} << 38;
    constexpr uint64_t kBpf = uint64_t{1} << 39;
    return (caps & kSysAdmin) != 0 ||
           ((caps & kBpf) != 0 && (caps & kPerfmon) != 0);
  }
  return geteuid() == 0;
}

Status CheckKernel() {
  utsname u{};
  if (uname(&u) != 0) return ErrnoStatus("uname", errno);
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
      (major < kMinMajor || (major == kMinMajor && minor < kMinMinor))) {
    return FailedPrecondition(
        std::string("enhanced recording: kernel ") + u.release +
        " is too old; it needs Linux 5.17 or later (BPF ring buffer, "
        "tp_btf, bpf_loop)");
  }
  return Status::Ok();
}

}  // namespace

struct Monitor::Impl {
  exec_monitor_bpf* skel = nullptr;
  ring_buffer* ring = nullptr;
  int64_t clock_offset_ns = 0;
  std::atomic<uint64_t> bad_records{0};
  uint32_t max_tasks = 0;

  // What user space last reported per session, and whether it is closing.
  struct Session {
    SessionCounters reported;
    bool closing = false;
    int polls_since_close = 0;
  };
  std::mutex mu;
  std::map<uint64_t, Session> sessions;

  // Runs of identical opens held back; Poll's thread only.
  OpenCollapser collapser{0};

  // Valid during Poll and Flush only: delivers one event to the caller.
  OpenCollapser::Emit emit;
  int delivered = 0;

  ~Impl() {
    ring_buffer__free(ring);
    exec_monitor_bpf__destroy(skel);
  }

  static int OnRecord(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Impl*>(ctx);
    Result<Event> event = DecodeRecord(
        std::span<const uint8_t>(static_cast<const uint8_t*>(data), size),
        self->clock_offset_ns);
    if (!event.ok()) {
      ++self->bad_records;
      return 0;
    }
    self->collapser.Add(*event, self->emit);
    return 0;
  }

  Result<SessionCounters> ReadCounters(uint64_t cookie) {
    mez_bpf_session value{};
    if (bpf_map__lookup_elem(skel->maps.sessions, &cookie, sizeof(cookie),
                             &value, sizeof(value), 0) != 0) {
      return NotFound("enhanced recording: no session " +
                      std::to_string(cookie));
    }
    SessionCounters c;
    c.seq = value.seq;
    c.lost_exec = value.lost_exec;
    c.lost_exit = value.lost_exit;
    c.lost_net = value.lost_net;
    c.lost_file = value.lost_file;
    c.lost_forks = value.lost_forks;
    return c;
  }
};

Monitor::Monitor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Monitor::~Monitor() = default;

bool Monitor::Built() { return true; }

Result<std::unique_ptr<Monitor>> Monitor::Open(const MonitorOptions& options) {
  const uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  if (options.ring_bytes < page ||
      (options.ring_bytes & (options.ring_bytes - 1)) != 0) {
    return InvalidArgument("enhanced recording: ring buffer size " +
                           std::to_string(options.ring_bytes) +
                           " is not a power of two of at least the page size");
  }
  if (options.max_tasks < 1 || options.max_tasks > (1u << 22)) {
    return InvalidArgument("enhanced recording: max_tasks " +
                           std::to_string(options.max_tasks) +
                           " is not between 1 and 4194304");
  }
  if (!HasBpfCapabilities()) {
    return PermissionDenied(
        "enhanced recording: loading BPF programs needs root (or CAP_BPF "
        "and CAP_PERFMON); run mezd as root");
  }
  MEZ_RETURN_IF_ERROR(CheckKernel());
  if (access(kBtfPath, R_OK) != 0) {
    return FailedPrecondition(
        std::string("enhanced recording: the kernel has no BTF (") + kBtfPath +
        " is missing); boot a kernel built with CONFIG_DEBUG_INFO_BTF=y");
  }
  libbpf_set_print(LibbpfPrint);

  auto impl = std::make_unique<Impl>();
  impl->skel = exec_monitor_bpf__open();
  if (impl->skel == nullptr) {
    return Internal("enhanced recording: opening the BPF object failed: " +
                    LastLibbpfWarning());
  }
  int err =
      bpf_map__set_max_entries(impl->skel->maps.events, options.ring_bytes);
  if (err == 0) {
    err = bpf_map__set_max_entries(impl->skel->maps.tracked, options.max_tasks);
  }
  if (err == 0 && !options.file_events) {
    err = bpf_program__set_autoload(impl->skel->progs.mez_sys_exit, false);
  }
  impl->skel->rodata->wakeup_bytes =
      std::min<uint64_t>(kWakeupBytes, options.ring_bytes / 4);
  if (err == 0) err = exec_monitor_bpf__load(impl->skel);
  if (err != 0) {
    return FailedPrecondition(
        "enhanced recording: the kernel refused the BPF programs (" +
        std::string(std::strerror(-err)) + "; libbpf: " + LastLibbpfWarning() +
        "); it needs Linux 5.17+ with CONFIG_BPF_SYSCALL and "
        "CONFIG_DEBUG_INFO_BTF");
  }
  err = exec_monitor_bpf__attach(impl->skel);
  if (err != 0) {
    return FailedPrecondition(
        "enhanced recording: attaching to the sched_process_* and "
        "inet_sock_set_state and sys_exit tracepoints "
        "failed (" +
        std::string(std::strerror(-err)) + "; libbpf: " + LastLibbpfWarning() +
        "); the kernel needs CONFIG_DEBUG_INFO_BTF and BPF trampolines");
  }
  impl->ring = ring_buffer__new(bpf_map__fd(impl->skel->maps.events),
                                &Impl::OnRecord, impl.get(), nullptr);
  if (impl->ring == nullptr) {
    return ErrnoStatus("enhanced recording: opening the ring buffer", errno);
  }
  impl->clock_offset_ns = RealtimeMinusMonotonicNs();
  impl->max_tasks = options.max_tasks;
  impl->collapser = OpenCollapser(uint64_t{options.open_collapse_ms} * 1000000);
  return std::unique_ptr<Monitor>(new Monitor(std::move(impl)));
}

Status Monitor::Track(pid_t pid, uint64_t cookie) {
  if (cookie == 0) return InvalidArgument("enhanced recording: cookie 0");
  if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) {
    return NotFound("enhanced recording: no process " + std::to_string(pid));
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->sessions.find(cookie);
  if (it != impl_->sessions.end() && it->second.closing) {
    return FailedPrecondition("enhanced recording: session " +
                              std::to_string(cookie) + " is being untracked");
  }
  auto* maps = &impl_->skel->maps;
  const uint32_t key = static_cast<uint32_t>(pid);
  mez_bpf_task task{};
  if (bpf_map__lookup_elem(maps->tracked, &key, sizeof(key), &task,
                           sizeof(task), 0) == 0 &&
      task.cookie != cookie) {
    return Status(Code::kAlreadyExists, "enhanced recording: process " +
                                            std::to_string(pid) +
                                            " already belongs to session " +
                                            std::to_string(task.cookie));
  }
  if (it == impl_->sessions.end()) {
    mez_bpf_session zero{};
    if (bpf_map__update_elem(maps->sessions, &cookie, sizeof(cookie), &zero,
                             sizeof(zero), BPF_NOEXIST) != 0) {
      return ErrnoStatus("enhanced recording: adding session", errno);
    }
    const uint8_t on = 1;
    if (bpf_map__update_elem(maps->active, &cookie, sizeof(cookie), &on,
                             sizeof(on), BPF_ANY) != 0) {
      Status st = ErrnoStatus("enhanced recording: activating session", errno);
      bpf_map__delete_elem(maps->sessions, &cookie, sizeof(cookie), 0);
      return st;
    }
    impl_->sessions[cookie] = Impl::Session{};
  }
  // BPF_NOEXIST: tracking a process twice keeps what the kernel knows
  // of it (the time of its exec).
  task = mez_bpf_task{cookie, 0};
  if (bpf_map__update_elem(maps->tracked, &key, sizeof(key), &task,
                           sizeof(task), BPF_NOEXIST) != 0 &&
      errno != EEXIST) {
    return ErrnoStatus("enhanced recording: tracking process", errno);
  }
  return Status::Ok();
}

Status Monitor::Untrack(uint64_t cookie, std::vector<pid_t>* left) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->sessions.find(cookie);
  if (it == impl_->sessions.end() || it->second.closing) {
    return NotFound("enhanced recording: session " + std::to_string(cookie) +
                    " is not tracked");
  }
  auto* maps = &impl_->skel->maps;
  // Removing `active` first stops forks and events of the session at once
  // in the kernel; the task entries then go (the kernel also drops stale
  // ones it meets).
  bpf_map__delete_elem(maps->active, &cookie, sizeof(cookie), 0);
  it->second.closing = true;
  const int fd = bpf_map__fd(maps->tracked);
  uint32_t key = 0;
  uint32_t next = 0;
  bool first = true;
  std::vector<uint32_t> doomed;
  // A key the kernel deletes meanwhile restarts the walk at the first key;
  // the bound keeps a session that forks and exits fast from holding it
  // here (entries missed are dropped by the kernel when next met).
  uint64_t steps = 0;
  const uint64_t max_steps = 4 * uint64_t{impl_->max_tasks};
  while (steps++ < max_steps &&
         bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
    first = false;
    key = next;
    mez_bpf_task task{};
    if (bpf_map_lookup_elem(fd, &key, &task) == 0 && task.cookie == cookie) {
      doomed.push_back(key);
    }
  }
  for (uint32_t pid : doomed) bpf_map_delete_elem(fd, &pid);
  if (left != nullptr) left->assign(doomed.begin(), doomed.end());
  return Status::Ok();
}

namespace {

uint64_t MonotonicNowNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec) * 1'000'000'000 + uint64_t(now.tv_nsec);
}

}  // namespace

Result<int> Monitor::Poll(int timeout_ms, const EventCallback& callback) {
  impl_->delivered = 0;
  impl_->emit = [&](const Event& e) {
    callback(e);
    ++impl_->delivered;
  };
  // The kernel wakes this reader only once wakeup_bytes wait (see
  // exec_monitor.bpf.c), so the wait is cut into slices: a lone record is
  // read within kReadEveryMs, a held run of opens is delivered when it
  // falls due (even if it began during this call), and Poll still returns
  // only when it delivered something or its time is up.
  const uint64_t start = MonotonicNowNs();
  int rc = 0;
  for (;;) {
    const uint64_t now = MonotonicNowNs();
    int slice = kReadEveryMs;
    if (timeout_ms >= 0) {
      const uint64_t waited_ms = (now - start) / 1000000;
      slice = waited_ms >= uint64_t(timeout_ms)
                  ? 0
                  : std::min<int>(slice, timeout_ms - int(waited_ms));
    }
    if (std::optional<uint64_t> due = impl_->collapser.NextDeadline()) {
      const uint64_t due_ms = *due > now ? (*due - now + 999999) / 1000000 : 0;
      slice = static_cast<int>(std::min<uint64_t>(slice, due_ms));
    }
    rc = ring_buffer__poll(impl_->ring, slice);
    if (rc >= 0) rc = ring_buffer__consume(impl_->ring);
    impl_->collapser.FlushExpired(MonotonicNowNs(), impl_->emit);
    if (rc < 0 || impl_->delivered > 0) break;
    if (timeout_ms >= 0 &&
        (MonotonicNowNs() - start) / 1000000 >= uint64_t(timeout_ms)) {
      break;
    }
  }
  if (rc < 0 && rc != -EINTR) {
    impl_->emit = nullptr;
    return ErrnoStatus("enhanced recording: reading the ring buffer", -rc);
  }
  // Drops are counted in the kernel at the moment the ring buffer has no
  // room, so every drop counted by now belongs to an event that will never
  // arrive: report the growth since the last report.
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (auto it = impl_->sessions.begin(); it != impl_->sessions.end();) {
    const uint64_t cookie = it->first;
    Impl::Session& s = it->second;
    Result<SessionCounters> now = impl_->ReadCounters(cookie);
    if (now.ok()) {
      const SessionCounters& c = *now;
      if (c.lost_exec != s.reported.lost_exec ||
          c.lost_exit != s.reported.lost_exit ||
          c.lost_net != s.reported.lost_net ||
          c.lost_file != s.reported.lost_file ||
          c.lost_forks != s.reported.lost_forks) {
        Event loss;
        loss.kind = EventKind::kLoss;
        loss.cookie = cookie;
        loss.seq = c.seq;
        timespec real{};
        clock_gettime(CLOCK_REALTIME, &real);
        loss.time_unix_ns = int64_t{real.tv_sec} * 1'000'000'000 + real.tv_nsec;
        loss.lost_exec = c.lost_exec - s.reported.lost_exec;
        loss.lost_exit = c.lost_exit - s.reported.lost_exit;
        loss.lost_net = c.lost_net - s.reported.lost_net;
        loss.lost_file = c.lost_file - s.reported.lost_file;
        loss.lost_forks = c.lost_forks - s.reported.lost_forks;
        // The run before it, so the loss comes after what was delivered.
        impl_->collapser.Flush(cookie, impl_->emit);
        impl_->emit(loss);
      }
      s.reported = c;
    }
    // Untracked: its run, and what arrives from now on, is delivered by
    // this Poll.
    if (s.closing) impl_->collapser.Flush(cookie, impl_->emit);
    // A program that passed the `active` check just before Untrack may
    // still count a drop; the counters are read once more before the
    // session is forgotten.
    if (s.closing && ++s.polls_since_close >= 2) {
      bpf_map__delete_elem(impl_->skel->maps.sessions, &cookie, sizeof(cookie),
                           0);
      it = impl_->sessions.erase(it);
    } else {
      ++it;
    }
  }
  // A session forgotten meanwhile (a straggler after its last Poll).
  impl_->collapser.FlushIf(
      [&](uint64_t cookie) { return impl_->sessions.count(cookie) == 0; },
      impl_->emit);
  impl_->emit = nullptr;
  return impl_->delivered;
}

int Monitor::Flush(const EventCallback& callback) {
  int delivered = 0;
  impl_->collapser.FlushIf([](uint64_t) { return true; },
                           [&](const Event& e) {
                             callback(e);
                             ++delivered;
                           });
  return delivered;
}

Result<SessionCounters> Monitor::Counters(uint64_t cookie) {
  return impl_->ReadCounters(cookie);
}

uint64_t Monitor::bad_records() const { return impl_->bad_records.load(); }

}  // namespace mez::bpf
