#include "libmez/recorder/events.h"

#include <openssl/rand.h>

#include <chrono>
#include <condition_variable>
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

struct EventFeed::Box {
  std::vector<std::string> lines;  // guarded by the router's mu_
};

class EventRouter::Impl {
 public:
  std::unique_ptr<bpf::Monitor> monitor_;
  std::mutex mu_;
  std::condition_variable polled_cv_;  // polls_ went up, or stopping_
  std::map<uint64_t, std::shared_ptr<EventFeed::Box>> boxes_;  // mu_
  uint64_t polls_ = 0;     // guarded by mu_: completed polls
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;

  void Loop();
};

void EventRouter::Impl::Loop() {
  std::vector<std::pair<uint64_t, std::string>> got;
  bool warned = false;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    // Lines are made here, outside the lock; routed after the poll.
    Result<int> n = monitor_->Poll(kPollMs, [&got](const bpf::Event& e) {
      got.emplace_back(e.cookie, bpf::ToJsonLine(e));
    });
    if (!n.ok() && !warned) {
      warned = true;
      MEZ_LOG(kError) << "recording: reading enhanced recording events: "
                      << n.status().message();
    }
    std::unique_lock<std::mutex> lock(mu_);
    for (auto& [cookie, line] : got) {
      auto it = boxes_.find(cookie);
      if (it != boxes_.end()) it->second->lines.push_back(std::move(line));
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
    const bpf::MonitorOptions& options) {
  auto impl = std::make_unique<Impl>();
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
  std::vector<std::string> lines;
  std::lock_guard<std::mutex> lock(router_->impl_->mu_);
  lines.swap(box_->lines);
  return lines;
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
  Status s = r->monitor_->Untrack(cookie_);
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
  std::vector<std::string> lines;
  lines.swap(box_->lines);
  r->boxes_.erase(cookie_);
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
