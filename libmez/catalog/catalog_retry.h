// Catalog writes that must not be lost to a passing failure: audit events
// and the end of a session. A write that fails is queued and retried with
// backoff until it is stored, so a full disk or a restarting PostgreSQL
// costs an event's latency, not the event (and a session does not stay
// `recording` because one FinishSession failed).
#ifndef MEZ_CATALOG_CATALOG_RETRY_H_
#define MEZ_CATALOG_CATALOG_RETRY_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "libmez/catalog/catalog.h"
#include "libmez/util/clock.h"

namespace mez::catalog {

struct CatalogRetrierOptions {
  Catalog* catalog = nullptr;  // Not owned; must outlive.
  Clock* clock = nullptr;      // Default: RealClock().
  // At most this many writes wait; a write that fails while the queue is
  // full is dropped and counted (dropped()), with an error logged.
  size_t max_queued = 10000;
  // Wait before the first retry; doubled after each failed pass, up to
  // max_backoff_us, and reset once a retry succeeds.
  int64_t first_backoff_us = 200'000;
  int64_t max_backoff_us = 30'000'000;
  // Start the background retry thread (tests drive RetryNow instead).
  bool start_thread = true;
  // Named in log lines ("ingest", "cluster").
  std::string name = "catalog";
};

// Thread-safe.
class CatalogRetrier {
 public:
  explicit CatalogRetrier(CatalogRetrierOptions options);
  // Stops the thread after one last pass; what is still queued is logged
  // with its count (it is lost with this process).
  ~CatalogRetrier();

  // Appends `event` (its time_us as given). On a failure that may pass
  // (any but kInvalidArgument), the event is queued and the failure
  // returned; a queued event is written later with its original time.
  Result<int64_t> AppendAudit(const catalog::AuditEvent& event);
  // FinishSession, queued on failure as AppendAudit (kNotFound and
  // kInvalidArgument are final).
  Status FinishSession(const std::string& id, int64_t ended_us, uint64_t bytes,
                       catalog::SessionStatus status);

  // Tries every queued write once, in order, stopping at the first that
  // fails again. Returns how many are still queued.
  size_t RetryNow();
  size_t queued() const;
  uint64_t dropped() const;

 private:
  struct Write {
    bool is_finish = false;
    catalog::AuditEvent event;
    std::string session_id;
    int64_t ended_us = 0;
    uint64_t bytes = 0;
    catalog::SessionStatus status = catalog::SessionStatus::kIncomplete;
  };
  Status Apply(const Write& w);
  void Enqueue(Write w, const Status& why);
  void Loop();

  CatalogRetrierOptions opt_;
  mutable std::mutex mu_;
  std::mutex retry_mu_;  // One retry pass at a time, in order.
  std::condition_variable cv_;
  std::deque<Write> queue_;
  uint64_t dropped_ = 0;
  int64_t backoff_us_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

// Whether a failed catalog write may succeed when tried again.
bool IsRetryable(const Status& s);

}  // namespace mez::catalog

#endif  // MEZ_CATALOG_CATALOG_RETRY_H_
