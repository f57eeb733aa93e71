// Fuzzes SpoolReader, which mezrecd runs on spool files uploaded by nodes
// (untrusted): every input must end in frames, a clean end or a kDataLoss
// error, never a crash, and no record length may be trusted before it is
// checked. The input is the whole spool file (magic and version included;
// the seeds in corpus/spool/ start with a valid file header).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "libmez/ingest/proto_convert.h"
#include "libmez/spool/frame_enums.h"
#include "libmez/spool/spool.h"

namespace {

// Protobuf logs every invalid UTF-8 string it parses; that is noise here.
void QuietLog(google::protobuf::LogLevel, const char*, int,
              const std::string&) {}

// One memory file, rewritten for every input: SpoolReader opens a path.
int MemFd() {
  static int fd = memfd_create("spool_fuzz", 0);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(QuietLog);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fd = MemFd();
  if (fd < 0) __builtin_trap();
  if (ftruncate(fd, 0) != 0) __builtin_trap();
  if (size > 0 && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) {
    __builtin_trap();
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto reader = mez::spool::SpoolReader::Open(path);
  if (!reader.ok()) return 0;
  mezite::v1::RecordFrame frame;
  for (int i = 0; i < 100000; ++i) {
    auto more = (*reader)->Next(&frame);
    if (!more.ok() || !*more) break;
    // What the upload path does with each frame.
    if (frame.has_header()) {
      (void)mez::ingest::HeaderFromProto(frame.header());
    } else if (frame.has_chunk()) {
      (void)mez::spool::DirectionFromProto(frame.chunk().direction());
    }
  }
  // The good prefix never extends past the input.
  if ((*reader)->good_bytes() > size + 4) __builtin_trap();
  return 0;
}
