// The seek index: keyframes ("checkpoints") of the emulated screen taken
// while a recording is read, so that a seek re-reads at most one interval
// of it. It is fed by the player as it plays and, for `msh play`, by a
// reader of its own on a background thread that goes through the whole
// recording at once, so that seeks anywhere are fast soon after the start.
// Behaviour and bounds: docs/formats/playback.md ("The seek index").
#ifndef MEZ_PLAY_SEEK_INDEX_H_
#define MEZ_PLAY_SEEK_INDEX_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "libmez/play/event_reader.h"
#include "libmez/play/screen.h"

namespace mez::play {

// A point the player can resume from without reading what came before.
struct Checkpoint {
  int64_t time_us = 0;  // Timeline time of the state (the last event
                        // before `at`).
  ReadPosition at;      // The next event line.
  int rows = 0;         // Emulated screen size and contents.
  int cols = 0;
  // Screen::Snapshot(), or (packed, from a stored index) its raw DEFLATE
  // form, unpacked only when a seek lands on it (UnpackSnapshot in
  // seek_index_file.h): a stored index is adopted without inflating it.
  std::string snapshot;
  bool packed = false;
  uint32_t text_size = 0;  // When packed: the size unpacked.
};

struct SeekIndexOptions {
  // A checkpoint is taken when this much timeline time or this many bytes
  // went by since the last one.
  int64_t interval_us = 5'000'000;
  uint64_t interval_bytes = 1 << 20;
  // Most bytes all snapshots may hold together. A recording can make each
  // snapshot large (a full screen of changing colours) and ask for many, so
  // beyond this every other checkpoint is dropped (the first and the
  // furthest stay) and both intervals double: seeks then re-read more,
  // memory stays bounded.
  uint64_t budget = 64 << 20;
};

// Thread-safe.
class SeekIndex {
 public:
  // `first`: the state before any event (time 0, the first event line).
  SeekIndex(SeekIndexOptions options, Checkpoint first);
  // Stops the background reader, if any, and waits for it.
  ~SeekIndex();
  SeekIndex(const SeekIndex&) = delete;
  SeekIndex& operator=(const SeekIndex&) = delete;

  // Offers the state of `screen` after every event before `next` (whose
  // timeline time is `next_timeline_us`; the timeline stood at
  // `before_pos_us`, recording time `before_time_us`, before it). Kept when
  // it lies beyond the furthest checkpoint by an interval.
  void Offer(const Event& next, int64_t next_timeline_us,
             int64_t before_time_us, int64_t before_pos_us,
             const Screen& screen);

  // The last checkpoint at or before `timeline_us` (a copy).
  Checkpoint Find(int64_t timeline_us) const;

  // The body of a stored index (seek_index_file.h), nullopt when there is
  // none. Runs on the background thread.
  using StoredLoader = std::function<Result<std::optional<std::string>>()>;

  // On a thread of its own: first, when `stored` is given, fetches the
  // stored index and, when it parses and fits this recording (`header`'s
  // size and first event line, the same idle cap), adopts its checkpoints
  // and length and stops there. Otherwise (none, or a bad one: then
  // warning() says so) reads `reader` (opened on the same recording, its
  // header read) to the end, emulating a screen from `header`'s size with
  // the same idle limit as the player, offering every event. An error or a
  // refused size only stops it: the player meets the same line itself.
  void IndexInBackground(std::unique_ptr<EventReader> reader,
                         const CastHeader& header,
                         std::optional<int64_t> idle_cap_us,
                         StoredLoader stored = nullptr);
  // Reads `reader` to the end on the caller's thread, as the background
  // reader does; its error (a read error, a refused size, `*cancel` set)
  // is returned.
  Status IndexAll(EventReader* reader, int rows, int cols,
                  std::optional<int64_t> idle_cap_us,
                  const std::atomic<bool>* cancel = nullptr);
  // The background reader has stopped (at the end, or on an error).
  bool background_done() const { return done_.load(); }
  // Waits up to `max_us` for the stored index to be fetched (adopted or
  // not); true when that is settled (or there was none to fetch).
  bool WaitForStored(int64_t max_us) const;
  // The checkpoints came from a stored index.
  bool adopted_stored() const { return adopted_.load(); }
  // One line about a stored index that was refused, else empty. Cleared by
  // the call.
  std::string TakeWarning();
  // The timeline length, once the background reader reached the end.
  std::optional<int64_t> end_us() const;

  std::vector<Checkpoint> checkpoints() const;
  // Timeline time of the furthest checkpoint.
  int64_t furthest_us() const;
  size_t size() const;
  uint64_t snapshot_bytes() const;

 private:
  void Thin();  // REQUIRES: mu_ held.
  void Run(std::unique_ptr<EventReader> reader, int rows, int cols,
           std::optional<int64_t> idle_cap_us, uint64_t first_offset,
           StoredLoader stored);
  // Adopts the stored body when it fits; else the reason it does not.
  Status Adopt(const std::string& body, int rows, int cols,
               std::optional<int64_t> idle_cap_us, uint64_t first_offset);

  mutable std::mutex mu_;
  SeekIndexOptions options_;  // Intervals double as Thin drops.
  std::vector<Checkpoint> checkpoints_;
  uint64_t snapshot_bytes_ = 0;
  std::optional<int64_t> end_us_;
  bool stored_pending_ = false;  // A stored index is being fetched.
  mutable std::condition_variable stored_cv_;
  std::string warning_;

  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<bool> adopted_{false};
};

}  // namespace mez::play

#endif  // MEZ_PLAY_SEEK_INDEX_H_
