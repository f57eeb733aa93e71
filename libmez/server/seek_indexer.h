// mezrecd's seek indexer: builds the seek index of each finished shell or
// exec recording large enough to need one, on one background thread, and
// keeps it beside the recording in the store (docs/formats/seek-index.md);
// and reads a stored index back for ReadRecording. Never on the ingest
// path: a recording's end only queues a job.
#ifndef MEZ_SERVER_SEEK_INDEXER_H_
#define MEZ_SERVER_SEEK_INDEXER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "libmez/catalog/catalog.h"
#include "libmez/store/blob_store.h"
#include "libmez/util/status.h"

namespace mez::server {

struct SeekIndexerOptions {
  store::BlobStore* store = nullptr;  // Not owned.
  // The recording key: an index is sealed with it, as the recording is.
  std::optional<std::string> encryption_key;
  // Recordings with fewer payload bytes get no index (their seeks are fast
  // without one); 0 turns indexing off.
  uint64_t min_bytes = 16 << 20;
  // Jobs waiting beyond the one being built; more are dropped (logged):
  // such a recording gets its index when it is next asked for.
  size_t max_queue = 256;
};

// Thread-safe.
class SeekIndexer {
 public:
  // Starts the worker thread unless indexing is off.
  explicit SeekIndexer(SeekIndexerOptions options);
  // Stops the worker, abandoning the job in progress and the queue.
  ~SeekIndexer();
  SeekIndexer(const SeekIndexer&) = delete;
  SeekIndexer& operator=(const SeekIndexer&) = delete;

  // A recording ended: queues it when it is a complete asciicast recording
  // of at least min_bytes.
  void Ended(const catalog::Session& session);
  // The stored index of `session` (a recording the caller may read), as
  // its plain body: kNotFound when there is none (then, for a recording
  // that should have one, it is queued), kDataLoss for a damaged, forged or
  // misplaced one (logged).
  Result<std::string> Read(const catalog::Session& session);

  // Tests: indexes built, and jobs queued or running.
  uint64_t built() const { return built_.load(); }
  size_t pending() const;

 private:
  bool Eligible(const catalog::Session& s) const;
  void Queue(const catalog::Session& s);
  void Run();
  Status Build(const catalog::Session& s);

  SeekIndexerOptions opt_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<catalog::Session> queue_;
  std::string running_;  // Session id of the job being built.
  bool stop_ = false;
  std::atomic<bool> cancel_{false};
  std::atomic<uint64_t> built_{0};
  std::thread thread_;
};

}  // namespace mez::server

#endif  // MEZ_SERVER_SEEK_INDEXER_H_
