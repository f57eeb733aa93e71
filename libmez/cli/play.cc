// msh play: a session by id (streamed from mezrecd) or a local recording
// file, played by mez::play::Play.
#include "libmez/play/play.h"

#include <memory>

#include "libmez/cli/commands.h"
#include "libmez/cli/remote_source.h"
#include "libmez/play/local_recording.h"
#include "libmez/util/duration.h"

namespace mez::cli {
namespace {

Result<std::unique_ptr<play::RecordingSource>> OpenSource(
    const std::string& identity, const std::string& target) {
  if (!play::IsLocalRecording(target)) {
    return OpenRemoteRecording(identity, target);
  }
  return play::OpenLocalRecording(target);
}

}  // namespace

Status PlayRecording(const PlayRecordingOptions& o) {
  play::PlayOptions options;
  MEZ_ASSIGN_OR_RETURN(options.format, play::ParseFormat(o.format));
  options.speed = o.speed;
  if (!o.skip_idle.empty()) {
    auto cap = ParseDuration(o.skip_idle);
    if (!cap.ok()) {
      return InvalidArgument("--skip-idle: " + cap.status().message());
    }
    options.idle_cap_us = *cap;
  }
  MEZ_ASSIGN_OR_RETURN(auto source, OpenSource(o.identity, o.target));
  Status s = play::Play(source.get(), options);
  // "line 7: invalid JSON" needs the recording's name to be acted on.
  if (s.code() == Code::kDataLoss) return s.WithContext(o.target);
  return s;
}

}  // namespace mez::cli
