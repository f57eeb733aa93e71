#include "libmez/record/sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "libmez/record/gzip.h"
#include "libmez/util/file.h"

namespace mez::record {
namespace {

// Small, and allocated on first use: a server holds one per live session.
constexpr size_t kFileBuffer = 16 * 1024;

}  // namespace

FileSink::FileSink(int fd, std::string path, uint64_t size)
    : fd_(fd),
      path_(std::move(path)),
      written_(size),
      older_(size),
      newest_(size) {}

FileSink::~FileSink() {
  if (fd_ >= 0) (void)Close();
}

Result<std::unique_ptr<FileSink>> FileSink::Create(const std::string& path,
                                                   mode_t mode) {
  int fd = open(path.c_str(),
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus("create " + path, errno);
  return std::unique_ptr<FileSink>(new FileSink(fd, path, 0));
}

Result<std::unique_ptr<FileSink>> FileSink::OpenAppend(
    const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus("stat " + path, err);
  }
  return std::unique_ptr<FileSink>(
      new FileSink(fd, path, static_cast<uint64_t>(st.st_size)));
}

Status FileSink::Append(std::string_view data) {
  if (fd_ < 0) return FailedPrecondition("append to closed file " + path_);
  if (buf_.size() + data.size() <= kFileBuffer) {
    buf_.append(data);
    return Status::Ok();
  }
  MEZ_RETURN_IF_ERROR(Flush());
  if (data.size() >= kFileBuffer) {
    MEZ_RETURN_IF_ERROR(WriteAll(fd_, data).WithContext(path_));
    written_ += data.size();
    return WriteBehind();
  }
  buf_.append(data);
  return Status::Ok();
}

Status FileSink::Flush() {
  if (fd_ < 0) return FailedPrecondition("flush of closed file " + path_);
  if (buf_.empty()) return Status::Ok();
  Status s = WriteAll(fd_, buf_).WithContext(path_);
  written_ += buf_.size();
  buf_.clear();
  if (!s.ok()) return s;
  return WriteBehind();
}

Status FileSink::WriteBehind() {
  if (written_ - newest_ < kWriteBehind) return Status::Ok();
  auto failed = [this](const char* what) {
    // Other errors (a file system without writeback, say) only mean the
    // pages stay cached, as they would without write-behind.
    if (errno != EIO && errno != ENOSPC) return Status::Ok();
    return ErrnoStatus(std::string(what) + " " + path_, errno);
  };
  if (sync_file_range(fd_, static_cast<off_t>(newest_),
                      static_cast<off_t>(written_ - newest_),
                      SYNC_FILE_RANGE_WRITE) != 0) {
    MEZ_RETURN_IF_ERROR(failed("write-behind"));
  }
  if (newest_ > older_) {
    auto off = static_cast<off_t>(older_);
    auto len = static_cast<off_t>(newest_ - older_);
    if (sync_file_range(fd_, off, len,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
      MEZ_RETURN_IF_ERROR(failed("write-behind"));
    }
    (void)posix_fadvise(fd_, off, len, POSIX_FADV_DONTNEED);
  }
  older_ = newest_;
  newest_ = written_;
  return Status::Ok();
}

Status FileSink::Sync() {
  MEZ_RETURN_IF_ERROR(Flush());
  if (fdatasync(fd_) != 0) return ErrnoStatus("fsync " + path_, errno);
  return Status::Ok();
}

Status FileSink::Close() {
  if (fd_ < 0) return Status::Ok();
  Status s = Flush();
  if (close(fd_) != 0 && s.ok()) s = ErrnoStatus("close " + path_, errno);
  fd_ = -1;
  return s;
}

Status StringSink::Append(std::string_view data) {
  if (closed_) return FailedPrecondition("append to closed sink");
  data_.append(data);
  return Status::Ok();
}

Status StringSink::Close() {
  closed_ = true;
  return Status::Ok();
}

Result<std::unique_ptr<FileSource>> FileSource::Open(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  return std::unique_ptr<FileSource>(new FileSource(fd, path));
}

FileSource::~FileSource() { close(fd_); }

Result<size_t> FileSource::Read(char* buf, size_t n) {
  for (;;) {
    ssize_t r = read(fd_, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) return ErrnoStatus("read " + path_, errno);
  }
}

Result<size_t> StringSource::Read(char* buf, size_t n) {
  size_t k = std::min(n, data_.size() - pos_);
  std::memcpy(buf, data_.data() + pos_, k);
  pos_ += k;
  return k;
}

namespace {

// Peeks at the first bytes of a source to choose plain or gzip.
class PeekedSource : public ByteSource {
 public:
  PeekedSource(std::string head, std::unique_ptr<ByteSource> rest)
      : head_(std::move(head)), rest_(std::move(rest)) {}
  Result<size_t> Read(char* buf, size_t n) override {
    if (pos_ < head_.size()) {
      size_t k = std::min(n, head_.size() - pos_);
      std::memcpy(buf, head_.data() + pos_, k);
      pos_ += k;
      return k;
    }
    return rest_->Read(buf, n);
  }

 private:
  std::string head_;
  size_t pos_ = 0;
  std::unique_ptr<ByteSource> rest_;
};

Result<std::unique_ptr<ByteSource>> Detect(std::unique_ptr<ByteSource> src) {
  std::string head(2, '\0');
  size_t got = 0;
  while (got < head.size()) {
    MEZ_ASSIGN_OR_RETURN(size_t n, src->Read(head.data() + got, 2 - got));
    if (n == 0) break;
    got += n;
  }
  head.resize(got);
  bool gz = got == 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
            static_cast<unsigned char>(head[1]) == 0x8b;
  std::unique_ptr<ByteSource> peeked =
      std::make_unique<PeekedSource>(std::move(head), std::move(src));
  if (gz) return NewGunzipSource(std::move(peeked));
  return peeked;
}

}  // namespace

Result<std::unique_ptr<ByteSource>> OpenRecording(const std::string& path) {
  MEZ_ASSIGN_OR_RETURN(auto file, FileSource::Open(path));
  return Detect(std::move(file));
}

std::unique_ptr<ByteSource> OpenRecordingBytes(std::string data) {
  auto r = Detect(std::make_unique<StringSource>(std::move(data)));
  MEZ_CHECK(r.ok());  // A StringSource cannot fail to read.
  return std::move(r).value();
}

Result<bool> LineReader::Next(std::string* line, bool* complete,
                              size_t max_line) {
  for (;;) {
    size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      line->assign(buf_, pos_, nl - pos_);
      pos_ = nl + 1;
      *complete = true;
      ++line_no_;
      return true;
    }
    if (buf_.size() - pos_ > max_line) {
      return DataLoss("line " + std::to_string(line_no_ + 1) + " is over " +
                      std::to_string(max_line) + " bytes long");
    }
    if (eof_) {
      if (pos_ == buf_.size()) return false;
      line->assign(buf_, pos_, std::string::npos);
      pos_ = buf_.size();
      *complete = false;
      ++line_no_;
      return true;
    }
    if (pos_ > 0) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    char chunk[16 * 1024];
    MEZ_ASSIGN_OR_RETURN(size_t n, src_->Read(chunk, sizeof(chunk)));
    buf_.append(chunk, n);
    if (n == 0) eof_ = true;
  }
}

}  // namespace mez::record
