#include "libmez/recorder/events.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "libmez/util/log.h"
#include "libmez/util/thread_name.h"

namespace mez::recorder {
namespace {

// How long one Poll waits for events: bounds how long Finish waits (two
// polls) and how long the router takes to stop.
constexpr int kPollMs = 50;
constexpr auto kFinishWait = std::chrono::seconds(2);

}  // namespace

std::vector<mezite::v1::RecordFrame> EventsFrames(
    std::vector<std::string> lines, int64_t offset_us) {
  std::vector<mezite::v1::RecordFrame> frames;
  mezite::v1::RecordEvents* cur = nullptr;
  size_t bytes = 0;
  for (std::string& line : lines) {
    if (cur == nullptr || cur->lines_size() >= kMaxEventsFrameLines ||
        bytes + line.size() > kMaxEventsFrameBytes) {
      cur = frames.emplace_back().mutable_events();
      cur->set_offset_us(offset_us);
      bytes = 0;
    }
    bytes += line.size();
    cur->add_lines(std::move(line));
  }
  return frames;
}

// Guarded by the router's mu_.
struct EventFeed::Box {
  uint64_t cookie = 0;
  std::vector<std::string> lines;
  size_t bytes = 0;      // in lines
  uint64_t max_seq = 0;  // the highest seq seen, delivered or dropped
  // Events dropped past max_pending_bytes, as a loss event to deliver.
  bpf::Event dropped;
  bool has_dropped = false;

  // Adds the line of `e`, or counts `e` as dropped when over `cap`.
  void Add(const bpf::Event& e, std::string line, size_t cap) {
    max_seq = std::max(max_seq, e.seq);
    if (bytes + line.size() <= cap) {
      bytes += line.size();
      lines.push_back(std::move(line));
      return;
    }
    has_dropped = true;
    switch (e.kind) {
      case bpf::EventKind::kExec:
        ++dropped.lost_exec;
        break;
      case bpf::EventKind::kExit:
        ++dropped.lost_exit;
        break;
      case bpf::EventKind::kFile:
        ++dropped.lost_file;
        break;
      case bpf::EventKind::kLoss:
        dropped.lost_exec += e.lost_exec;
        dropped.lost_exit += e.lost_exit;
        dropped.lost_file += e.lost_file;
        dropped.lost_net += e.lost_net;
        dropped.lost_forks += e.lost_forks;
        break;
      default:  // connect, listen, accept, udp_send
        ++dropped.lost_net;
        break;
    }
  }
  // The lines waiting, ended by a loss line for what was dropped.
  std::vector<std::string> TakeLines() {
    std::vector<std::string> out;
    out.swap(lines);
    bytes = 0;
    if (has_dropped) {
      dropped.kind = bpf::EventKind::kLoss;
      dropped.cookie = cookie;
      dropped.seq = max_seq;
      dropped.time_unix_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
      out.push_back(bpf::ToJsonLine(dropped));
      dropped = bpf::Event();
      has_dropped = false;
    }
    return out;
  }
};

namespace {

// Most processes a session's end reports as left running (one line each);
// past it a warning is logged.
constexpr size_t kMaxUntrackedReported = 1024;

// Process `pid` as /proc shows it now: executable, argv (up to 4 KiB),
// parent and real uid. What cannot be read stays empty (it may have just
// exited).
bpf::Event UntrackedEvent(pid_t pid, uint64_t cookie, uint64_t seq) {
  bpf::Event e;
  e.kind = bpf::EventKind::kUntracked;
  e.cookie = cookie;
  e.seq = seq;
  e.time_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  e.pid = pid;
  std::string dir = "/proc/" + std::to_string(pid);
  char buf[4096];
  ssize_t n = readlink((dir + "/exe").c_str(), buf, sizeof(buf) - 1);
  if (n > 0) e.path.assign(buf, static_cast<size_t>(n));
  int fd = open((dir + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t got = read(fd, buf, sizeof(buf));
    close(fd);
    for (ssize_t i = 0, start = 0; i < got; ++i) {
      if (buf[i] == '\0') {
        e.argv.emplace_back(buf + start, static_cast<size_t>(i - start));
        start = i + 1;
      }
    }
  }
  FILE* status = std::fopen((dir + "/status").c_str(), "re");
  if (status != nullptr) {
    char line[256];
    while (std::fgets(line, sizeof(line), status) != nullptr) {
      unsigned long v = 0;
      if (std::sscanf(line, "PPid: %lu", &v) == 1) e.ppid = static_cast<int>(v);
      if (std::sscanf(line, "Uid: %lu", &v) == 1) {
        e.uid = static_cast<uint32_t>(v);
      }
    }
    std::fclose(status);
  }
  return e;
}

}  // namespace

class EventRouter::Impl {
 public:
  std::unique_ptr<bpf::Monitor> monitor_;
  size_t max_pending_bytes_ = kMaxPendingEventBytes;
  std::mutex mu_;
  std::condition_variable polled_cv_;  // polls_ went up, or stopping_
  std::map<uint64_t, std::shared_ptr<EventFeed::Box>> boxes_;  // mu_
  uint64_t polls_ = 0;     // guarded by mu_: completed polls
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;

  void Loop();
};

void EventRouter::Impl::Loop() {
  std::vector<std::pair<bpf::Event, std::string>> got;
  bool warned = false;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    // Lines are made here, outside the lock; routed after the poll.
    Result<int> n = monitor_->Poll(kPollMs, [&got](const bpf::Event& e) {
      got.emplace_back(e, bpf::ToJsonLine(e));
    });
    if (!n.ok() && !warned) {
      warned = true;
      MEZ_LOG(kError) << "recording: reading enhanced recording events: "
                      << n.status().message();
    }
    std::unique_lock<std::mutex> lock(mu_);
    for (auto& [event, line] : got) {
      auto it = boxes_.find(event.cookie);
      if (it != boxes_.end()) {
        it->second->Add(event, std::move(line), max_pending_bytes_);
      }
    }
    got.clear();
    ++polls_;
    polled_cv_.notify_all();
    if (!n.ok()) {
      // Do not spin on a monitor that keeps failing.
      polled_cv_.wait_for(lock, std::chrono::milliseconds(kPollMs),
                          [this] { return stopping_; });
    }
  }
}

Result<std::unique_ptr<EventRouter>> EventRouter::Open(
    const bpf::MonitorOptions& options, size_t max_pending_bytes) {
  auto impl = std::make_unique<Impl>();
  impl->max_pending_bytes_ = max_pending_bytes;
  MEZ_ASSIGN_OR_RETURN(impl->monitor_, bpf::Monitor::Open(options));
  Impl* i = impl.get();
  i->thread_ = std::thread([i] {
    NameThisThread("mez-bpf-poll");
    i->Loop();
  });
  return std::unique_ptr<EventRouter>(new EventRouter(std::move(impl)));
}

EventRouter::EventRouter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EventRouter::~EventRouter() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    impl_->stopping_ = true;
    impl_->polled_cv_.notify_all();
  }
  if (impl_->thread_.joinable()) impl_->thread_.join();
}

std::unique_ptr<EventFeed> EventRouter::NewFeed() {
  auto box = std::make_shared<EventFeed::Box>();
  uint64_t cookie = 0;
  std::lock_guard<std::mutex> lock(impl_->mu_);
  while (cookie == 0 || impl_->boxes_.count(cookie) != 0) {
    unsigned char buf[8];
    if (RAND_bytes(buf, sizeof(buf)) != 1) {
      MEZ_LOG(kError) << "agent: RAND_bytes failed";
      std::abort();
    }
    std::memcpy(&cookie, buf, sizeof(cookie));
  }
  box->cookie = cookie;
  impl_->boxes_[cookie] = box;
  return std::unique_ptr<EventFeed>(new EventFeed(this, cookie, box));
}

Status EventFeed::Track(pid_t pid) {
  Status s = router_->impl_->monitor_->Track(pid, cookie_);
  if (s.ok()) {
    tracked_.store(true);
    return s;
  }
  return Status(Code::kFailedPrecondition,
                "mezd: cannot start the session: enhanced recording cannot "
                "follow it (" +
                    s.message() + ")");
}

std::vector<std::string> EventFeed::Take() {
  std::lock_guard<std::mutex> lock(router_->impl_->mu_);
  return box_->TakeLines();
}

std::vector<std::string> EventFeed::Finish() {
  if (finished_) return {};
  finished_ = true;
  EventRouter::Impl* r = router_->impl_.get();
  if (!tracked_.load()) {
    std::lock_guard<std::mutex> lock(r->mu_);
    r->boxes_.erase(cookie_);
    return {};
  }
  std::vector<pid_t> left;
  Status s = r->monitor_->Untrack(cookie_, &left);
  if (!s.ok()) {
    MEZ_LOG(kWarning) << "recording: untracking enhanced recording cookie "
                      << cookie_ << ": " << s.message();
  }
  std::unique_lock<std::mutex> lock(r->mu_);
  // A poll that started after the untrack has drained what the kernel
  // produced before it: wait for the one under way to end and one more.
  uint64_t want = r->polls_ + 2;
  if (!r->polled_cv_.wait_for(lock, kFinishWait, [&] {
        return r->polls_ >= want || r->stopping_;
      })) {
    MEZ_LOG(kWarning) << "recording: the last enhanced recording events of "
                         "cookie "
                      << cookie_ << " were not read in time";
  }
  std::vector<std::string> lines = box_->TakeLines();
  uint64_t seq = box_->max_seq;
  r->boxes_.erase(cookie_);
  lock.unlock();
  // What the session leaves running is said, since from here on nothing it
  // does is followed (docs/enhanced-recording.md, "Outliving the session").
  std::sort(left.begin(), left.end());
  for (size_t i = 0; i < left.size() && i < kMaxUntrackedReported; ++i) {
    lines.push_back(bpf::ToJsonLine(UntrackedEvent(left[i], cookie_, seq)));
  }
  if (left.size() > kMaxUntrackedReported) {
    MEZ_LOG(kWarning) << "recording: cookie " << cookie_ << " left "
                      << left.size() << " processes running; "
                      << kMaxUntrackedReported << " reported";
  }
  return lines;
}

EventFeed::~EventFeed() {
  if (finished_) return;
  EventRouter::Impl* r = router_->impl_.get();
  if (tracked_.load()) (void)r->monitor_->Untrack(cookie_);
  std::lock_guard<std::mutex> lock(r->mu_);
  r->boxes_.erase(cookie_);
}

}  // namespace mez::recorder
