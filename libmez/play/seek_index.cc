#include "libmez/play/seek_index.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <csignal>

#include "libmez/play/seek_index_file.h"
#include "libmez/play/timing.h"

namespace mez::play {

SeekIndex::SeekIndex(SeekIndexOptions options, Checkpoint first)
    : options_(options) {
  snapshot_bytes_ = first.snapshot.size();
  checkpoints_.push_back(std::move(first));
}

SeekIndex::~SeekIndex() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void SeekIndex::Offer(const Event& next, int64_t next_timeline_us,
                      int64_t before_time_us, int64_t before_pos_us,
                      const Screen& screen) {
  std::lock_guard<std::mutex> lock(mu_);
  const Checkpoint& last = checkpoints_.back();
  if (next.offset <= last.at.offset) return;  // Indexed already.
  if (next_timeline_us - last.time_us < options_.interval_us &&
      next.offset - last.at.offset < options_.interval_bytes) {
    return;
  }
  Checkpoint cp;
  cp.time_us = before_pos_us;
  cp.at = ReadPosition{next.offset, next.line - 1, before_time_us};
  cp.rows = screen.rows();
  cp.cols = screen.cols();
  cp.snapshot = screen.Snapshot();
  snapshot_bytes_ += cp.snapshot.size();
  checkpoints_.push_back(std::move(cp));
  Thin();
}

void SeekIndex::Thin() {
  while (snapshot_bytes_ > options_.budget && checkpoints_.size() > 2) {
    // Keep even positions and the last one: it marks how far the index
    // reaches, and checkpoints are only ever added beyond it.
    std::vector<Checkpoint> kept;
    kept.reserve(checkpoints_.size() / 2 + 2);
    snapshot_bytes_ = 0;
    for (size_t i = 0; i < checkpoints_.size(); ++i) {
      if (i % 2 == 0 || i + 1 == checkpoints_.size()) {
        snapshot_bytes_ += checkpoints_[i].snapshot.size();
        kept.push_back(std::move(checkpoints_[i]));
      }
    }
    if (kept.size() == checkpoints_.size()) break;  // Nothing left to drop.
    checkpoints_ = std::move(kept);
    options_.interval_us =
        std::min<int64_t>(options_.interval_us, INT64_MAX / 2) * 2;
    options_.interval_bytes =
        std::min<uint64_t>(options_.interval_bytes, UINT64_MAX / 2) * 2;
  }
}

Checkpoint SeekIndex::Find(int64_t timeline_us) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::upper_bound(
      checkpoints_.begin(), checkpoints_.end(), timeline_us,
      [](int64_t t, const Checkpoint& cp) { return t < cp.time_us; });
  return *std::prev(it);  // The first is at time 0.
}

void SeekIndex::IndexInBackground(std::unique_ptr<EventReader> reader,
                                  const CastHeader& header,
                                  std::optional<int64_t> idle_cap_us,
                                  StoredLoader stored) {
  if (thread_.joinable()) return;
  if (stored) {
    std::lock_guard<std::mutex> lock(mu_);
    stored_pending_ = true;
  }
  // Signals (a resize, Ctrl-C) go to the player's thread, whose poll they
  // must interrupt: the new thread starts with all of them blocked.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread(&SeekIndex::Run, this, std::move(reader),
                        header.info.height, header.info.width, idle_cap_us,
                        header.events_offset, std::move(stored));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Status SeekIndex::Adopt(const std::string& body, int rows, int cols,
                        std::optional<int64_t> idle_cap_us,
                        uint64_t first_offset) {
  MEZ_ASSIGN_OR_RETURN(StoredSeekIndex index, ParseSeekIndex(body));
  const Checkpoint& first = index.checkpoints.front();
  if (first.rows != rows || first.cols != cols ||
      first.at.offset != first_offset) {
    return DataLoss("it does not start where this recording does");
  }
  if (index.idle_cap_us != idle_cap_us) {
    return Status(Code::kFailedPrecondition, "built for another idle limit");
  }
  uint64_t bytes = 0;
  for (const Checkpoint& cp : index.checkpoints) bytes += cp.snapshot.size();
  std::lock_guard<std::mutex> lock(mu_);
  // What the player indexed itself meanwhile lies within the stored one.
  checkpoints_ = std::move(index.checkpoints);
  snapshot_bytes_ = bytes;
  end_us_ = index.end_us;
  Thin();
  return Status::Ok();
}

void SeekIndex::Run(std::unique_ptr<EventReader> reader, int rows, int cols,
                    std::optional<int64_t> idle_cap_us, uint64_t first_offset,
                    StoredLoader stored) {
  if (stored) {
    auto body = stored();
    Status adopted = body.status();
    if (adopted.ok() && body->has_value()) {
      adopted = Adopt(**body, rows, cols, idle_cap_us, first_offset);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stored_pending_ = false;
      bool absent = body.ok() && !body->has_value();
      // Another idle limit is the viewer's choice, not a fault.
      if (!adopted.ok() && !absent &&
          adopted.code() != Code::kFailedPrecondition) {
        warning_ = "stored seek index ignored (" + adopted.message() +
                   "): indexing here";
      }
    }
    stored_cv_.notify_all();
    if (adopted.ok() && body.ok() && body->has_value()) {
      adopted_ = true;
      done_ = true;
      return;
    }
  }
  (void)IndexAll(reader.get(), rows, cols, idle_cap_us);
  done_ = true;
}

Status SeekIndex::IndexAll(EventReader* reader, int rows, int cols,
                           std::optional<int64_t> idle_cap_us,
                           const std::atomic<bool>* cancel) {
  Screen screen(rows, cols);
  Timeline timeline(idle_cap_us);
  Event event;
  for (;;) {
    if (stop_.load(std::memory_order_relaxed) ||
        (cancel != nullptr && cancel->load(std::memory_order_relaxed))) {
      return Status(Code::kUnavailable, "stopped");
    }
    MEZ_ASSIGN_OR_RETURN(bool got, reader->Next(&event));
    if (!got) {
      std::lock_guard<std::mutex> lock(mu_);
      end_us_ = timeline.pos_us();
      return Status::Ok();
    }
    int64_t before_time = timeline.last_time_us();
    int64_t before_pos = timeline.pos_us();
    int64_t at = timeline.Place(event.time_us);
    Offer(event, at, before_time, before_pos, screen);
    if (event.code == "o") {
      screen.Feed(event.data);
    } else if (event.code == "r") {
      int r = 0;
      int c = 0;
      if (ParseSizeEvent(event.data, &r, &c)) {
        Status size = CheckScreenSize(c, r);
        if (!size.ok()) {
          return size.WithContext("line " + std::to_string(event.line));
        }
        screen.Resize(r, c);
      }
    }
  }
}

bool SeekIndex::WaitForStored(int64_t max_us) const {
  std::unique_lock<std::mutex> lock(mu_);
  return stored_cv_.wait_for(lock, std::chrono::microseconds(max_us),
                             [this] { return !stored_pending_; });
}

std::string SeekIndex::TakeWarning() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string w;
  w.swap(warning_);
  return w;
}

std::optional<int64_t> SeekIndex::end_us() const {
  std::lock_guard<std::mutex> lock(mu_);
  return end_us_;
}

std::vector<Checkpoint> SeekIndex::checkpoints() const {
  std::lock_guard<std::mutex> lock(mu_);
  return checkpoints_;
}

int64_t SeekIndex::furthest_us() const {
  std::lock_guard<std::mutex> lock(mu_);
  return checkpoints_.back().time_us;
}

size_t SeekIndex::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return checkpoints_.size();
}

uint64_t SeekIndex::snapshot_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_bytes_;
}

}  // namespace mez::play
