#include "libmez/store/s3_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "libmez/record/gzip.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"
#include "libmez/util/log.h"

namespace mez::store {
namespace {

constexpr size_t kMinPartSize = 5 << 20;

// Buffers one part at a time; see s3_store.h.
class S3Sink : public record::ByteSink {
 public:
  S3Sink(S3Client* client, std::string key, size_t part_size)
      : client_(client), key_(std::move(key)), part_size_(part_size) {}

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
    MEZ_RETURN_IF_ERROR(error_);
    buf_.append(data);
    written_ += data.size();
    while (buf_.size() >= PartSize()) {
      Status s = UploadFront(PartSize());
      if (!s.ok()) return error_ = s;
    }
    return Status::Ok();
  }

  Status Flush() override { return error_; }

  Status Close() override {
    if (closed_) return Status::Ok();
    closed_ = true;
    Status s = error_;
    if (s.ok()) s = Finish();
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
  size_t PartSize() const {
    size_t doublings = std::min<size_t>(parts_.size() / 1000, 4);
    return part_size_ << doublings;
  }

  Status UploadFront(size_t n) {
    if (upload_id_.empty()) {
      MEZ_ASSIGN_OR_RETURN(upload_id_, client_->CreateMultipartUpload(key_));
    }
    int number = static_cast<int>(parts_.size()) + 1;
    if (number > 10'000) {
      return FailedPrecondition(client_->Describe(key_) +
                                " is over the 10,000-part limit of S3");
    }
    MEZ_ASSIGN_OR_RETURN(
        std::string etag,
        client_->UploadPart(key_, upload_id_, number,
                            std::string_view(buf_).substr(0, n)));
    parts_.push_back({number, std::move(etag)});
    buf_.erase(0, n);
    return Status::Ok();
  }

  Status Finish() {
    if (upload_id_.empty()) return client_->PutObject(key_, buf_);
    if (!buf_.empty()) MEZ_RETURN_IF_ERROR(UploadFront(buf_.size()));
    return client_->CompleteMultipartUpload(key_, upload_id_, parts_);
  }

  S3Client* client_;
  std::string key_;
  size_t part_size_;
  std::string buf_;
  std::string upload_id_;
  std::vector<CompletedPart> parts_;
  uint64_t written_ = 0;
  Status error_;
  bool closed_ = false;
};

// Like S3Sink, but every appended byte goes to a local spool file first
// (fsynced by Sync), and parts are read back from it: memory stays small
// however many recordings are open, and a crash loses nothing that was
// appended. `<spool>.meta` names the key and the multipart upload so that
// S3Store::RecoverSpools can finish the object after a restart.
class SpooledS3Sink : public record::ByteSink {
 public:
  SpooledS3Sink(S3Client* client, std::string key, size_t part_size,
                std::string path, int fd)
      : client_(client),
        key_(std::move(key)),
        part_size_(part_size),
        path_(std::move(path)),
        fd_(fd) {}

  ~SpooledS3Sink() override {
    if (!closed_) {
      Status s = Close();
      if (!s.ok()) {
        MEZ_LOG(kError) << "closing " << client_->Describe(key_) << ": "
                        << s.ToString() << " (spool kept: " << path_ << ")";
      }
    }
    if (fd_ >= 0) close(fd_);
  }

  Status Append(std::string_view data) override {
    if (closed_) return FailedPrecondition("append to a closed S3 object");
    MEZ_RETURN_IF_ERROR(error_);
    Status w = WriteAll(fd_, data);
    if (!w.ok()) return error_ = w;
    written_ += data.size();
    while (written_ - uploaded_ >= part_size_) {
      Status s = UploadPart(part_size_);
      if (!s.ok()) return error_ = s;
    }
    return Status::Ok();
  }
  Status Flush() override { return error_; }
  Status Sync() override {
    MEZ_RETURN_IF_ERROR(error_);
    if (fdatasync(fd_) != 0) return ErrnoStatus("fdatasync " + path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    if (closed_) return Status::Ok();
    closed_ = true;
    Status s = error_;
    if (s.ok()) s = Finish();
    if (!s.ok()) return s;  // The spool stays for RecoverSpools.
    unlink(path_.c_str());
    unlink((path_ + ".meta").c_str());
    return Status::Ok();
  }

  uint64_t bytes_written() const override { return written_; }

  // Uploads the whole spool file (a restart's leftover) as `key`.
  static Status UploadFile(S3Client* client, const std::string& key,
                           const std::string& path, size_t part_size) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open " + path, errno);
    struct stat st;
    fstat(fd, &st);
    SpooledS3Sink sink(client, key, part_size, path, fd);
    sink.written_ = static_cast<uint64_t>(st.st_size);
    sink.meta_ = false;
    while (sink.written_ - sink.uploaded_ >= part_size) {
      MEZ_RETURN_IF_ERROR(sink.UploadPart(part_size));
    }
    sink.closed_ = true;
    MEZ_RETURN_IF_ERROR(sink.Finish());
    close(sink.fd_);
    sink.fd_ = -1;
    return Status::Ok();
  }

 private:
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

  Status UploadPart(size_t n) {
    if (upload_id_.empty()) {
      MEZ_ASSIGN_OR_RETURN(upload_id_, client_->CreateMultipartUpload(key_));
      MEZ_RETURN_IF_ERROR(WriteMeta());
    }
    int number = static_cast<int>(parts_.size()) + 1;
    if (number > 10'000) {
      return FailedPrecondition(client_->Describe(key_) +
                                " is over the 10,000-part limit of S3");
    }
    MEZ_ASSIGN_OR_RETURN(std::string data, ReadSpool(uploaded_, n));
    MEZ_ASSIGN_OR_RETURN(std::string etag,
                         client_->UploadPart(key_, upload_id_, number, data));
    parts_.push_back({number, std::move(etag)});
    uploaded_ += n;
    return Status::Ok();
  }

  Status Finish() {
    if (upload_id_.empty()) {
      MEZ_ASSIGN_OR_RETURN(std::string data, ReadSpool(0, written_));
      MEZ_RETURN_IF_ERROR(client_->PutObject(key_, data));
    } else {
      if (written_ > uploaded_) {
        MEZ_RETURN_IF_ERROR(UploadPart(written_ - uploaded_));
      }
      MEZ_RETURN_IF_ERROR(
          client_->CompleteMultipartUpload(key_, upload_id_, parts_));
    }
    // The spool goes only once the object is there with every byte.
    MEZ_ASSIGN_OR_RETURN(S3Object head, client_->HeadObject(key_));
    if (head.size != written_) {
      return DataLoss(client_->Describe(key_) + " has " +
                      std::to_string(head.size) + " bytes, not " +
                      std::to_string(written_));
    }
    return Status::Ok();
  }

  S3Client* client_;
  std::string key_;
  size_t part_size_;
  std::string path_;
  int fd_;
  bool meta_ = true;
  std::string upload_id_;
  std::vector<CompletedPart> parts_;
  uint64_t written_ = 0;
  uint64_t uploaded_ = 0;
  Status error_;
  bool closed_ = false;
};

std::string SpoolName(const std::string& object_key) {
  unsigned char md[32];
  SHA256(reinterpret_cast<const unsigned char*>(object_key.data()),
         object_key.size(), md);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), 16)) +
         ".spool";
}

// Reads [0, size) with Range GETs of `chunk` bytes.
class S3Source : public record::ByteSource {
 public:
  S3Source(S3Client* client, std::string key, uint64_t size, size_t chunk)
      : client_(client), key_(std::move(key)), size_(size), chunk_(chunk) {}

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

  // Fetches the next chunk once the current one is consumed.
  Status Fill() {
    if (pos_ < buf_.size()) return Status::Ok();
    buf_.clear();
    pos_ = 0;
    if (offset_ >= size_) return Status::Ok();
    uint64_t want = std::min<uint64_t>(chunk_, size_ - offset_);
    MEZ_ASSIGN_OR_RETURN(buf_, client_->GetObject(key_, offset_, want));
    if (buf_.empty()) {
      return DataLoss(client_->Describe(key_) + " ended at byte " +
                      std::to_string(offset_) + " of " + std::to_string(size_));
    }
    offset_ += buf_.size();
    return Status::Ok();
  }
  std::string_view Peek() const { return std::string_view(buf_).substr(pos_); }

 private:
  S3Client* client_;
  std::string key_;
  uint64_t size_;
  size_t chunk_;
  uint64_t offset_ = 0;  // Next byte of the object to fetch.
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
        new S3Sink(client_.get(), ObjectKey(key), options_.part_size));
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
      new SpooledS3Sink(client_.get(), object, options_.part_size, path, fd));
}

Result<std::unique_ptr<record::ByteSource>> S3Store::Open(
    const std::string& key) {
  MEZ_RETURN_IF_ERROR(CheckKey(key));
  auto head = client_->HeadObject(ObjectKey(key));
  if (!head.ok()) {
    if (head.status().code() == Code::kNotFound) {
      return NotFound("no recording " + Describe(key));
    }
    return head.status();
  }
  auto src = std::make_unique<S3Source>(client_.get(), ObjectKey(key),
                                        head->size, options_.read_chunk_size);
  MEZ_RETURN_IF_ERROR(src->Fill());
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
