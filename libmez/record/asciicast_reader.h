// asciicast v2 reader (docs/formats/asciicast.md). Reads files written by
// AsciicastWriter and by other v2 writers, plain or gzip, encrypted or not.
//
// A last line cut in half (a recording whose writer died mid-line) ends the
// stream quietly with truncated() set; any other malformed line is a
// kDataLoss error naming the line number. For encrypted recordings with a
// key, each event is opened and the final record checked (seal.h): an
// integrity failure is returned by Next() as kDataLoss naming the failure.
// Without a key, events come back with their sealed base64 data as stored.
#ifndef MEZ_RECORD_ASCIICAST_READER_H_
#define MEZ_RECORD_ASCIICAST_READER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "libmez/record/seal.h"
#include "libmez/record/sink.h"

namespace mez::record {

struct AsciicastInfo {
  int width = 0;
  int height = 0;
  int64_t timestamp = 0;
  std::string command;
  std::string title;
  std::map<std::string, std::string> env;
  bool encrypted = false;
  std::string key_id;              // When encrypted.
  std::string session_id;          // When encrypted.
  bool chunk_compression = false;  // Payloads deflated before sealing.
};

struct AsciicastEvent {
  int64_t time_us = 0;
  std::string code;  // "o", "i", "r", "m", "x", ...
  std::string data;  // Decoded JSON string (opened plaintext if encrypted).
};

class AsciicastReader {
 public:
  // Reads and checks the header line. `key`, when given, opens an
  // encrypted recording (and is ignored for a plain one).
  static Result<std::unique_ptr<AsciicastReader>> Open(
      std::unique_ptr<ByteSource> src,
      std::optional<std::string> key = std::nullopt);
  static Result<std::unique_ptr<AsciicastReader>> OpenFile(
      const std::string& path, std::optional<std::string> key = std::nullopt);

  ~AsciicastReader();

  const AsciicastInfo& info() const { return info_; }
  // Yields the next event; false at the end. An error is final: every
  // later call returns it again, so that no event after a damaged,
  // tampered or reordered one is ever yielded (a compressed recording
  // would decode to garbage past a skipped chunk anyway).
  Result<bool> Next(AsciicastEvent* event);
  // The file ended in the middle of a line (the partial line is dropped).
  bool truncated() const { return truncated_; }
  // For encrypted recordings opened with a key: what the check found.
  Integrity integrity() const {
    return opener_ ? opener_->integrity() : Integrity::kOk;
  }

 private:
  explicit AsciicastReader(std::unique_ptr<ByteSource> src);
  Result<std::string> Inflate(std::string_view compressed);
  Result<bool> NextUnchecked(AsciicastEvent* event);
  Status LineError(const std::string& what) const;
  Result<bool> ParseEvent(const std::string& line, AsciicastEvent* event);

  std::unique_ptr<ByteSource> src_;
  LineReader lines_;
  AsciicastInfo info_;
  std::unique_ptr<ChunkOpener> opener_;
  struct Inflater;
  std::unique_ptr<Inflater> inflater_;
  int64_t last_time_us_ = 0;
  bool truncated_ = false;
  bool done_ = false;
  bool final_seen_ = false;
  Status failed_;  // The first error Next returned.
};

}  // namespace mez::record

#endif  // MEZ_RECORD_ASCIICAST_READER_H_
