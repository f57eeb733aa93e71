// asciicast v2 writer for shell and exec streams (docs/formats/asciicast.md).
//
// One JSON header line, then one JSON array per event: [time, code, data].
// Times are seconds since the recording start with microsecond precision,
// never decreasing (a smaller time is clamped to the last one). Output of
// every stream is sanitized to UTF-8 incrementally per stream, so a
// multibyte character split across chunks is kept whole. With a key, every
// event's data is sealed (seal.h) and written as base64; the header and the
// times and codes stay readable.
#ifndef MEZ_RECORD_ASCIICAST_WRITER_H_
#define MEZ_RECORD_ASCIICAST_WRITER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "libmez/record/seal.h"
#include "libmez/record/sink.h"
#include "libmez/record/utf8.h"
#include "libmez/util/clock.h"
#include "libmez/util/stream.h"

namespace mez::record {

// The header fields Mezite writes. width and height must be 1..65535.
struct AsciicastHeader {
  int width = 80;
  int height = 24;
  int64_t timestamp = 0;  // Unix seconds of the start; 0 leaves it out.
  std::string command;    // exec command; empty leaves it out.
  std::string title;
  std::string term;                        // Written as env.TERM when set.
  std::map<std::string, std::string> env;  // Other env values.
};

struct AsciicastOptions {
  // Write "i" events for Direction::kIn data; off by default (input may hold
  // passwords typed at prompts with echo off).
  bool record_input = false;
  // Encryption: a kKeySize key and the session id bound into every chunk.
  std::optional<std::string> key;
  std::string session_id;
  // Compression. Without a key the sink is wrapped in a GzipSink (the file
  // is a .cast.gz). With a key, compressing ciphertext would gain nothing,
  // so each event's plaintext is deflated (one raw deflate stream, synced
  // per event) before it is sealed, and the file stays a plain .cast.
  bool gzip = false;
  // The channel had no terminal (no pty-req: `ssh host cmd`): every "\n"
  // of output (stdout, stderr) is written as "\r\n", as a terminal's ONLCR
  // shows it, so players do not draw a staircase. Input is left as is.
  bool translate_newlines = false;
  // For the *Now() methods and the gzip flush interval; defaults to
  // RealClock().
  Clock* clock = nullptr;
};

// ".cast" or ".cast.gz": the file name suffix for a writer's options.
const char* CastFileSuffix(const AsciicastOptions& options);

// The event code of the encrypted final record.
inline constexpr char kFinalEventCode[] = "mezite-final";
// The header object that marks an encrypted recording.
inline constexpr char kEncryptionHeaderKey[] = "mezite_encryption";
inline constexpr char kEncryptionScheme[] = "aes-256-gcm-chunks-v1";
// The header's "compression" value when payloads are deflated before sealing.
inline constexpr char kChunkCompression[] = "deflate-sync";

// REQUIRES: external synchronization.
class AsciicastWriter {
 public:
  // Writes the header line. The clock's current time is time 0.
  static Result<std::unique_ptr<AsciicastWriter>> Create(
      std::unique_ptr<ByteSink> sink, const AsciicastHeader& header,
      AsciicastOptions options = {});
  ~AsciicastWriter();

  // Data of one stream at `time_us` microseconds after the start.
  Status Write(int64_t time_us, Direction stream, std::string_view bytes);
  Status Resize(int64_t time_us, int width, int height);
  Status Exit(int64_t time_us, int exit_status);
  // One event of another code (a single character; Mezite's events files
  // use 'e', docs/formats/enhanced-events.md) whose data is `text`, which
  // must be valid UTF-8 (the caller checked it): written, and sealed, as an
  // output chunk is.
  Status WriteText(int64_t time_us, char code, std::string_view text);
  // The same, timed by the clock.
  Status WriteNow(Direction stream, std::string_view bytes);
  int64_t ElapsedMicros() const;

  // Pushes buffered lines to the sink and flushes it.
  Status Flush();
  // Emits held-back partial characters, the final record when encrypted,
  // and closes the sink. Idempotent.
  Status Close();

  ByteSink* sink() { return sink_.get(); }
  uint64_t events() const { return events_; }
  int64_t last_time_us() const { return last_time_us_; }

 private:
  AsciicastWriter(std::unique_ptr<ByteSink> sink, AsciicastOptions options);
  Status Emit(int64_t time_us, char code, std::string_view text_or_bytes,
              bool is_text);
  int64_t ClampTime(int64_t time_us);
  Status MaybeSpill();
  Status Compress(std::string_view plaintext, std::string* out);

  std::unique_ptr<ByteSink> sink_;
  AsciicastOptions options_;
  std::unique_ptr<ChunkSealer> sealer_;
  struct Deflater;
  std::unique_ptr<Deflater> deflater_;  // When sealing compressed payloads.
  std::string compressed_;
  Utf8Stream streams_json_[3] = {Utf8Stream(Utf8Stream::Mode::kJson),
                                 Utf8Stream(Utf8Stream::Mode::kJson),
                                 Utf8Stream(Utf8Stream::Mode::kJson)};
  Utf8Stream streams_raw_[3] = {Utf8Stream(Utf8Stream::Mode::kRaw),
                                Utf8Stream(Utf8Stream::Mode::kRaw),
                                Utf8Stream(Utf8Stream::Mode::kRaw)};
  std::string line_buf_;
  std::string scratch_;
  std::string translated_;  // translate_newlines' copy of the bytes
  std::string sealed_;
  int64_t start_mono_us_ = 0;
  int64_t last_time_us_ = 0;
  uint64_t events_ = 0;
  bool closed_ = false;
};

// Formats microseconds as seconds with six decimals ("12.000345").
void AppendSeconds(int64_t micros, std::string* out);

}  // namespace mez::record

#endif  // MEZ_RECORD_ASCIICAST_WRITER_H_
