#include "libmez/store/s3_store.h"

#include <algorithm>
#include <cstring>

#include "libmez/record/gzip.h"
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
  return std::unique_ptr<S3Store>(
      new S3Store(std::move(options), std::move(client)));
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
  return std::unique_ptr<record::ByteSink>(
      new S3Sink(client_.get(), ObjectKey(key), options_.part_size));
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
