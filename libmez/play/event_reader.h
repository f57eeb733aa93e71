// Incremental reader of a plain asciicast v2 stream for playback.
//
// Unlike record::AsciicastReader it knows the byte offset of every event
// line (the seek index is built from them), can start at any event line,
// and parses the common event shape `[<number>, "<code>", "<string>"]`
// without a JSON library: the text path plays gigabytes. Any other shape
// goes through the full JSON parser, so what is accepted and the errors
// ("line N: ...", kDataLoss) are those of AsciicastReader, with one
// difference: bytes of a string that are not escapes are passed through
// as they are, without a UTF-8 check.
#ifndef MEZ_PLAY_EVENT_READER_H_
#define MEZ_PLAY_EVENT_READER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "libmez/play/source.h"
#include "libmez/record/asciicast_reader.h"
#include "libmez/record/sink.h"

namespace mez::play {

struct CastHeader {
  record::AsciicastInfo info;
  std::string line;            // The header line as stored, without '\n'.
  uint64_t events_offset = 0;  // Stream offset of the line after it.
  // The header's "idle_time_limit" (seconds, as asciinema writes it), when
  // it is a number above 0: the longest pause a player keeps by default.
  std::optional<int64_t> idle_time_limit_us;
};

struct Event {
  int64_t time_us = 0;  // Recording time.
  std::string code;     // "o", "i", "r", "m", "x", ...
  std::string data;     // Decoded string.
  uint64_t offset = 0;  // Stream offset of the event's line.
  uint64_t line = 0;    // 1-based line number of the event's line.
};

// Where a reader starts: the header (all zero) or an event line.
struct ReadPosition {
  uint64_t offset = 0;
  uint64_t lines_before = 0;  // Lines (header included) before `offset`.
  int64_t last_time_us = 0;   // Time of the event before `offset`.
};

// REQUIRES: external synchronization.
class EventReader {
 public:
  // Reads from `src`, which yields the stream from `at.offset` on.
  // `read_size` is the size of each read from `src`.
  EventReader(std::unique_ptr<record::ByteSource> src, ReadPosition at,
              size_t read_size = 1 << 20);
  ~EventReader();

  // Reads and checks the header line; call once, first, at offset 0.
  Result<CastHeader> ReadHeader();
  // Yields the next event; false at the end. A last line cut in half ends
  // the stream quietly with truncated() set.
  Result<bool> Next(Event* event);

  // The position of the next unread line, to restart a reader there.
  ReadPosition position() const {
    return {offset_ + pos_, line_no_, last_time_us_};
  }
  bool truncated() const { return truncated_; }
  // Where to read on once the stream has grown (a session still being
  // recorded): the line cut in half at the end when there is one,
  // otherwise position().
  ReadPosition resume_position() const {
    if (truncated_) return {partial_at_, line_no_ - 1, last_time_us_};
    return position();
  }
  // Bytes taken from the source so far.
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  // Yields the next line (without '\n'); false at the end.
  Result<bool> NextLine(std::string_view* line, bool* complete);
  Status LineError(const std::string& what) const;
  Result<bool> ParseSlow(std::string_view line, Event* event);

  std::unique_ptr<record::ByteSource> src_;
  size_t read_size_;
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t pos_ = 0;       // Next unread byte in buf_.
  size_t end_ = 0;       // End of valid bytes in buf_.
  uint64_t offset_ = 0;  // Stream offset of buf_[0].
  uint64_t line_no_ = 0;
  uint64_t bytes_read_ = 0;
  int64_t last_time_us_ = 0;
  bool eof_ = false;
  bool truncated_ = false;
  uint64_t partial_at_ = 0;  // Offset of the line cut in half.
  bool done_ = false;
};

// Opens `source` at 0 and reads its header. Refuses an encrypted stream
// (the source must decrypt).
Result<std::unique_ptr<EventReader>> OpenEvents(RecordingSource* source,
                                                CastHeader* header,
                                                size_t read_size = 1 << 20);

// Parses an "r" event's data, "COLSxROWS" (decimal, 1..65535 each, as the
// header allows). False for anything else: such an event is ignored, as by
// asciinema.
bool ParseSizeEvent(std::string_view data, int* rows, int* cols);

namespace internal {

// Parses `[<number>, "<code>", "<string>"]` (JSON whitespace allowed
// around every token) into `time` (seconds), `code` and `data`. Returns
// false for anything else, including escapes that are not valid JSON and
// lone UTF-16 surrogates, leaving the outputs unspecified.
bool ParseEventFast(std::string_view line, double* time, std::string* code,
                    std::string* data);
// Decodes the body of a JSON string starting at `p` (after the opening
// quote) up to the closing quote, appending to `out`. Returns the position
// after the closing quote, or nullptr when the string is not valid JSON.
const char* UnescapeJsonString(const char* p, const char* end,
                               std::string* out);

}  // namespace internal

}  // namespace mez::play

#endif  // MEZ_PLAY_EVENT_READER_H_
