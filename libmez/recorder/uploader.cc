#include "libmez/recorder/uploader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "libmez/spool/spool.h"
#include "libmez/util/log.h"
#include "libmez/util/thread_name.h"

namespace mez::recorder {
namespace {

constexpr size_t kPieceFrameBytes = 256 * 1024;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Names in `dir` ending in `suffix`, without it.
std::vector<std::string> List(const std::string& dir,
                              const std::string& suffix) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (EndsWith(name, suffix) && name.size() > suffix.size()) {
      out.push_back(name.substr(0, name.size() - suffix.size()));
    }
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t SizeOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

Result<std::unique_ptr<Uploader>> Uploader::Start(UploaderOptions options) {
  if (options.clock == nullptr) options.clock = RealClock();
  std::unique_ptr<Uploader> u(new Uploader(std::move(options)));
  const std::string& dir = u->opt_.spool_dir;
  // A crash (of mezd or the machine) leaves .part files (node mode) and
  // .sync files (node-sync's local copies): keep what was written and
  // upload it; mezrecd marks such a session incomplete.
  std::vector<std::string> cut = List(dir, ".part");
  for (const std::string& id : List(dir, ".sync")) cut.push_back(id + "#");
  for (std::string id : cut) {
    std::string suffix = ".part";
    if (!id.empty() && id.back() == '#') {
      id.pop_back();
      suffix = ".sync";
    }
    std::string part = dir + "/" + id + suffix;
    auto size = spool::TrimSpool(part);
    if (!size.ok()) {
      MEZ_LOG(kError) << "agent: " << part << ": " << size.status().ToString()
                      << "; left in place";
      continue;
    }
    std::string done = dir + "/" + id + ".spool";
    if (rename(part.c_str(), done.c_str()) != 0) {
      return ErrnoStatus("rename " + part, errno);
    }
    MEZ_LOG(kWarning) << "agent: session " << id
                      << " was cut off by a restart; uploading its " << *size
                      << " recorded bytes";
  }
  uint64_t used = 0;
  for (const std::string& id : List(dir, ".spool")) {
    used += SizeOf(dir + "/" + id + ".spool");
  }
  u->opt_.budget->Reserve(std::min(used, u->opt_.budget->limit()));
  u->thread_ = std::thread([p = u.get()] {
    NameThisThread("mez-upload");
    p->Loop();
  });
  return u;
}

Uploader::~Uploader() { Stop(); }

void Uploader::Notify() {
  std::lock_guard<std::mutex> lock(mu_);
  notified_ = true;
  cv_.notify_all();
}

void Uploader::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
    if (current_ != nullptr) current_->TryCancel();
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

int Uploader::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_;
}

void Uploader::Loop() {
  while (true) {
    std::vector<std::string> ids = List(opt_.spool_dir, ".spool");
    // Forget files that are gone.
    for (auto it = files_.begin(); it != files_.end();) {
      it = std::binary_search(ids.begin(), ids.end(), it->first)
               ? std::next(it)
               : files_.erase(it);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ = static_cast<int>(ids.size());
      notified_ = false;
    }
    int64_t next_us = INT64_MAX;
    for (const std::string& id : ids) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
      }
      FileState& st = files_[id];
      int64_t now = opt_.clock->MonotonicMicros();
      if (st.next_try_us > now) {
        next_us = std::min(next_us, st.next_try_us);
        continue;
      }
      Status s = UploadOne(id, &st);
      if (s.ok()) {
        files_.erase(id);
        std::lock_guard<std::mutex> lock(mu_);
        --pending_;
        continue;
      }
      st.backoff_us = st.backoff_us == 0
                          ? opt_.retry_min_us
                          : std::min(st.backoff_us * 2, opt_.retry_max_us);
      st.next_try_us = opt_.clock->MonotonicMicros() + st.backoff_us;
      next_us = std::min(next_us, st.next_try_us);
      if (s.message() != st.last_error) {
        MEZ_LOG(kWarning) << "agent: upload of session " << id
                          << " failed: " << s.message() << "; retrying in "
                          << st.backoff_us / 1000 << " ms and backing off";
        st.last_error = s.message();
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_) return;
    if (notified_) continue;
    int64_t wait_us =
        next_us == INT64_MAX
            ? 60'000'000
            : std::max<int64_t>(0, next_us - opt_.clock->MonotonicMicros());
    cv_.wait_for(lock, std::chrono::microseconds(wait_us),
                 [this] { return stop_ || notified_; });
    if (stop_) return;
  }
}

Status Uploader::UploadOne(const std::string& id, FileState* st) {
  std::string path = opt_.spool_dir + "/" + id + ".spool";
  if (st->sha256.empty()) {
    MEZ_ASSIGN_OR_RETURN(st->sha256, spool::FileSha256(path));
    st->size = SizeOf(path);
  }
  mezite::v1::UploadStatus status;
  {
    mezite::v1::UploadStatusRequest req;
    req.set_session_id(id);
    req.set_total_size(st->size);
    req.set_sha256(st->sha256);
    Status g = client_.GetUploadStatus(req, &status, std::chrono::seconds(10));
    if (!g.ok()) return Status(Code::kUnavailable, "mezrecd: " + g.message());
  }
  if (!status.complete()) {
    if (status.received() > 0) {
      MEZ_LOG(kInfo) << "agent: resuming the upload of session " << id
                     << " at byte " << status.received() << " of " << st->size;
    }
    Status s = Send(path, id, *st, status.received(), &status);
    if (!s.ok()) return s;
  }
  if (!status.complete()) {
    return Status(Code::kUnavailable,
                  "mezrecd holds " + std::to_string(status.received()) +
                      " of " + std::to_string(st->size) + " bytes");
  }
  if (status.total_size() != st->size || status.sha256() != st->sha256) {
    // Stored, but not from this file: never delete on a mismatch.
    Reject(id, "mezrecd stored session " + id + " from a different copy (" +
                   std::to_string(status.total_size()) + " bytes, sha256 " +
                   status.sha256() + ")");
    return Status::Ok();
  }
  if (unlink(path.c_str()) != 0) return ErrnoStatus("delete " + path, errno);
  opt_.budget->Release(st->size);
  MEZ_LOG(kInfo) << "agent: session " << id << " uploaded (" << st->size
                 << " bytes, sha256 " << st->sha256.substr(0, 12) << "...) as "
                 << status.storage_key() << "; spool file deleted";
  return Status::Ok();
}

Status Uploader::Send(const std::string& path, const std::string& id,
                      const FileState& st, uint64_t offset,
                      mezite::v1::UploadStatus* reply) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  std::unique_ptr<rpc::UploadStream> writer = client_.Upload(reply);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return Status(Code::kUnavailable, "stopping");
    current_ = writer.get();
  }
  struct Unregister {
    Uploader* u;
    ~Unregister() {
      std::lock_guard<std::mutex> lock(u->mu_);
      u->current_ = nullptr;
    }
  } unregister{this};
  mezite::v1::UploadFrame frame;
  auto* start = frame.mutable_start();
  start->set_session_id(id);
  start->set_total_size(st.size);
  start->set_sha256(st.sha256);
  start->set_offset(offset);
  bool ok = writer->Write(frame);
  std::string buf(kPieceFrameBytes, '\0');
  uint64_t pos = offset;
  int64_t started_us = opt_.clock->MonotonicMicros();
  uint64_t sent = 0;
  while (ok && pos < st.size) {
    ssize_t n =
        pread(fd, buf.data(), std::min<uint64_t>(buf.size(), st.size - pos),
              static_cast<off_t>(pos));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      writer->WritesDone();
      writer->Finish().ok();
      return n < 0 ? ErrnoStatus("read " + path, errno)
                   : Status(Code::kDataLoss, path + " shrank while uploading");
    }
    frame.set_data(buf.data(), static_cast<size_t>(n));
    ok = writer->Write(frame);
    pos += static_cast<uint64_t>(n);
    sent += static_cast<uint64_t>(n);
    if (opt_.rate_limit > 0) {
      // Sleep until the bytes sent fit the rate.
      int64_t due_us =
          started_us + static_cast<int64_t>(sent * 1'000'000 / opt_.rate_limit);
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_ && opt_.clock->MonotonicMicros() < due_us) {
        cv_.wait_for(lock, std::chrono::microseconds(
                               due_us - opt_.clock->MonotonicMicros()));
      }
      if (stop_) ok = false;
    }
  }
  if (ok) writer->WritesDone();
  Status g = writer->Finish();
  if (g.ok()) return Status::Ok();
  if (g.code() == Code::kInvalidArgument) {
    Reject(id, g.message());
    return g;
  }
  return Status(Code::kUnavailable, "mezrecd: " + g.message());
}

void Uploader::Reject(const std::string& id, const std::string& why) {
  std::string dir = opt_.spool_dir + "/rejected";
  mkdir(dir.c_str(), 0700);
  std::string from = opt_.spool_dir + "/" + id + ".spool";
  std::string to = dir + "/" + id + ".spool";
  uint64_t size = SizeOf(from);
  if (rename(from.c_str(), to.c_str()) == 0) opt_.budget->Release(size);
  MEZ_LOG(kError) << "agent: mezrecd refused session " << id << ": " << why
                  << "; the spool file is kept in " << to;
  if (opt_.on_rejected) opt_.on_rejected(id, why);
}

}  // namespace mez::recorder
