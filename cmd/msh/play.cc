// msh play [--speed=N] [--skip-idle=DUR] [--format=pty|text|json|cast]
//          ID|FILE
#include "cmd/msh/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddPlayCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* cmd = app->add_subcommand(
      "play",
      "play a recorded session (by id, from mezrecd) or a local "
      ".cast / .cast.gz file");
  auto o = std::make_shared<PlayRecordingOptions>();
  cmd->add_option("--speed", o->speed, "playback speed factor (default 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--skip-idle", o->skip_idle,
                  "cap every pause at this long, e.g. 1s or 500ms");
  cmd->add_option("--format", o->format,
                  "pty (interactive, default), text, json or cast")
      ->check(CLI::IsMember({"pty", "text", "json", "cast"}));
  cmd->add_option("target", o->target, "session id or recording file")
      ->required();
  cmd->footer(
      "Keys (pty): space pause/resume, +/- speed, left/right seek 5s, q quit. "
      "Encrypted files need MEZITE_RECORDING_ENC_KEY.");
  cmd->callback([o, identity, rc] {
    o->identity = *identity;
    *rc = Report("msh play", PlayRecording(*o));
  });
}

}  // namespace mez::cli
