// Enhanced recording on the node (docs/enhanced-recording.md): one
// bpf::Monitor for the whole agent, one thread that polls it and routes
// each event by its cookie to the channel it belongs to, and per recorded
// shell or exec channel an EventFeed that the channel's recorder reads on
// the connection's thread and turns into RecordEvents frames.
//
// Lifetime of a channel's events: NewFeed picks a fresh cookie; the SSH
// server hands the channel's first process to Track before it runs
// anything of the user's (ChannelTap::TrackProcess); the kernel follows
// its process tree from then on; Take returns what was delivered so far;
// Finish (when the channel ends) untracks the cookie and waits until the
// router polled the monitor twice more, so every event the kernel produced
// before (the exits of the session's last processes included) is in the
// lines it returns, followed by one `untracked` line for each process of
// the session still running: from then on it is no longer followed.
#ifndef MEZ_RECORDER_EVENTS_H_
#define MEZ_RECORDER_EVENTS_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "libmez/bpf/monitor.h"
#include "libmez/util/status.h"
#include "mezite/v1/recording.pb.h"

namespace mez::recorder {

// Bounds of one RecordEvents frame: its lines' bytes (well below the
// spool's kMaxSpoolRecord and mezrecd's 2 MiB message limit; one event's
// line is at most about 130 KiB: a 16 KiB argv escaped six-fold and two
// paths) and its number of lines. A line longer than kMaxEventsFrameBytes
// goes alone in its frame.
inline constexpr size_t kMaxEventsFrameBytes = 256 << 10;
inline constexpr int kMaxEventsFrameLines = 1024;

// Event lines a channel may have waiting for its recorder (which takes
// them at least every 200 ms, but may be held up by a stalled node-sync
// stream for up to its stall timeout). Past it, the router drops events
// and counts them: the next Take or Finish ends with a `loss` line
// (lost_exec, lost_exit, lost_net, lost_file; seq: the highest number
// seen) so that, as for the kernel's own losses, nothing is lost
// silently.
inline constexpr size_t kMaxPendingEventBytes = 32 << 20;

// RecordEvents frames for `lines` (in order), each within the bounds
// above, all stamped offset_us.
std::vector<mezite::v1::RecordFrame> EventsFrames(
    std::vector<std::string> lines, int64_t offset_us);

class EventRouter;

// One channel's events. Track and the destructor may be called from any
// thread; Take and Finish from one thread at a time (the connection's).
class EventFeed {
 public:
  ~EventFeed();  // Untracks without waiting when Finish was not called.
  EventFeed(const EventFeed&) = delete;
  EventFeed& operator=(const EventFeed&) = delete;

  uint64_t cookie() const { return cookie_; }
  // Follows `pid` and what it forks from now on. kFailedPrecondition with
  // a message for the user when the kernel refused (the caller must then
  // not let the process run).
  Status Track(pid_t pid);
  // The event lines (ToJsonLine) delivered since the last Take, in the
  // order the monitor delivered them.
  std::vector<std::string> Take();
  // Stops following the channel's processes and returns every line not
  // taken yet, including those the kernel produced before the untrack
  // (waits for up to two polls of the router, at most 2 s).
  std::vector<std::string> Finish();

  struct Box;

 private:
  friend class EventRouter;
  EventFeed(EventRouter* router, uint64_t cookie, std::shared_ptr<Box> box)
      : router_(router), cookie_(cookie), box_(std::move(box)) {}
  EventRouter* router_;
  uint64_t cookie_;
  std::shared_ptr<Box> box_;
  std::atomic<bool> tracked_{false};
  bool finished_ = false;
};

// Thread-safe. Must outlive its feeds.
class EventRouter {
 public:
  // Opens the monitor (bpf::Monitor::Open; its one-line error as is) and
  // starts the polling thread.
  static Result<std::unique_ptr<EventRouter>> Open(
      const bpf::MonitorOptions& options = {},
      size_t max_pending_bytes = kMaxPendingEventBytes);
  ~EventRouter();  // Stops the thread; feeds get nothing more.
  EventRouter(const EventRouter&) = delete;
  EventRouter& operator=(const EventRouter&) = delete;

  // A feed with a fresh cookie (random, non-zero, not in use).
  std::unique_ptr<EventFeed> NewFeed();

  class Impl;

 private:
  friend class EventFeed;
  explicit EventRouter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mez::recorder

#endif  // MEZ_RECORDER_EVENTS_H_
