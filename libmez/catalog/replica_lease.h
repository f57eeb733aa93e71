// Liveness of mezrecd replicas that share one catalog (PostgreSQL). Each
// process picks a random replica id at start, names itself in the sessions
// it records (Session::replica) and renews a lease row while it runs; any
// replica marks incomplete the sessions still "recording" whose replica's
// lease has expired (it crashed, or lost the catalog for longer than the
// timeout). See docs/formats/catalog.md, "Replica leases".
#ifndef MEZ_CATALOG_REPLICA_LEASE_H_
#define MEZ_CATALOG_REPLICA_LEASE_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "libmez/catalog/catalog.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::catalog {

// 16 lower-case hex digits from the kernel's random source.
std::string NewReplicaId();

struct ReplicaLeaseOptions {
  Catalog* catalog = nullptr;  // Not owned; outlives the lease.
  Clock* clock = nullptr;      // Lease times; default RealClock().
  std::string id;              // Empty: NewReplicaId().
  // A replica whose lease is older than this is presumed dead.
  int64_t timeout_us = 60'000'000;
  // How often the thread renews the lease and sweeps (real time, not
  // `clock`); 0: a third of the timeout, at most 5 s.
  int64_t period_us = 0;
  // Off for tests that drive RunOnce themselves.
  bool run_thread = true;
};

// Thread-safe.
class ReplicaLease {
 public:
  // Renews the lease and sweeps once, so that a catalog that cannot be
  // reached stops startup; then starts the thread (when asked).
  // kInvalidArgument for a timeout <= 0 or a period not below it.
  static Result<std::unique_ptr<ReplicaLease>> Start(
      ReplicaLeaseOptions options);
  // Stops the thread and drops the lease: sessions of this replica still
  // recording are then orphans that other replicas mark at once.
  ~ReplicaLease();
  ReplicaLease(const ReplicaLease&) = delete;
  ReplicaLease& operator=(const ReplicaLease&) = delete;

  const std::string& id() const { return opt_.id; }

  // One round: renews the lease, then marks the sessions of expired
  // replicas incomplete (logged). Returns how many were marked.
  Result<int> RunOnce();

 private:
  explicit ReplicaLease(ReplicaLeaseOptions options)
      : opt_(std::move(options)) {}
  void Loop();

  const ReplicaLeaseOptions opt_;
  std::mutex round_mu_;          // Serialises rounds; guards the two below.
  bool failing_ = false;         // The last round failed (logged once).
  int64_t last_renewed_us_ = 0;  // Monotonic.
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace mez::catalog

#endif  // MEZ_CATALOG_REPLICA_LEASE_H_
