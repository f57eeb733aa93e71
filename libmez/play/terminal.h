// The real terminal the interactive player draws on: capabilities from
// terminfo, raw keyboard input, and restoring the terminal on every way out
// (normal return, error, and fatal signals).
#ifndef MEZ_PLAY_TERMINAL_H_
#define MEZ_PLAY_TERMINAL_H_

#include <memory>
#include <string>

#include "libmez/util/status.h"

namespace mez::play {

// The few control strings the player needs, from terminfo for $TERM when
// it knows the terminal, otherwise the xterm/ANSI ones.
class TermCaps {
 public:
  // Reads terminfo for $TERM (setupterm on `fd`); ANSI when that fails.
  static TermCaps Load(int fd);
  static TermCaps Ansi();

  // Cursor to `row`, `col` (0-based).
  std::string Cup(int row, int col) const;
  // Scroll region rows `top`..`bottom` (0-based, inclusive). Terminals
  // move the cursor home when it is set.
  std::string Csr(int top, int bottom) const;

  std::string save_cursor;
  std::string restore_cursor;
  std::string clear_eol;
  std::string reverse;
  std::string attrs_off;
  std::string cursor_visible;
  std::string cursor_up;
  bool from_terminfo = false;

 private:
  std::string cup_;
  std::string csr_;
};

// Terminal size of `fd`; false when it has none.
bool GetWindowSize(int fd, int* rows, int* cols);
// Whether the locale's character set is UTF-8 (from LC_ALL, LC_CTYPE,
// LANG), without touching the process locale.
bool LocaleIsUtf8();

// While alive: `in_fd` (when a terminal) is in raw mode, and SIGINT,
// SIGTERM, SIGHUP and SIGQUIT restore the terminal and then kill the
// process as they would have. At most one per process.
class TerminalGuard {
 public:
  // `in_fd` < 0: keyboard untouched (input is not a terminal).
  static Result<std::unique_ptr<TerminalGuard>> Enter(int in_fd, int out_fd);
  ~TerminalGuard();

  // What to write to `out_fd` on the way out; `alt` when the alternate
  // screen is on. Signal-safe to change while signals may arrive.
  void SetRestoreText(const std::string& normal, const std::string& alt);
  void SetAltscreen(bool on);
  // True once after each SIGWINCH.
  bool TakeResized();
  // Writes the restore text, leaves raw mode, puts the old signal
  // handlers back. Idempotent; the destructor calls it.
  Status Restore();

 private:
  TerminalGuard() = default;
  bool active_ = false;
};

}  // namespace mez::play

#endif  // MEZ_PLAY_TERMINAL_H_
