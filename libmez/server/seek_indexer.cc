#include "libmez/server/seek_indexer.h"

#include <pthread.h>

#include <csignal>

#include "libmez/play/seek_index_file.h"
#include "libmez/record/plain_cast.h"
#include "libmez/util/log.h"

namespace mez::server {
namespace {

// A stored recording as the player reads it: the plain asciicast stream
// (decompressed and decrypted), from its start only.
class StoredRecording : public play::RecordingSource {
 public:
  StoredRecording(store::BlobStore* store, std::string key,
                  std::optional<std::string> enc_key)
      : store_(store), key_(std::move(key)), enc_key_(std::move(enc_key)) {}
  Result<std::unique_ptr<record::ByteSource>> Open(uint64_t offset) override {
    MEZ_ASSIGN_OR_RETURN(auto raw, store_->Open(key_));
    MEZ_ASSIGN_OR_RETURN(auto plain,
                         record::OpenPlainCast(std::move(raw), enc_key_));
    MEZ_RETURN_IF_ERROR(play::SkipBytes(plain.get(), offset));
    return plain;
  }
  std::optional<uint64_t> size() override { return std::nullopt; }
  play::SessionMeta meta() override { return {}; }

 private:
  store::BlobStore* store_;
  std::string key_;
  std::optional<std::string> enc_key_;
};

}  // namespace

SeekIndexer::SeekIndexer(SeekIndexerOptions options)
    : opt_(std::move(options)) {
  if (opt_.min_bytes == 0 || opt_.store == nullptr) return;
  // Signals stay with mezrecd's main thread (sigwait).
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread(&SeekIndexer::Run, this);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

SeekIndexer::~SeekIndexer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cancel_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool SeekIndexer::Eligible(const catalog::Session& s) const {
  return thread_.joinable() && s.format == "asciicast-v2" &&
         (s.kind == "shell" || s.kind == "exec") &&
         s.status == catalog::SessionStatus::kComplete &&
         !s.storage_key.empty() && s.bytes >= opt_.min_bytes;
}

void SeekIndexer::Ended(const catalog::Session& session) {
  if (Eligible(session)) Queue(session);
}

void SeekIndexer::Queue(const catalog::Session& s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || running_ == s.id) return;
    for (const auto& q : queue_) {
      if (q.id == s.id) return;
    }
    if (queue_.size() >= opt_.max_queue) {
      MEZ_LOG(kWarning) << "seek index of session " << s.id
                        << " not queued: " << queue_.size()
                        << " jobs wait already (it is built when next asked "
                           "for)";
      return;
    }
    queue_.push_back(s);
  }
  cv_.notify_all();
}

size_t SeekIndexer::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + (running_.empty() ? 0 : 1);
}

void SeekIndexer::Run() {
  for (;;) {
    catalog::Session job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      running_.clear();
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      running_ = job.id;
    }
    Status s = Build(job);
    if (s.ok()) {
      ++built_;
    } else if (!cancel_ && s.code() != Code::kAlreadyExists) {
      MEZ_LOG(kWarning) << "seek index of session " << job.id << ": "
                        << s.ToString();
    }
  }
}

Status SeekIndexer::Build(const catalog::Session& s) {
  std::string key = store::SeekIndexKey(s.storage_key);
  MEZ_ASSIGN_OR_RETURN(bool exists, opt_.store->Exists(key));
  if (exists) return Status(Code::kAlreadyExists, "built already");
  StoredRecording src(opt_.store, s.storage_key, opt_.encryption_key);
  // The idle cap is the header's: what `msh play` uses unless told
  // otherwise.
  MEZ_ASSIGN_OR_RETURN(
      play::StoredSeekIndex index,
      play::BuildSeekIndex(&src, play::StoredSeekIndexOptions(), std::nullopt,
                           &cancel_));
  MEZ_ASSIGN_OR_RETURN(std::string file, play::EncodeSeekIndexFile(
                                             play::SerializeSeekIndex(index),
                                             opt_.encryption_key, s.id));
  MEZ_ASSIGN_OR_RETURN(auto sink, opt_.store->Create(key));
  Status w = sink->Append(file);
  Status c = sink->Close();
  if (!w.ok() || !c.ok()) {
    // Never leave half an index behind.
    (void)opt_.store->Delete(key);
    return w.ok() ? c : w;
  }
  MEZ_LOG(kInfo) << "seek index of session " << s.id << ": "
                 << index.checkpoints.size() << " checkpoints, " << file.size()
                 << " bytes";
  return Status::Ok();
}

Result<std::string> SeekIndexer::Read(const catalog::Session& session) {
  std::string key = store::SeekIndexKey(session.storage_key);
  auto file = opt_.store->Open(key);
  if (!file.ok()) {
    if (file.status().code() == Code::kNotFound) {
      if (Eligible(session)) Queue(session);
      return NotFound("session " + session.id + " has no seek index");
    }
    return file.status();
  }
  auto body =
      play::DecodeSeekIndexFile(file->get(), opt_.encryption_key, session.id);
  if (!body.ok()) {
    MEZ_LOG(kWarning) << "seek index of session " << session.id << " ("
                      << opt_.store->Describe(key)
                      << ") refused: " << body.status().message();
    return DataLoss("the stored seek index is damaged: " +
                    body.status().message());
  }
  return body;
}

}  // namespace mez::server
