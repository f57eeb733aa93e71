#include "libmez/play/local_recording.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <optional>

#include "libmez/play/seek_index_file.h"
#include "libmez/record/seal.h"
#include "libmez/record/sink.h"
#include "libmez/util/file.h"

namespace mez::play {
namespace {

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A recording copied to a temporary file it keeps open; its id is the
// name the user knows it by.
class StreamCopy : public RecordingSource {
 public:
  StreamCopy(int fd, std::unique_ptr<RecordingSource> inner)
      : fd_(fd), inner_(std::move(inner)) {}
  ~StreamCopy() override { close(fd_); }
  Result<std::unique_ptr<record::ByteSource>> Open(uint64_t offset) override {
    return inner_->Open(offset);
  }
  std::optional<uint64_t> size() override { return inner_->size(); }
  SessionMeta meta() override {
    SessionMeta m = inner_->meta();
    m.id = "stdin";
    return m;
  }

 private:
  int fd_;
  std::unique_ptr<RecordingSource> inner_;
};

// A recording file with the seek index mezrecd keeps beside it in local
// storage (`<session>.cast.seek`, seek_index_file.h), used when present:
// a file played straight from the storage directory seeks at once too.
class FileWithStoredIndex : public RecordingSource {
 public:
  FileWithStoredIndex(std::unique_ptr<RecordingSource> inner, std::string path,
                      std::optional<std::string> key)
      : inner_(std::move(inner)),
        path_(std::move(path)),
        key_(std::move(key)) {}
  Result<std::unique_ptr<record::ByteSource>> Open(uint64_t offset) override {
    return inner_->Open(offset);
  }
  std::optional<uint64_t> size() override { return inner_->size(); }
  SessionMeta meta() override { return inner_->meta(); }
  Result<std::optional<std::string>> StoredSeekIndex() override {
    std::string index = path_ + ".seek";
    if (!IsFile(index)) return std::optional<std::string>();
    // A sealed index is bound to its session id: the file's name in the
    // storage layout, `<session>.cast` or `<session>.cast.gz`.
    std::string id = path_.substr(path_.rfind('/') + 1);
    for (const char* ext : {".cast.gz", ".cast"}) {
      if (EndsWith(id, ext)) {
        id.resize(id.size() - std::string(ext).size());
        break;
      }
    }
    MEZ_ASSIGN_OR_RETURN(auto file, record::FileSource::Open(index));
    auto body = DecodeSeekIndexFile(file.get(), key_, id);
    if (!body.ok()) return body.status().WithContext(index);
    return std::optional<std::string>(std::move(body).value());
  }

 private:
  std::unique_ptr<RecordingSource> inner_;
  std::string path_;
  std::optional<std::string> key_;
};

}  // namespace

bool IsLocalRecording(const std::string& target) {
  return IsFile(target) || target.find('/') != std::string::npos ||
         EndsWith(target, ".cast") || EndsWith(target, ".cast.gz");
}

Result<std::unique_ptr<RecordingSource>> OpenLocalRecording(
    const std::string& path, const char* (*getenv_fn)(const char*)) {
  const char* hex = getenv_fn != nullptr
                        ? getenv_fn("MEZITE_RECORDING_ENC_KEY")
                        : std::getenv("MEZITE_RECORDING_ENC_KEY");
  std::optional<std::string> key;
  if (hex != nullptr && *hex != '\0') {
    auto parsed = record::ParseKeyHex(hex);
    if (!parsed.ok()) {
      return FailedPrecondition("MEZITE_RECORDING_ENC_KEY: " +
                                parsed.status().message());
    }
    key = std::move(parsed).value();
  }
  MEZ_ASSIGN_OR_RETURN(auto src, LocalFileSource::Create(path, key));
  return std::unique_ptr<RecordingSource>(
      new FileWithStoredIndex(std::move(src), path, key));
}

}  // namespace mez::play

namespace mez::play {

Result<std::unique_ptr<RecordingSource>> OpenStreamRecording(
    int fd, const char* (*getenv_fn)(const char*)) {
  const char* dir = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") +
      "/msh-play.XXXXXX";
  int copy = mkostemp(tmpl.data(), O_CLOEXEC);
  if (copy < 0) return ErrnoStatus("create a temporary file in " + tmpl, errno);
  unlink(tmpl.c_str());
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(copy);
      return ErrnoStatus("read the recording from stdin", err);
    }
    if (n == 0) break;
    Status s = WriteAll(copy, std::string_view(buf, static_cast<size_t>(n)));
    if (!s.ok()) {
      close(copy);
      return s.WithContext("copy stdin to " + tmpl);
    }
  }
  auto inner =
      OpenLocalRecording("/proc/self/fd/" + std::to_string(copy), getenv_fn);
  if (!inner.ok()) {
    close(copy);
    return Status(inner.status().code(), "stdin: " + inner.status().message());
  }
  return std::unique_ptr<RecordingSource>(
      new StreamCopy(copy, std::move(inner).value()));
}

}  // namespace mez::play
