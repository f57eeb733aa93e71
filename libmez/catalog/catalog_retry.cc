#include "libmez/catalog/catalog_retry.h"

#include <algorithm>
#include <chrono>

#include "libmez/util/log.h"
#include "libmez/util/thread_name.h"

namespace mez::catalog {

bool IsRetryable(const Status& s) {
  switch (s.code()) {
    case Code::kInvalidArgument:
    case Code::kNotFound:
    case Code::kAlreadyExists:
      return false;
    default:
      return !s.ok();
  }
}

CatalogRetrier::CatalogRetrier(CatalogRetrierOptions options)
    : opt_(std::move(options)) {
  MEZ_CHECK(opt_.catalog != nullptr);
  if (opt_.clock == nullptr) opt_.clock = RealClock();
  backoff_us_ = opt_.first_backoff_us;
  if (opt_.start_thread) {
    thread_ = std::thread([this] {
      NameThisThread("mez-cat-retry");
      Loop();
    });
  }
}

CatalogRetrier::~CatalogRetrier() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  size_t left = RetryNow();
  if (left > 0) {
    MEZ_LOG(kError) << opt_.name << ": " << left
                    << " catalog write(s) still failing at shutdown are lost "
                       "(audit events or session ends; see earlier errors)";
  }
}

Status CatalogRetrier::Apply(const Write& w) {
  if (w.is_finish) {
    return opt_.catalog->FinishSession(w.session_id, w.ended_us, w.bytes,
                                       w.status);
  }
  return opt_.catalog->AppendAudit(w.event).status();
}

void CatalogRetrier::Enqueue(Write w, const Status& why) {
  std::string what =
      w.is_finish ? "end of session " + w.session_id : "audit " + w.event.type;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= opt_.max_queued) {
      ++dropped_;
      MEZ_LOG(kError) << opt_.name << ": " << what
                      << " lost: " << why.ToString() << " (retry queue full at "
                      << opt_.max_queued << "; " << dropped_
                      << " lost so far): fix the catalog";
      return;
    }
    queue_.push_back(std::move(w));
  }
  MEZ_LOG(kWarning) << opt_.name << ": " << what << " not stored ("
                    << why.ToString() << "); will retry";
  cv_.notify_all();
}

Result<int64_t> CatalogRetrier::AppendAudit(const catalog::AuditEvent& event) {
  auto r = opt_.catalog->AppendAudit(event);
  if (r.ok()) return r;
  if (IsRetryable(r.status())) {
    Write w;
    w.event = event;
    Enqueue(std::move(w), r.status());
  } else {
    MEZ_LOG(kError) << opt_.name << ": audit " << event.type
                    << " refused: " << r.status().ToString();
  }
  return r.status();
}

Status CatalogRetrier::FinishSession(const std::string& id, int64_t ended_us,
                                     uint64_t bytes,
                                     catalog::SessionStatus status) {
  Status s = opt_.catalog->FinishSession(id, ended_us, bytes, status);
  if (s.ok()) return s;
  if (IsRetryable(s)) {
    Write w;
    w.is_finish = true;
    w.session_id = id;
    w.ended_us = ended_us;
    w.bytes = bytes;
    w.status = status;
    Enqueue(std::move(w), s);
  } else {
    MEZ_LOG(kError) << opt_.name << ": finishing session " << id << ": "
                    << s.ToString();
  }
  return s;
}

size_t CatalogRetrier::RetryNow() {
  std::lock_guard<std::mutex> pass(retry_mu_);
  for (;;) {
    Write w;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) {
        backoff_us_ = opt_.first_backoff_us;
        return 0;
      }
      w = queue_.front();
    }
    Status s = Apply(w);
    std::lock_guard<std::mutex> lock(mu_);
    if (!s.ok() && IsRetryable(s)) {
      backoff_us_ = std::min(backoff_us_ * 2, opt_.max_backoff_us);
      return queue_.size();
    }
    if (!s.ok()) {
      MEZ_LOG(kError) << opt_.name << ": a queued catalog write was refused: "
                      << s.ToString();
    }
    queue_.pop_front();
  }
}

size_t CatalogRetrier::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

uint64_t CatalogRetrier::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

void CatalogRetrier::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (queue_.empty()) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      continue;
    }
    cv_.wait_for(lock, std::chrono::microseconds(backoff_us_),
                 [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    size_t left = RetryNow();
    if (left == 0) {
      MEZ_LOG(kInfo) << opt_.name << ": queued catalog writes are stored";
    }
    lock.lock();
  }
}

}  // namespace mez::catalog
