// mez::bpf::Monitor: the kernel side of enhanced recording. It follows the
// process tree of each tracked session in the kernel (fork inheritance,
// exit removal) and delivers the sessions' exec, exit, file (identical
// opens collapsed into a count) and network events, and a loss event
// whenever the kernel could not deliver some (never silently).
// What it sees and what root inside a session can still evade:
// docs/enhanced-recording.md; the events: docs/formats/enhanced-events.md.
#ifndef MEZ_BPF_MONITOR_H_
#define MEZ_BPF_MONITOR_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "libmez/bpf/event.h"
#include "libmez/util/status.h"

namespace mez::bpf {

struct MonitorOptions {
  // Size of the kernel's ring buffer in bytes: a power of two, at least
  // the page size. An exec record takes about 100 bytes plus its paths and
  // argv; when the buffer is full the kernel counts what it drops.
  uint32_t ring_bytes = 8u << 20;
  // Processes the kernel can follow at once, over all sessions (1 to
  // 4,194,304). A fork past it is not followed and is counted as
  // lost_forks in the session's next loss event.
  uint32_t max_tasks = 65536;
  // Whether to report file events (opens, unlinks, renames): a program on
  // every system call's return, and far more events than execs.
  bool file_events = true;
  // Identical opens of one process that follow each other in the
  // session's sequence are delivered as one file event with a count
  // (Event::count; docs/formats/enhanced-events.md, "Collapsed opens"). A
  // run is delivered at the session's next event that does not extend it,
  // before the session's loss event, at Untrack (the next Poll), by Flush,
  // and at the latest this many milliseconds after its first open (Poll
  // wakes up for it). 0: every open is its own event.
  uint32_t open_collapse_ms = 1000;
};

// The kernel's counters of one session (for diagnostics and tests).
struct SessionCounters {
  uint64_t seq = 0;  // last sequence number handed out
  uint64_t lost_exec = 0;
  uint64_t lost_exit = 0;
  uint64_t lost_net = 0;
  uint64_t lost_file = 0;
  uint64_t lost_forks = 0;
};

using EventCallback = std::function<void(const Event&)>;

// Thread safety: Track, Untrack and Counters may be called from any
// thread; Poll from one thread at a time. The callback runs on Poll's
// thread and must not call back into the Monitor.
class Monitor {
 public:
  // Whether this build has the BPF programs (MEZ_BPF at configure time).
  static bool Built();

  // Loads and attaches the BPF programs. Fails with one line that names
  // the cause and the fix: built without BPF, not root (CAP_BPF and
  // CAP_PERFMON, or CAP_SYS_ADMIN), no kernel BTF, kernel too old, or the
  // kernel's refusal as libbpf reported it.
  static Result<std::unique_ptr<Monitor>> Open(
      const MonitorOptions& options = {});

  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Attributes process pid (a tgid) and every process it forks from now on
  // to the session `cookie` (non-zero; the caller's choice, unique per
  // session). Call it before the process runs anything of the user's (a
  // child forked earlier is not followed). A pid already tracked for
  // another session is kAlreadyExists; a cookie being untracked is
  // kFailedPrecondition; a pid that does not exist is kNotFound.
  Status Track(pid_t pid, uint64_t cookie);

  // Stops following the session's processes. Events the kernel produced
  // before are still delivered by the next Poll calls, with a last loss
  // event if any were dropped; then the cookie is forgotten (it may be
  // tracked again after two Polls).
  // `left`, when given, receives the processes of the session the kernel
  // still followed (alive, or exiting right now): from here on nothing
  // they do is reported.
  Status Untrack(uint64_t cookie, std::vector<pid_t>* left = nullptr);

  // Waits up to timeout_ms (0: do not wait, -1: forever) for events, then
  // delivers every record waiting in the ring buffer and, for each session
  // whose kernel loss counters grew since the last report, one loss event.
  // The last open of a session may be held back as the start of a run of
  // identical opens (MonitorOptions::open_collapse_ms); while one is held,
  // the wait ends when it falls due. Returns the number of events
  // delivered (a collapsed run is one).
  Result<int> Poll(int timeout_ms, const EventCallback& callback);

  // Delivers every collapsed run of opens held back (see
  // MonitorOptions::open_collapse_ms) without waiting for its time bound;
  // Poll's thread only. Returns the number of events delivered.
  int Flush(const EventCallback& callback);

  // The kernel's counters for a session being tracked or untracked.
  Result<SessionCounters> Counters(uint64_t cookie);

  // Records in the ring buffer that did not decode (any thread) (0 unless the
  // kernel side and this library disagree on the format).
  uint64_t bad_records() const;

 private:
  struct Impl;
  explicit Monitor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mez::bpf

#endif  // MEZ_BPF_MONITOR_H_
