// msh play's engine: plays a recording from any RecordingSource in one of
// five forms. Behaviour and formats: docs/formats/playback.md.
#ifndef MEZ_PLAY_PLAY_H_
#define MEZ_PLAY_PLAY_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "libmez/play/player.h"  // Marker
#include "libmez/play/source.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::play {

enum class Format {
  kPty,    // Real time on the terminal, with keys and a status line.
  kText,   // The "o" data only, no timing.
  kPlain,  // kText without escape sequences, for grep.
  kJson,   // One JSON object per event and line, with presented times.
  kCast,   // An asciicast v2 file with presented times.
};

// "pty", "text", "plain", "json" or "cast".
Result<Format> ParseFormat(std::string_view name);

struct PlayOptions {
  Format format = Format::kPty;
  double speed = 1.0;  // > 0.
  // Longest gap kept, recording time; nullopt: the header's idle_time_limit,
  // kNoIdleLimit: every gap.
  std::optional<int64_t> idle_cap_us;
  // Where pty playback starts (a percentage wins over a time).
  std::optional<int64_t> start_at_us;
  std::optional<double> start_at_percent;
  // Commands on the timeline (pty): ']' and '[' jump between them.
  std::vector<Marker> markers;
  int in_fd = 0;  // Keys (pty).
  int out_fd = 1;
  Clock* clock = nullptr;  // RealClock() when null.
};

// Plays `source` to options.out_fd. Errors are one line, naming the
// recording line at fault when there is one.
Status Play(RecordingSource* source, const PlayOptions& options);

// The text form to `out_fd`: what the benchmark times.
Status PlayText(RecordingSource* source, int out_fd);

}  // namespace mez::play

#endif  // MEZ_PLAY_PLAY_H_
