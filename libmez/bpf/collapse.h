// Collapses runs of identical opens into one event with a count, so a
// process that opens the same file in a loop does not flood the log
// (docs/formats/enhanced-events.md, "Collapsed opens"). Pure user space:
// the kernel still numbers and sends every open, so sequence numbers and
// loss counts stay exact; the collapser only merges what arrived.
#ifndef MEZ_BPF_COLLAPSE_H_
#define MEZ_BPF_COLLAPSE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>

#include "libmez/bpf/event.h"

namespace mez::bpf {

// Whether `next` may join the run `run` holds: an open of the same
// session, process (pid, ppid, uid, euid), path, flags, mode and result
// (success with any descriptor, or the same errno), whose sequence number
// is the one right after the run's, within window_ns of the run's first
// open. window_ns 0: never.
bool ExtendsRun(const Event& run, const Event& next, uint64_t window_ns);

// Holds at most one open per session (the run being counted) and delivers
// everything else through `emit` in the order given, a held run before the
// event that ends it. Not thread-safe: Monitor::Poll's thread owns it.
class OpenCollapser {
 public:
  using Emit = std::function<void(const Event&)>;

  // window_ns: how long after its first open a run is delivered at the
  // latest (by FlushExpired); 0 turns collapsing off.
  explicit OpenCollapser(uint64_t window_ns) : window_ns_(window_ns) {}

  // Takes one decoded event: extends the session's run, or delivers the
  // run and then holds the event (an open) or delivers it (anything else).
  void Add(const Event& event, const Emit& emit);

  // Delivers the session's run, if one is held.
  void Flush(uint64_t cookie, const Emit& emit);

  // Delivers every held run for which `pred(cookie)` holds.
  void FlushIf(const std::function<bool(uint64_t)>& pred, const Emit& emit);

  // Delivers the runs whose first open is window_ns or more older than
  // now_ns (CLOCK_MONOTONIC, the kernel's stamps' clock).
  void FlushExpired(uint64_t now_ns, const Emit& emit);

  // When the earliest held run falls due (CLOCK_MONOTONIC ns), if any.
  std::optional<uint64_t> NextDeadline() const;

  size_t held() const { return held_.size(); }

 private:
  uint64_t window_ns_;
  std::map<uint64_t, Event> held_;  // cookie -> its run
};

}  // namespace mez::bpf

#endif  // MEZ_BPF_COLLAPSE_H_
