#include "libmez/store/s3_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "libmez/record/gzip.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"
#include "libmez/util/log.h"
#include "libmez/util/thread_name.h"

namespace mez::store {
namespace {

constexpr size_t kMinPartSize = 5 << 20;

// One object's uploads, run in order on the store's upload pool (or
// inline when there is none). Jobs are serial per object so that the
// multipart upload is created before its parts and completed after them;
// objects proceed in parallel on the pool's threads. The first failing
// job's Status sticks and the jobs after it are skipped.
class UploadQueue : public std::enable_shared_from_this<UploadQueue> {
 public:
  UploadQueue(ThreadPool* pool, int max_in_flight)
      : pool_(pool), max_in_flight_(std::max(1, max_in_flight)) {}

  // Queues a part job, first waiting while max_in_flight part jobs are
  // pending. Returns the first error so far instead of queueing.
  Status AddPart(std::function<Status()> job) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] {
      return parts_pending_ < max_in_flight_ || !error_.ok();
    });
    if (!error_.ok()) return error_;
    ++parts_pending_;
    Enqueue(std::move(job), true, &lock);
    return Status::Ok();
  }

  // Queues `job`, then waits until every job has run; the first error.
  Status Finish(std::function<Status()> job) {
    std::unique_lock<std::mutex> lock(mu_);
    Enqueue(std::move(job), false, &lock);
    cv_.wait(lock, [this] { return jobs_.empty() && !running_; });
    return error_;
  }

  // Waits until every job has run; the first error.
  Status Drain() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return jobs_.empty() && !running_; });
    return error_;
  }

  Status error() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  struct Job {
    std::function<Status()> run;
    bool part;
  };

  void Enqueue(std::function<Status()> job, bool part,
               std::unique_lock<std::mutex>* lock) {
    jobs_.push_back({std::move(job), part});
    if (running_) return;
    running_ = true;
    if (pool_ == nullptr) {
      lock->unlock();
      Run();
      lock->lock();
    } else {
      pool_->Submit([self = shared_from_this()] { self->Run(); });
    }
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!jobs_.empty()) {
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      if (error_.ok()) {
        lock.unlock();
        Status s = job.run();
        lock.lock();
        if (!s.ok() && error_.ok()) error_ = s;
      }
      if (job.part) --parts_pending_;
      cv_.notify_all();
    }
    running_ = false;
    cv_.notify_all();
  }

  ThreadPool* pool_;
  const int max_in_flight_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;   // Guarded by mu_, as are the three below.
  int parts_pending_ = 0;  // Part jobs queued or running.
  bool running_ = false;   // A Run() is draining jobs_.
  Status error_;
};

// Part size for the next part: doubles every 1,000 parts (up to 16x) to
// stay within S3's 10,000-part limit.
size_t PartSizeAfter(size_t base, int parts) {
  return base << std::min(parts / 1000, 4);
}

Status CheckPartNumber(S3Client* client, const std::string& key, int number) {
  if (number > 10'000) {
    return FailedPrecondition(client->Describe(key) +
                              " is over the 10,000-part limit of S3");
  }
  return Status::Ok();
}

// A multipart upload that vanished (NoSuchUpload, kNotFound) mostly means
// that its bucket went: Swift's s3api deletes a bucket's unfinished
// uploads with it, and a part racing the deletion sees NoSuchUpload. Asks
// the bucket, so that the error names the setting to fix rather than the
// upload; `s` unchanged otherwise.
Status ExplainLostUpload(S3Client* client, Status s) {
  if (s.code() != Code::kNotFound) return s;
  auto page = client->ListObjectsV2("", "", 1);
  // kFailedPrecondition: NoSuchBucket (or a region error), each naming
  // its setting.
  if (!page.ok() && page.status().code() == Code::kFailedPrecondition) {
    return page.status();
  }
  return s;
}

// Buffers appended bytes in memory and queues each full part; see
// s3_store.h.
class S3Sink : public record::ByteSink {
 public:
  S3Sink(S3Client* client, std::string key, size_t part_size, ThreadPool* pool,
         int max_in_flight)
      : client_(client),
        key_(std::move(key)),
        part_size_(part_size),
        queue_(std::make_shared<UploadQueue>(pool, max_in_flight)) {}

  ~S3Sink() override {
    if (closed_) return;
    // Like a file, what was appended stays: finish the object.
    Status s = Close();
    if (!s.ok()) {
      MEZ_LOG(kError) << "closing " << client_->Describe(key_) << ": "
                      << s.ToString();
    }
  }

  Status Append(std::string_view data) override {
    if (closed_) return FailedPrecondition("append to a closed S3 object");
    MEZ_RETURN_IF_ERROR(queue_->error());
    buf_.append(data);
    written_ += data.size();
    while (buf_.size() >= PartSizeAfter(part_size_, queued_parts_)) {
      size_t n = PartSizeAfter(part_size_, queued_parts_);
      int number = ++queued_parts_;
      MEZ_RETURN_IF_ERROR(CheckPartNumber(client_, key_, number));
      std::string part = buf_.substr(0, n);
      buf_.erase(0, n);
      MEZ_RETURN_IF_ERROR(
          queue_->AddPart([this, number, part = std::move(part)] {
            return Upload(number, part);
          }));
    }
    return Status::Ok();
  }

  Status Flush() override { return queue_->error(); }

  Status Close() override {
    if (closed_) return Status::Ok();
    closed_ = true;
    Status s;
    if (queued_parts_ == 0) {
      s = queue_->Finish([this] { return client_->PutObject(key_, buf_); });
    } else {
      int number = ++queued_parts_;
      bool last = !buf_.empty();
      s = queue_->Finish([this, number, last]() -> Status {
        if (last) {
          MEZ_RETURN_IF_ERROR(CheckPartNumber(client_, key_, number));
          MEZ_RETURN_IF_ERROR(Upload(number, buf_));
        }
        return ExplainLostUpload(client_, client_->CompleteMultipartUpload(
                                              key_, upload_id_, parts_));
      });
    }
    if (!s.ok() && !upload_id_.empty()) {
      Status a = client_->AbortMultipartUpload(key_, upload_id_);
      if (!a.ok()) {
        MEZ_LOG(kWarning) << "aborting the multipart upload of "
                          << client_->Describe(key_) << ": " << a.ToString();
      }
    }
    buf_.clear();
    buf_.shrink_to_fit();
    return s;
  }

  uint64_t bytes_written() const override { return written_; }

 private:
  // On the upload thread.
  Status Upload(int number, std::string_view data) {
    if (upload_id_.empty()) {
      MEZ_ASSIGN_OR_RETURN(upload_id_, client_->CreateMultipartUpload(key_));
    }
    auto etag = client_->UploadPart(key_, upload_id_, number, data);
    if (!etag.ok()) return ExplainLostUpload(client_, etag.status());
    parts_.push_back({number, std::move(etag).value()});
    return Status::Ok();
  }

  S3Client* client_;
  std::string key_;
  size_t part_size_;
  std::shared_ptr<UploadQueue> queue_;
  // The writer's side.
  std::string buf_;
  int queued_parts_ = 0;
  uint64_t written_ = 0;
  bool closed_ = false;
  // The upload jobs' side (serial; read by Close after the queue drained).
  std::string upload_id_;
  std::vector<CompletedPart> parts_;
};

// Like S3Sink, but every appended byte goes to a local spool file first
// (fsynced by Sync), and the upload jobs read parts back from it: memory
// stays small however many recordings are open, and a crash loses nothing
// that was appended. `<spool>.meta` names the key and the multipart upload
// so that S3Store::RecoverSpools can finish the object after a restart.
class SpooledS3Sink : public record::ByteSink {
 public:
  SpooledS3Sink(S3Client* client, std::string key, size_t part_size,
                std::string path, int fd, ThreadPool* pool, int max_in_flight)
      : client_(client),
        key_(std::move(key)),
        part_size_(part_size),
        path_(std::move(path)),
        fd_(fd),
        queue_(std::make_shared<UploadQueue>(pool, max_in_flight)) {}

  ~SpooledS3Sink() override {
    if (!closed_) {
      Status s = Close();
      if (!s.ok()) {
        MEZ_LOG(kError) << "closing " << client_->Describe(key_) << ": "
                        << s.ToString() << " (spool kept: " << path_ << ")";
      }
    }
    // Parts still uploading are waited for; Close reported any failure.
    queue_->Drain().IgnoreError();
    if (fd_ >= 0) close(fd_);
  }

  Status Append(std::string_view data) override {
    if (closed_) return FailedPrecondition("append to a closed S3 object");
    MEZ_RETURN_IF_ERROR(write_error_);
    MEZ_RETURN_IF_ERROR(queue_->error());
    Status w = WriteAll(fd_, data);
    if (!w.ok()) return write_error_ = w;
    written_ += data.size();
    return QueueFullParts();
  }
  Status Flush() override {
    MEZ_RETURN_IF_ERROR(write_error_);
    return queue_->error();
  }
  Status Sync() override {
    MEZ_RETURN_IF_ERROR(write_error_);
    MEZ_RETURN_IF_ERROR(queue_->error());
    if (fdatasync(fd_) != 0) return ErrnoStatus("fdatasync " + path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    if (closed_) return Status::Ok();
    closed_ = true;
    // On failure the spool stays for RecoverSpools.
    if (!write_error_.ok()) {
      queue_->Drain().IgnoreError();  // The write error is the one to report.
      return write_error_;
    }
    MEZ_RETURN_IF_ERROR(Finish());
    unlink(path_.c_str());
    unlink((path_ + ".meta").c_str());
    return Status::Ok();
  }

  uint64_t bytes_written() const override { return written_; }

  // Uploads the whole spool file (a restart's leftover) as `key`, on the
  // calling thread.
  static Status UploadFile(S3Client* client, const std::string& key,
                           const std::string& path, size_t part_size) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open " + path, errno);
    struct stat st;
    if (fstat(fd, &st) != 0) {
      int err = errno;
      close(fd);
      return ErrnoStatus("stat " + path, err);
    }
    SpooledS3Sink sink(client, key, part_size, path, fd, nullptr, 1);
    sink.written_ = static_cast<uint64_t>(st.st_size);
    sink.meta_ = false;
    sink.closed_ = true;
    MEZ_RETURN_IF_ERROR(sink.QueueFullParts());
    return sink.Finish();
  }

 private:
  Status QueueFullParts() {
    while (written_ - queued_ >= PartSizeAfter(part_size_, queued_parts_)) {
      size_t n = PartSizeAfter(part_size_, queued_parts_);
      int number = ++queued_parts_;
      MEZ_RETURN_IF_ERROR(CheckPartNumber(client_, key_, number));
      uint64_t offset = queued_;
      queued_ += n;
      MEZ_RETURN_IF_ERROR(queue_->AddPart(
          [this, number, offset, n] { return Upload(number, offset, n); }));
    }
    return Status::Ok();
  }

  // Uploads what is left, completes the object and checks its size; waits
  // for all of it.
  Status Finish() {
    uint64_t size = written_;
    uint64_t offset = queued_;
    int number = queued_parts_ + 1;
    bool multipart = queued_parts_ > 0;
    return queue_->Finish([this, size, offset, number, multipart]() -> Status {
      if (!multipart) {
        MEZ_ASSIGN_OR_RETURN(std::string data, ReadSpool(0, size));
        MEZ_RETURN_IF_ERROR(client_->PutObject(key_, data));
      } else {
        if (size > offset) {
          MEZ_RETURN_IF_ERROR(CheckPartNumber(client_, key_, number));
          MEZ_RETURN_IF_ERROR(
              Upload(number, offset, static_cast<size_t>(size - offset)));
        }
        MEZ_RETURN_IF_ERROR(ExplainLostUpload(
            client_,
            client_->CompleteMultipartUpload(key_, upload_id_, parts_)));
      }
      // The spool goes only once the object is there with every byte.
      MEZ_ASSIGN_OR_RETURN(S3Object head, client_->HeadObject(key_));
      if (head.size != size) {
        return DataLoss(client_->Describe(key_) + " has " +
                        std::to_string(head.size) + " bytes, not " +
                        std::to_string(size));
      }
      return Status::Ok();
    });
  }

  Result<std::string> ReadSpool(uint64_t offset, size_t n) {
    std::string buf(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = pread(fd_, buf.data() + got, n - got,
                        static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return ErrnoStatus("read " + path_, r < 0 ? errno : EIO);
      got += static_cast<size_t>(r);
    }
    return buf;
  }

  Status WriteMeta() {
    if (!meta_) return Status::Ok();
    return AtomicWriteFile(path_ + ".meta", key_ + "\n" + upload_id_ + "\n",
                           0600);
  }

  // On the upload thread.
  Status Upload(int number, uint64_t offset, size_t n) {
    if (upload_id_.empty()) {
      MEZ_ASSIGN_OR_RETURN(upload_id_, client_->CreateMultipartUpload(key_));
      MEZ_RETURN_IF_ERROR(WriteMeta());
    }
    MEZ_ASSIGN_OR_RETURN(std::string data, ReadSpool(offset, n));
    auto etag = client_->UploadPart(key_, upload_id_, number, data);
    if (!etag.ok()) return ExplainLostUpload(client_, etag.status());
    parts_.push_back({number, std::move(etag).value()});
    return Status::Ok();
  }

  S3Client* client_;
  std::string key_;
  size_t part_size_;
  std::string path_;
  int fd_;
  bool meta_ = true;
  std::shared_ptr<UploadQueue> queue_;
  // The writer's side.
  uint64_t written_ = 0;
  uint64_t queued_ = 0;  // Bytes handed to part jobs.
  int queued_parts_ = 0;
  Status write_error_;  // Sticky: the spool has a gap after it.
  bool closed_ = false;
  // The upload jobs' side (serial).
  std::string upload_id_;
  std::vector<CompletedPart> parts_;
};

std::string SpoolName(const std::string& object_key) {
  unsigned char md[32];
  SHA256(reinterpret_cast<const unsigned char*>(object_key.data()),
         object_key.size(), md);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), 16)) +
         ".spool";
}

// Reads the object from its start with Range GETs of `chunk` bytes, each
// only when the reader gets there, so that opening a large recording costs
// one request whatever its size. The size is not asked for first (a HEAD
// is a round trip before the first byte): a GET that returns less than
// asked for is the last.
class S3Source : public record::ByteSource {
 public:
  S3Source(S3Client* client, std::string key, size_t chunk)
      : client_(client), key_(std::move(key)), chunk_(chunk) {}

  Result<size_t> Read(char* buf, size_t n) override {
    if (pos_ == buf_.size()) {
      MEZ_RETURN_IF_ERROR(Fill());
      if (buf_.empty()) return size_t{0};
    }
    size_t len = std::min(n, buf_.size() - pos_);
    std::memcpy(buf, buf_.data() + pos_, len);
    pos_ += len;
    return len;
  }

  // Fetches the next chunk once the current one is consumed. kNotFound
  // when there is no such object.
  Status Fill() {
    if (pos_ < buf_.size()) return Status::Ok();
    buf_.clear();
    pos_ = 0;
    if (eof_) return Status::Ok();
    MEZ_ASSIGN_OR_RETURN(buf_, client_->GetObject(key_, offset_, chunk_));
    eof_ = buf_.size() < chunk_;
    offset_ += buf_.size();
    return Status::Ok();
  }
  std::string_view Peek() const { return std::string_view(buf_).substr(pos_); }

 private:
  S3Client* client_;
  std::string key_;
  size_t chunk_;
  uint64_t offset_ = 0;  // Next byte of the object to fetch.
  bool eof_ = false;     // The last GET was short: nothing follows.
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace

Result<std::unique_ptr<S3Store>> S3Store::New(S3StoreOptions options) {
  if (!options.prefix.empty() && !options.prefix.ends_with("/")) {
    options.prefix += "/";
  }
  if (options.prefix.starts_with("/")) {
    return InvalidArgument("S3 prefix '" + options.prefix +
                           "' starts with '/': check MEZITE_S3_PREFIX");
  }
  options.part_size = std::max(options.part_size, kMinPartSize);
  options.read_chunk_size = std::max<size_t>(options.read_chunk_size, 4096);
  MEZ_ASSIGN_OR_RETURN(auto client, S3Client::New(options.s3));
  if (options.check_bucket) {
    auto page = client->ListObjectsV2(options.prefix, "", 1);
    if (!page.ok()) return page.status();
  }
  std::unique_ptr<S3Store> store(
      new S3Store(std::move(options), std::move(client)));
  if (!store->options_.spool_dir.empty()) {
    const std::string& dir = store->options_.spool_dir;
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("create " + dir, errno);
    }
    MEZ_RETURN_IF_ERROR(store->RecoverSpools());
  }
  return store;
}

S3Store::S3Store(S3StoreOptions options, std::unique_ptr<S3Client> client)
    : options_(std::move(options)), client_(std::move(client)) {
  if (options_.upload_threads > 0) {
    pool_ =
        std::make_unique<ThreadPool>(options_.upload_threads, "mez-s3-upload");
  }
}

Status S3Store::RecoverSpools() {
  const std::string& dir = options_.spool_dir;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus("open " + dir, errno);
  std::vector<std::string> metas;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.ends_with(".spool.meta")) metas.push_back(name);
  }
  closedir(d);
  for (const std::string& meta : metas) {
    std::string meta_path = dir + "/" + meta;
    std::string spool = meta_path.substr(0, meta_path.size() - 5);
    auto text = ReadFile(meta_path);
    if (!text.ok()) return text.status();
    std::string object = text->substr(0, text->find('\n'));
    std::string rest = text->substr(std::min(text->size(), object.size() + 1));
    std::string upload_id = rest.substr(0, rest.find('\n'));
    if (object.empty()) return DataLoss(meta_path + " names no object");
    // A half-done multipart upload is dropped and the object redone from
    // the spool, which holds every byte that was appended.
    if (!upload_id.empty()) {
      Status a = client_->AbortMultipartUpload(object, upload_id);
      if (!a.ok() && a.code() != Code::kNotFound) {
        MEZ_LOG(kWarning) << "aborting " << client_->Describe(object) << ": "
                          << a.ToString();
      }
    }
    Status up = SpooledS3Sink::UploadFile(client_.get(), object, spool,
                                          options_.part_size);
    if (!up.ok()) {
      return Status(up.code(), "finishing " + client_->Describe(object) +
                                   " from " + spool + ": " + up.message());
    }
    unlink(spool.c_str());
    unlink(meta_path.c_str());
    MEZ_LOG(kWarning) << "finished " << client_->Describe(object)
                      << " from the spool a restart left";
  }
  return Status::Ok();
}

Status S3Store::CheckKey(const std::string& key) const {
  if (key.empty()) return InvalidArgument("empty recording key");
  size_t start = 0;
  for (;;) {
    size_t slash = key.find('/', start);
    std::string_view part = std::string_view(key).substr(
        start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") {
      return InvalidArgument("bad recording key '" + key + "'");
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (key.find('\0') != std::string::npos) {
    return InvalidArgument("recording key contains NUL");
  }
  return Status::Ok();
}

std::string S3Store::ObjectKey(const std::string& key) const {
  return options_.prefix + key;
}

std::string S3Store::Describe(const std::string& key) const {
  return client_->Describe(ObjectKey(key));
}

Result<std::unique_ptr<record::ByteSink>> S3Store::Create(
    const std::string& key) {
  MEZ_RETURN_IF_ERROR(CheckKey(key));
  MEZ_ASSIGN_OR_RETURN(bool exists, Exists(key));
  if (exists) {
    return Status(Code::kAlreadyExists, Describe(key) + " already exists");
  }
  if (options_.spool_dir.empty()) {
    return std::unique_ptr<record::ByteSink>(
        new S3Sink(client_.get(), ObjectKey(key), options_.part_size,
                   pool_.get(), options_.max_parts_in_flight));
  }
  std::string object = ObjectKey(key);
  std::string path = options_.spool_dir + "/" + SpoolName(object);
  int fd = open(path.c_str(),
                O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoStatus("create spool " + path, errno);
  // The meta file exists from the start: RecoverSpools needs the key even
  // before a multipart upload was begun.
  Status meta = AtomicWriteFile(path + ".meta", object + "\n\n", 0600);
  if (!meta.ok()) {
    close(fd);
    unlink(path.c_str());
    return meta;
  }
  return std::unique_ptr<record::ByteSink>(
      new SpooledS3Sink(client_.get(), object, options_.part_size, path, fd,
                        pool_.get(), options_.max_parts_in_flight));
}

Result<std::unique_ptr<record::ByteSource>> S3Store::Open(
    const std::string& key) {
  MEZ_RETURN_IF_ERROR(CheckKey(key));
  auto src = std::make_unique<S3Source>(client_.get(), ObjectKey(key),
                                        options_.read_chunk_size);
  Status first = src->Fill();
  if (first.code() == Code::kNotFound) {
    return NotFound("no recording " + Describe(key));
  }
  MEZ_RETURN_IF_ERROR(first);
  if (src->Peek().starts_with("\x1f\x8b")) {
    return record::NewGunzipSource(std::move(src));
  }
  return std::unique_ptr<record::ByteSource>(std::move(src));
}

Result<bool> S3Store::Exists(const std::string& key) {
  MEZ_RETURN_IF_ERROR(CheckKey(key));
  auto head = client_->HeadObject(ObjectKey(key));
  if (head.ok()) return true;
  if (head.status().code() == Code::kNotFound) return false;
  return head.status();
}

Status S3Store::Delete(const std::string& key) {
  MEZ_ASSIGN_OR_RETURN(bool exists, Exists(key));
  if (!exists) return NotFound("no recording " + Describe(key));
  return client_->DeleteObject(ObjectKey(key));
}

}  // namespace mez::store
