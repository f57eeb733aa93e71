#include "libmez/catalog/replica_lease.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "libmez/util/duration.h"
#include "libmez/util/log.h"
#include "libmez/util/thread_name.h"

namespace mez::catalog {

std::string NewReplicaId() {
  // 64 random bits, as 16 lowercase hex digits.
  return NewIdentityId().substr(0, 16);
}

Result<std::unique_ptr<ReplicaLease>> ReplicaLease::Start(
    ReplicaLeaseOptions options) {
  MEZ_CHECK(options.catalog != nullptr);
  if (options.clock == nullptr) options.clock = RealClock();
  if (options.id.empty()) options.id = NewReplicaId();
  if (options.timeout_us <= 0) {
    return InvalidArgument("replica lease timeout must be positive");
  }
  if (options.period_us == 0) {
    options.period_us = std::min<int64_t>(options.timeout_us / 3, 5'000'000);
  }
  if (options.period_us <= 0 || options.period_us >= options.timeout_us) {
    return InvalidArgument(
        "replica lease period must be positive and below "
        "the timeout (" +
        FormatDuration(options.timeout_us) + ")");
  }
  std::unique_ptr<ReplicaLease> lease(new ReplicaLease(std::move(options)));
  MEZ_RETURN_IF_ERROR(lease->RunOnce().status());
  if (lease->opt_.run_thread) {
    lease->thread_ = std::thread([l = lease.get()] {
      NameThisThread("mez-lease");
      l->Loop();
    });
  }
  return lease;
}

ReplicaLease::~ReplicaLease() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  Status s = opt_.catalog->DropReplicaLease(opt_.id);
  if (!s.ok()) {
    MEZ_LOG(kWarning) << "replica " << opt_.id
                      << ": dropping the lease: " << s.ToString()
                      << " (other replicas will let it expire)";
  }
}

Result<int> ReplicaLease::RunOnce() {
  std::lock_guard lock(round_mu_);
  int64_t mono_us = opt_.clock->MonotonicMicros();
  // A lease that went unrenewed past the timeout may have been taken for
  // dead: other replicas may have marked this one's live sessions
  // incomplete (their final status is still written when they end).
  auto fail = [&](const char* what, const Status& s) -> Status {
    if (!failing_) {
      MEZ_LOG(kWarning) << "replica " << opt_.id << ": " << what << ": "
                        << s.ToString() << " (retried every "
                        << FormatDuration(opt_.period_us) << ")";
    }
    failing_ = true;
    if (mono_us - last_renewed_us_ > opt_.timeout_us) {
      MEZ_LOG(kError) << "replica " << opt_.id << ": lease not renewed for "
                      << FormatDuration(mono_us - last_renewed_us_)
                      << " (replicaLeaseTimeout "
                      << FormatDuration(opt_.timeout_us)
                      << "): other replicas may have marked this replica's "
                         "live sessions incomplete";
    }
    return s;
  };
  int64_t now_us = opt_.clock->WallMicros();
  Status renewed = opt_.catalog->RenewReplicaLease(opt_.id, now_us);
  if (!renewed.ok()) {
    if (last_renewed_us_ == 0) return renewed;  // At start: no log, fail.
    return fail("renewing the lease", renewed);
  }
  last_renewed_us_ = mono_us;
  auto marked =
      opt_.catalog->MarkOrphanedSessions(opt_.id, now_us, opt_.timeout_us);
  if (!marked.ok()) {
    return fail("marking orphaned sessions", marked.status());
  }
  if (failing_) {
    MEZ_LOG(kInfo) << "replica " << opt_.id << ": the catalog answers again";
  }
  failing_ = false;
  if (*marked > 0) {
    MEZ_LOG(kWarning) << *marked
                      << " session(s) of replicas whose lease expired ("
                      << FormatDuration(opt_.timeout_us)
                      << " without renewal) were still recording; marked "
                         "incomplete (their recordings are readable up to "
                         "the interruption)";
  }
  return marked;
}

void ReplicaLease::Loop() {
  std::unique_lock lock(stop_mu_);
  while (!stop_) {
    stop_cv_.wait_for(lock, std::chrono::microseconds(opt_.period_us),
                      [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    (void)RunOnce();  // Failures are logged.
    lock.lock();
  }
}

}  // namespace mez::catalog
