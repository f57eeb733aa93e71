#include "libmez/play/source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "libmez/record/asciicast_reader.h"
#include "libmez/record/plain_cast.h"

namespace mez::play {
namespace {

// Reads a plain file from an offset with plain read(2) calls.
class FdSource : public record::ByteSource {
 public:
  FdSource(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~FdSource() override { close(fd_); }
  Result<size_t> Read(char* buf, size_t n) override {
    for (;;) {
      ssize_t r = read(fd_, buf, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) return ErrnoStatus("read " + path_, errno);
    }
  }

 private:
  int fd_;
  std::string path_;
};

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The time of the last event of a plain file, read from its tail; nullopt
// when the tail holds no whole event line.
std::optional<int64_t> TailDuration(int fd, uint64_t size) {
  constexpr uint64_t kTail = 64 << 10;
  uint64_t start = size > kTail ? size - kTail : 0;
  std::string tail(size - start, '\0');
  ssize_t n = pread(fd, tail.data(), tail.size(), static_cast<off_t>(start));
  if (n <= 0) return std::nullopt;
  tail.resize(static_cast<size_t>(n));
  // Walk the whole lines from the end; the first may be cut by `start`.
  size_t end = tail.size();
  while (end > 0) {
    size_t begin = tail.rfind('\n', end - 1);
    bool whole = begin != std::string::npos || start == 0;
    begin = begin == std::string::npos ? 0 : begin + 1;
    std::string_view line(tail.data() + begin, end - begin);
    if (!whole) break;
    size_t p = line.find_first_not_of(" \t");
    if (p != std::string_view::npos && line[p] == '[') {
      p = line.find_first_not_of(" \t", p + 1);
      double t = 0;
      if (p != std::string_view::npos) {
        auto [ptr, ec] =
            std::from_chars(line.data() + p, line.data() + line.size(), t);
        if (ec == std::errc() && std::isfinite(t) && t >= 0 && t < 9.2e12) {
          return std::llround(t * 1e6);
        }
      }
    }
    if (begin == 0) break;
    end = begin - 1;
  }
  return std::nullopt;
}

}  // namespace

Status SkipBytes(record::ByteSource* src, uint64_t n) {
  std::unique_ptr<char[]> buf(new char[1 << 16]);
  while (n > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, 1 << 16));
    MEZ_ASSIGN_OR_RETURN(size_t got, src->Read(buf.get(), want));
    if (got == 0) {
      return Status(Code::kOutOfRange, "offset is past the end of the stream");
    }
    n -= got;
  }
  return Status::Ok();
}

Result<std::unique_ptr<LocalFileSource>> LocalFileSource::Create(
    const std::string& path, std::optional<std::string> key) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return FailedPrecondition(path + ": not a regular file");
  }
  unsigned char magic[2] = {0, 0};
  ssize_t got = pread(fd, magic, 2, 0);
  Kind kind = (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) ? Kind::kGzip
                                                                 : Kind::kPlain;
  std::optional<int64_t> duration;
  if (kind == Kind::kPlain) {
    duration = TailDuration(fd, static_cast<uint64_t>(st.st_size));
  }
  close(fd);

  // The header says whether the file is encrypted (and checks the key).
  auto reader = record::AsciicastReader::OpenFile(path, key);
  if (!reader.ok()) return reader.status();
  if ((*reader)->info().encrypted) {
    if (!key.has_value()) {
      return FailedPrecondition(
          path +
          ": recording is encrypted: set MEZITE_RECORDING_ENC_KEY to play it");
    }
    kind = Kind::kEncrypted;
    duration.reset();  // The tail is the final record, not an event.
  }
  std::unique_ptr<LocalFileSource> src(
      new LocalFileSource(path, kind, std::move(key)));
  if (kind == Kind::kPlain) src->size_ = static_cast<uint64_t>(st.st_size);
  src->meta_.id = BaseName(path);
  src->meta_.duration_us = duration;
  return src;
}

std::optional<uint64_t> LocalFileSource::size() { return size_; }

Result<std::unique_ptr<record::ByteSource>> LocalFileSource::Open(
    uint64_t offset) {
  std::unique_ptr<record::ByteSource> stream;
  switch (kind_) {
    case Kind::kPlain: {
      int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return ErrnoStatus("open " + path_, errno);
      if (lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
        int err = errno;
        close(fd);
        return ErrnoStatus("seek " + path_, err);
      }
      (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
      return std::unique_ptr<record::ByteSource>(new FdSource(fd, path_));
    }
    case Kind::kGzip:
    case Kind::kEncrypted: {
      MEZ_ASSIGN_OR_RETURN(auto file, record::OpenRecording(path_));
      MEZ_ASSIGN_OR_RETURN(stream,
                           record::OpenPlainCast(std::move(file), key_));
      break;
    }
  }
  Status s = SkipBytes(stream.get(), offset);
  if (!s.ok()) return s.WithContext(path_);
  return stream;
}

}  // namespace mez::play
