// Where a player gets a recording from. A RecordingSource hands out plain
// asciicast v2 byte streams (no gzip, no encryption: those are undone by the
// source) that can be reopened at any event-line offset, which is what lets
// the player seek without replaying from the start.
// Format and behaviour: docs/formats/playback.md.
#ifndef MEZ_PLAY_SOURCE_H_
#define MEZ_PLAY_SOURCE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "libmez/record/sink.h"
#include "libmez/util/status.h"

namespace mez::play {

// What the player shows about a recording. Any field may be empty.
struct SessionMeta {
  std::string id;    // Session id, or the file name of a local recording.
  std::string user;  // Who ran the session.
  std::string node;  // Where it ran.
  // Recording time of the last event, in microseconds, when the source
  // knows it without reading the whole stream.
  std::optional<int64_t> duration_us;
  // The session is still being recorded: the stream may grow after its
  // end (reopen at the offset reached to read on).
  bool live = false;
};

// REQUIRES: external synchronization. Streams returned by Open are
// independent of each other and may outlive neither the source.
class RecordingSource {
 public:
  virtual ~RecordingSource() = default;
  // A plain asciicast v2 byte stream, starting `offset` bytes into it.
  // Offset 0 is the header line; any other offset must be the start of an
  // event line that an earlier stream of this source yielded.
  virtual Result<std::unique_ptr<record::ByteSource>> Open(uint64_t offset) = 0;
  // Length of the plain stream, when known up front.
  virtual std::optional<uint64_t> size() = 0;
  virtual SessionMeta meta() = 0;
  // The body of the recording's stored seek index (seek_index_file.h),
  // nullopt when it has none. Unlike the rest, thread-safe: the player
  // calls it from its index thread while it plays.
  virtual Result<std::optional<std::string>> StoredSeekIndex() {
    return std::optional<std::string>();
  }
  // The session's enhanced recording events, one JSON object per line
  // with its "offset_us" (docs/formats/enhanced-events.md, "Stored form",
  // Reading), for the player's command markers; kNotFound when it has
  // none.
  virtual Result<std::unique_ptr<record::ByteSource>> EventLines() {
    return Status(Code::kNotFound, "no enhanced recording events");
  }
};

// A recording file on the local disk: plain `.cast`, gzip `.cast.gz` (by its
// magic bytes, whatever the name), or an encrypted `.cast`.
//
// Reopening at an offset is a seek for a plain file; a gzip or encrypted
// file is decoded again from its start and the bytes before `offset`
// dropped (they are not replayed, but they are decompressed or decrypted).
// An encrypted file is decrypted with `key` (kKeySize bytes) and served as
// a plain stream: header without the encryption block, then the opened
// events; an integrity failure ends the stream with the reader's error.
class LocalFileSource : public RecordingSource {
 public:
  // Checks that `path` is readable and, for an encrypted file, that a key
  // was given and is the right one. Errors name the path.
  static Result<std::unique_ptr<LocalFileSource>> Create(
      const std::string& path, std::optional<std::string> key = std::nullopt);

  Result<std::unique_ptr<record::ByteSource>> Open(uint64_t offset) override;
  std::optional<uint64_t> size() override;
  SessionMeta meta() override { return meta_; }

  enum class Kind { kPlain, kGzip, kEncrypted };
  Kind kind() const { return kind_; }

 private:
  LocalFileSource(std::string path, Kind kind, std::optional<std::string> key)
      : path_(std::move(path)), kind_(kind), key_(std::move(key)) {}

  std::string path_;
  Kind kind_;
  std::optional<std::string> key_;
  std::optional<uint64_t> size_;
  SessionMeta meta_;
};

// Reads and drops `n` bytes of `src`; reaching the end first is kOutOfRange.
Status SkipBytes(record::ByteSource* src, uint64_t n);

}  // namespace mez::play

#endif  // MEZ_PLAY_SOURCE_H_
