// msh play: binds the flags, picks a local file or mezrecd as the source,
// and hands it to mez::play::Play.
#include "cmd/msh/play.h"

#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <optional>

#include "cmd/msh/remote.h"
#include "libmez/cli/commands.h"
#include "libmez/play/play.h"
#include "libmez/play/source.h"
#include "libmez/record/seal.h"
#include "libmez/util/duration.h"

namespace mez::cli {
namespace {

struct PlayFlags {
  double speed = 1.0;
  std::string skip_idle;
  std::string format = "pty";
  std::string target;
};

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Session ids are plain identifiers: a path or a cast file name is meant
// as a local file even when it does not exist (and is reported as such).
bool IsLocal(const std::string& target) {
  auto ends_with = [&](const std::string& suffix) {
    return target.size() >= suffix.size() &&
           target.compare(target.size() - suffix.size(), suffix.size(),
                          suffix) == 0;
  };
  return IsFile(target) || target.find('/') != std::string::npos ||
         ends_with(".cast") || ends_with(".cast.gz");
}

Result<std::unique_ptr<play::RecordingSource>> OpenSource(
    const std::string& identity, const std::string& target) {
  if (!IsLocal(target)) return OpenRemoteRecording(identity, target);
  std::optional<std::string> key;
  if (const char* hex = std::getenv("MEZITE_RECORDING_ENC_KEY");
      hex != nullptr && *hex != '\0') {
    auto parsed = record::ParseKeyHex(hex);
    if (!parsed.ok()) {
      return FailedPrecondition("MEZITE_RECORDING_ENC_KEY: " +
                                parsed.status().message());
    }
    key = std::move(parsed).value();
  }
  MEZ_ASSIGN_OR_RETURN(auto src, play::LocalFileSource::Create(target, key));
  return std::unique_ptr<play::RecordingSource>(std::move(src));
}

Status RunPlay(const PlayFlags& flags, const std::string& identity) {
  play::PlayOptions options;
  MEZ_ASSIGN_OR_RETURN(options.format, play::ParseFormat(flags.format));
  options.speed = flags.speed;
  if (!flags.skip_idle.empty()) {
    auto cap = ParseDuration(flags.skip_idle);
    if (!cap.ok()) {
      return InvalidArgument("--skip-idle: " + cap.status().message());
    }
    options.idle_cap_us = *cap;
  }
  MEZ_ASSIGN_OR_RETURN(auto source, OpenSource(identity, flags.target));
  Status s = play::Play(source.get(), options);
  // "line 7: invalid JSON" needs the recording's name to be acted on.
  if (s.code() == Code::kDataLoss) return s.WithContext(flags.target);
  return s;
}

}  // namespace

void AddPlayCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* cmd = app->add_subcommand(
      "play",
      "play a recorded session (by id, from mezrecd) or a local "
      ".cast / .cast.gz file");
  auto flags = std::make_shared<PlayFlags>();
  cmd->add_option("--speed", flags->speed, "playback speed factor (default 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--skip-idle", flags->skip_idle,
                  "cap every pause at this long, e.g. 1s or 500ms");
  cmd->add_option("--format", flags->format,
                  "pty (interactive, default), text, json or cast")
      ->check(CLI::IsMember({"pty", "text", "json", "cast"}));
  cmd->add_option("target", flags->target, "session id or recording file")
      ->required();
  cmd->footer(
      "Keys (pty): space pause/resume, +/- speed, left/right seek 5s, q quit. "
      "Encrypted files need MEZITE_RECORDING_ENC_KEY.");
  cmd->callback([flags, identity, rc] {
    *rc = Report("msh play", RunPlay(*flags, *identity));
  });
}

}  // namespace mez::cli
