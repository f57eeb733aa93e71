// The node-mode spool file (docs/formats/spool.md): the frames a live
// Record stream would have carried, kept on the node's disk until mezrecd
// confirms a complete copy. The node writes it while the session runs; the
// server reads it back (as untrusted input) when an upload is complete.
//
// Layout: the 8-byte magic "MEZSPOOL", a version byte (1) and three zero
// bytes; then records of a little-endian uint32 length N (1..kMaxSpoolRecord)
// followed by N bytes of a serialized mezite.v1.RecordFrame, the first of
// which is the header. A zero length marks a clean end; nothing follows
// it. A file cut short by a crash ends in a torn record, which readers
// drop.
#ifndef MEZ_SPOOL_SPOOL_H_
#define MEZ_SPOOL_SPOOL_H_

#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/spool/limits.h"
#include "libmez/util/status.h"
#include "mezite/v1/recording.pb.h"

namespace mez::spool {

inline constexpr char kSpoolMagic[8] = {'M', 'E', 'Z', 'S', 'P', 'O', 'O', 'L'};
inline constexpr size_t kSpoolHeaderBytes = 12;
// Largest record: a chunk of kMaxChunkBytes plus its framing, with room to
// spare.
inline constexpr uint32_t kMaxSpoolRecord = kMaxChunkBytes + 4096;

// Appends records to a new spool file. Not thread-safe.
class SpoolWriter {
 public:
  // Creates `path` (O_EXCL, mode 0600) and writes the file header and the
  // header frame.
  static Result<std::unique_ptr<SpoolWriter>> Create(
      const std::string& path, const mezite::v1::RecordFrame& header);
  // Closes the file (without an end marker if End was not called).
  ~SpoolWriter();
  SpoolWriter(const SpoolWriter&) = delete;
  SpoolWriter& operator=(const SpoolWriter&) = delete;

  Status Append(const mezite::v1::RecordFrame& frame);
  // Appends every frame of `frames` in order, with as few writes as it
  // can; on failure none of them is kept (the file ends at the record
  // before). A batch frame cannot be spooled: append its frames.
  Status AppendAll(const std::vector<const mezite::v1::RecordFrame*>& frames);
  // The bytes Append adds for `frame` (its record: length and frame).
  static uint64_t RecordBytes(const mezite::v1::RecordFrame& frame) {
    return 4 + frame.ByteSizeLong();
  }
  // Writes the end marker and fsyncs. Further Appends fail.
  Status End();
  // Bytes written so far (the file's size).
  uint64_t size() const { return size_; }

 private:
  SpoolWriter(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  // Writes `pieces` in order (whole records, or the file header), cutting
  // the file back to its last whole record when a write fails.
  Status WritePieces(std::vector<std::string_view> pieces);
  // The pieces of `frame`'s record, in `pieces`; strings they point into
  // are kept in `keep`.
  Status RecordPieces(const mezite::v1::RecordFrame& frame,
                      std::vector<std::string_view>* pieces,
                      std::deque<std::string>* keep);

  int fd_;
  std::string path_;
  uint64_t size_ = 0;
  bool ended_ = false;
};

// The bytes of the spool record of a chunk frame holding `chunk` that come
// before the chunk's data: the record's length, then the frame serialized
// as protobuf does (fields in number order, zero values left out) up to
// the data, its last field. Head + data is the whole record, so a chunk is
// written without copying its data into a second buffer.
std::string ChunkRecordHead(const mezite::v1::RecordChunk& chunk);

// Reads a spool file front to back. Not thread-safe.
class SpoolReader {
 public:
  // kNotFound / kIoError for the file; kDataLoss when it is not a spool.
  static Result<std::unique_ptr<SpoolReader>> Open(const std::string& path);
  ~SpoolReader();
  SpoolReader(const SpoolReader&) = delete;
  SpoolReader& operator=(const SpoolReader&) = delete;

  // The next frame: true with *frame set, or false at the end (clean end
  // marker, end of file, or a torn last record). kDataLoss for a record
  // that is too long, does not parse, follows the end marker, or a first
  // frame that is not a header.
  Result<bool> Next(mezite::v1::RecordFrame* frame);
  // After Next returned false: whether the file ended with the marker.
  bool clean_end() const { return clean_end_; }
  // Offset just past the last whole record read (the end marker included).
  uint64_t good_bytes() const { return good_bytes_; }

 private:
  explicit SpoolReader(std::FILE* f) : file_(f) {}

  std::FILE* file_;
  uint64_t good_bytes_ = kSpoolHeaderBytes;
  uint64_t records_ = 0;
  bool clean_end_ = false;
  bool done_ = false;
  std::string buf_;
};

// Makes a spool cut short by a crash uploadable: drops a torn last record
// (truncating the file to its last whole record). Returns the new size.
Result<uint64_t> TrimSpool(const std::string& path);

// SHA-256 of a whole file, lowercase hex.
Result<std::string> FileSha256(const std::string& path);

}  // namespace mez::spool

#endif  // MEZ_SPOOL_SPOOL_H_
