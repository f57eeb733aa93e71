// msh play [-s|--speed=N] [--skip-idle|--idle-time-limit=DUR]
//          [--start-at=TIME|N%] [--format=pty|text|plain|json|cast]
//          [--strip] ID|FILE|-
#include "cmd/msh/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddPlayCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* cmd = app->add_subcommand(
      "play",
      "play a recorded session (by id, from mezrecd), a local .cast / "
      ".cast.gz file, or - for stdin");
  auto o = std::make_shared<PlayRecordingOptions>();
  cmd->add_option("-s,--speed", o->speed,
                  "playback speed factor, e.g. 2, 0.5 or 2x (default 1)");
  cmd->add_option("--skip-idle,-i,--idle-time-limit", o->skip_idle,
                  "cap every pause at this long: seconds (2, 0.5) or a "
                  "duration (500ms); off keeps all (default: the "
                  "recording's idle_time_limit)");
  cmd->add_option("--start-at", o->start_at,
                  "start at this time (90, 1m30s) or percentage (50%)");
  cmd->add_option("--format", o->format,
                  "pty (interactive, default), text, plain (text without "
                  "escape codes), json or cast")
      ->check(CLI::IsMember({"pty", "text", "plain", "json", "cast"}));
  cmd->add_flag("--strip", o->strip,
                "with --format=text: drop escape codes (same as plain)");
  cmd->add_option("target", o->target, "session id, recording file or -")
      ->required();
  cmd->footer(
      "Keys (pty): space pause/resume, +/- speed, left/right seek 5s, 0-9 "
      "jump to 0%-90%, Home/End start/end, g go to a time, s status line, "
      "h/j/k/l pan a "
      "recording larger than the terminal, f follow its cursor, ] and [ "
      "next and previous command (sessions with enhanced recording), q "
      "quit. "
      "Encrypted files need MEZITE_RECORDING_ENC_KEY.");
  cmd->callback([o, identity, rc] {
    o->identity = *identity;
    *rc = Report("msh play", PlayRecording(*o));
  });
}

}  // namespace mez::cli
