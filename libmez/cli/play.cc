// msh play: a session by id (streamed from mezrecd), a local recording
// file or stdin, played by mez::play::Play.
#include "libmez/play/play.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "libmez/cli/commands.h"
#include "libmez/cli/remote_source.h"
#include "libmez/play/flags.h"
#include "libmez/play/local_recording.h"
#include "libmez/play/markers.h"

namespace mez::cli {
namespace {

Result<std::unique_ptr<play::RecordingSource>> OpenSource(
    const PlayRecordingOptions& o) {
  if (o.target == "-") return play::OpenStreamRecording(o.stdin_fd);
  if (!play::IsLocalRecording(o.target)) {
    return OpenRemoteRecording(o.identity, o.target);
  }
  return play::OpenLocalRecording(o.target);
}

// The commands typed in the session, from its enhanced recording events
// (none when it has none). Playback goes on without them when they cannot
// be read, saying why.
std::vector<play::Marker> CommandMarkers(play::RecordingSource* source,
                                         const std::string& target) {
  auto lines = source->EventLines();
  if (!lines.ok()) {
    if (lines.status().code() != Code::kNotFound) {
      std::fprintf(stderr, "msh play: %s: no command markers: %s\n",
                   target.c_str(), lines.status().ToString().c_str());
    }
    return {};
  }
  bool cut = false;
  auto markers = play::CommandMarkersFromLines(
      lines->get(), play::kMaxMarkerEventBytes, &cut);
  if (!markers.ok()) {
    std::fprintf(stderr, "msh play: %s: no command markers: %s\n",
                 target.c_str(), markers.status().ToString().c_str());
    return {};
  }
  if (cut) {
    std::fprintf(
        stderr,
        "msh play: %s: command markers only for the first %llu MiB "
        "of the session's events\n",
        target.c_str(),
        static_cast<unsigned long long>(play::kMaxMarkerEventBytes >> 20));
  }
  return std::move(markers).value();
}

// "--speed: '2y' is not a speed ...".
Status Flag(const char* name, const Status& s) {
  return InvalidArgument(std::string(name) + ": " + s.message());
}

}  // namespace

Status PlayRecording(const PlayRecordingOptions& o) {
  play::PlayOptions options;
  std::string format = o.format;
  if (o.strip) {
    if (format != "text" && format != "plain") {
      return InvalidArgument("--strip goes with --format=text");
    }
    format = "plain";
  }
  MEZ_ASSIGN_OR_RETURN(options.format, play::ParseFormat(format));
  auto speed = play::ParseSpeed(o.speed);
  if (!speed.ok()) return Flag("--speed", speed.status());
  options.speed = *speed;
  if (!o.skip_idle.empty()) {
    auto cap = play::ParseIdleLimit(o.skip_idle);
    if (!cap.ok()) return Flag("--skip-idle", cap.status());
    options.idle_cap_us = *cap;
  }
  if (!o.start_at.empty()) {
    auto at = play::ParseStartAt(o.start_at);
    if (!at.ok()) return Flag("--start-at", at.status());
    options.start_at_us = at->time_us;
    options.start_at_percent = at->percent;
  }
  // The recording on stdin: keys come from the terminal itself.
  int tty = -1;
  if (o.target == "-" && options.format == play::Format::kPty) {
    tty = open("/dev/tty", O_RDONLY | O_CLOEXEC);
    options.in_fd = tty;
  }
  auto source = OpenSource(o);
  if (source.ok() && options.format == play::Format::kPty) {
    options.markers = CommandMarkers(source->get(), o.target);
  }
  Status s = source.ok() ? play::Play(source->get(), options) : source.status();
  if (s.ok() && options.format != play::Format::kPty &&
      (*source)->meta().live) {
    // The batch forms read what has arrived; say that it is not the end.
    std::fprintf(stderr,
                 "msh play: session %s is still being recorded: this is what "
                 "has arrived so far\n",
                 o.target.c_str());
  }
  if (tty >= 0) close(tty);
  // "line 7: invalid JSON" needs the recording's name to be acted on.
  if (s.code() == Code::kDataLoss) {
    return s.WithContext(o.target == "-" ? "stdin" : o.target);
  }
  return s;
}

}  // namespace mez::cli
