// Non-interactive playback: events are read from a source, given their
// presentation times (timing.h) and handed to an Output as fast as they can
// be read. Formats: docs/formats/playback.md.
#ifndef MEZ_PLAY_OUTPUT_H_
#define MEZ_PLAY_OUTPUT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "libmez/play/event_reader.h"
#include "libmez/play/source.h"
#include "libmez/record/sink.h"

namespace mez::play {

// Receives a recording's events in order. REQUIRES: external
// synchronization.
class Output {
 public:
  virtual ~Output() = default;
  virtual Status Begin(const CastHeader& header) = 0;
  // `presented_us`: when the event is shown, at the chosen speed and idle
  // limit.
  virtual Status Emit(int64_t presented_us, const Event& event) = 0;
  // Flushes everything written.
  virtual Status End() = 0;
};

// The data of "o" events only, without timing (what the screen received).
std::unique_ptr<Output> NewTextOutput(record::ByteSink* out);
// The text of "o" events without escape sequences, for grep: CSI, OSC,
// DCS and other escapes are dropped (also when split across events), "\r\n"
// and a lone "\r" become "\n", other control characters but tab go.
std::unique_ptr<Output> NewPlainOutput(record::ByteSink* out);
// One JSON object per event and line:
// {"time": 1.500000, "code": "o", "data": "..."}.
std::unique_ptr<Output> NewJsonOutput(record::ByteSink* out);
// An asciicast v2 file with the presented times. The header is the
// recording's, without "duration" when the times were changed (by the
// speed, an idle limit given, or the header's own idle_time_limit), and
// without "idle_time_limit" when `limit_given` (the times already follow
// the limit chosen, which a player must not replace with the header's).
std::unique_ptr<Output> NewCastOutput(record::ByteSink* out, bool times_changed,
                                      bool limit_given = false);

struct BatchOptions {
  double speed = 1.0;  // > 0.
  // Longest gap kept, recording time; nullopt: the header's idle_time_limit,
  // kNoIdleLimit: every gap.
  std::optional<int64_t> idle_cap_us;
  size_t read_size = 1 << 20;
};

// Reads the whole recording once, in order, into `out`.
Status RunBatch(RecordingSource* source, const BatchOptions& options,
                Output* out);

// A buffered ByteSink writing to a descriptor it does not own (stdout).
class FdSink : public record::ByteSink {
 public:
  explicit FdSink(int fd, size_t buffer = 1 << 20);
  ~FdSink() override;
  Status Append(std::string_view data) override;
  Status Flush() override;
  Status Close() override { return Flush(); }
  uint64_t bytes_written() const override { return written_; }

 private:
  int fd_;
  size_t cap_;
  std::string buf_;
  uint64_t written_ = 0;
};

}  // namespace mez::play

#endif  // MEZ_PLAY_OUTPUT_H_
