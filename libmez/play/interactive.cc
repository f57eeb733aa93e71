// PlayInteractive: the Player wired to the real terminal (raw keys, window
// size changes, restoring the terminal on every way out).
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "libmez/play/output.h"
#include "libmez/play/player.h"
#include "libmez/play/terminal.h"
#include "libmez/util/file.h"

namespace mez::play {

Status PlayInteractive(RecordingSource* source, PlayerOptions options,
                       int in_fd, int out_fd) {
  if (!isatty(out_fd)) {
    return FailedPrecondition(
        "--format=pty needs a terminal on stdout (use --format=text, json or "
        "cast)");
  }
  int rows = 24;
  int cols = 80;
  (void)GetWindowSize(out_fd, &rows, &cols);
  options.term_rows = rows;
  options.term_cols = cols;
  options.caps = TermCaps::Load(out_fd);
  options.utf8 = LocaleIsUtf8();
  options.index_in_background = true;
  FdSink out(out_fd, 1 << 16);
  MEZ_ASSIGN_OR_RETURN(auto player, Player::Create(source, options, &out));

  // The banner goes out before raw mode, so "\n" still means a new line.
  MEZ_RETURN_IF_ERROR(WriteAll(out_fd, Banner(source->meta()) + "\n"));
  bool keys = in_fd >= 0 && isatty(in_fd);
  MEZ_ASSIGN_OR_RETURN(auto guard,
                       TerminalGuard::Enter(keys ? in_fd : -1, out_fd));
  std::string restore = player->RestoreText();
  guard->SetRestoreText(restore, restore);
  MEZ_RETURN_IF_ERROR(out.Append(player->SetupText()));
  if (options.start_at_percent.has_value()) {
    MEZ_RETURN_IF_ERROR(player->SeekToPercent(*options.start_at_percent));
  } else if (options.start_at_us.has_value()) {
    MEZ_RETURN_IF_ERROR(player->SeekTo(*options.start_at_us));
  }

  Status status;
  for (;;) {
    auto wait = player->Tick();
    if (!wait.ok()) {
      status = wait.status();
      break;
    }
    if (std::string r = player->RestoreText(); r != restore) {
      restore = r;
      guard->SetRestoreText(restore, restore);
    }
    if (*wait < 0) break;
    if (guard->TakeResized() && GetWindowSize(out_fd, &rows, &cols)) {
      player->Resize(rows, cols);
      continue;
    }
    struct pollfd pfd {};
    pfd.fd = keys ? in_fd : -1;
    pfd.events = POLLIN;
    int timeout_ms = static_cast<int>((*wait + 999) / 1000);
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0 && errno != EINTR) {
      status = ErrnoStatus("poll", errno);
      break;
    }
    if (n > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buf[256];
      ssize_t got = read(in_fd, buf, sizeof(buf));
      if (got <= 0) {
        if (got < 0 && errno == EINTR) continue;
        keys = false;  // End of input: play on without keys.
        continue;
      }
      status =
          player->HandleInput(std::string_view(buf, static_cast<size_t>(got)));
      if (!status.ok()) break;
    }
  }
  (void)out.Flush();
  guard->SetRestoreText(player->RestoreText(), player->RestoreText());
  Status restored = guard->Restore();
  if (!status.ok()) return status;
  return restored;
}

}  // namespace mez::play
