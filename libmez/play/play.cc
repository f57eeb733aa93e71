#include "libmez/play/play.h"

#include <cmath>

#include "libmez/play/output.h"
#include "libmez/play/player.h"

namespace mez::play {

Result<Format> ParseFormat(std::string_view name) {
  if (name == "pty") return Format::kPty;
  if (name == "text") return Format::kText;
  if (name == "plain") return Format::kPlain;
  if (name == "json") return Format::kJson;
  if (name == "cast") return Format::kCast;
  return InvalidArgument("unknown format '" + std::string(name) +
                         "' (expected pty, text, plain, json or cast)");
}

Status Play(RecordingSource* source, const PlayOptions& options) {
  if (!(options.speed > 0) || !std::isfinite(options.speed)) {
    return InvalidArgument("speed must be a number above 0");
  }
  if (options.idle_cap_us.has_value() && *options.idle_cap_us < 0) {
    return InvalidArgument("idle limit must not be negative");
  }
  bool start_at =
      options.start_at_us.has_value() || options.start_at_percent.has_value();
  if (start_at && options.format != Format::kPty) {
    return InvalidArgument("--start-at needs --format=pty");
  }
  if (options.format == Format::kPty) {
    PlayerOptions p;
    p.speed = options.speed;
    p.idle_cap_us = options.idle_cap_us;
    p.clock = options.clock;
    p.start_at_us = options.start_at_us;
    p.start_at_percent = options.start_at_percent;
    p.markers = options.markers;
    return PlayInteractive(source, p, options.in_fd, options.out_fd);
  }
  FdSink sink(options.out_fd);
  std::unique_ptr<Output> out;
  bool times_changed = options.speed != 1.0 || options.idle_cap_us.has_value();
  switch (options.format) {
    case Format::kText:
      out = NewTextOutput(&sink);
      break;
    case Format::kPlain:
      out = NewPlainOutput(&sink);
      break;
    case Format::kJson:
      out = NewJsonOutput(&sink);
      break;
    default:
      out =
          NewCastOutput(&sink, times_changed, options.idle_cap_us.has_value());
      break;
  }
  BatchOptions batch;
  batch.speed = options.speed;
  batch.idle_cap_us = options.idle_cap_us;
  return RunBatch(source, batch, out.get());
}

Status PlayText(RecordingSource* source, int out_fd) {
  FdSink sink(out_fd);
  auto out = NewTextOutput(&sink);
  return RunBatch(source, BatchOptions{}, out.get());
}

}  // namespace mez::play
