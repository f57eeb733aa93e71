// Draws the emulated screen (the recording's own size) into a region of the
// viewer's real terminal. What reaches the terminal is always a picture of
// the emulator, never the recording's own bytes: a recording larger than
// the terminal is cut to a viewport instead of wrapping, nothing it does
// (scroll regions, the alternate screen, keyboard modes) acts on the real
// terminal, and after a seek the picture is the emulator's, with nothing of
// the old one left. Behaviour: docs/formats/playback.md.
#ifndef MEZ_PLAY_RENDER_H_
#define MEZ_PLAY_RENDER_H_

#include <string>
#include <vector>

#include "libmez/play/screen.h"

namespace mez::play {

// Remembers what it drew so that each Draw sends only the cells that
// changed. REQUIRES: external synchronization; nothing else may write to
// the region it draws (the player's status line is below it).
class Renderer {
 public:
  // The next Draw clears the whole terminal and draws every cell: after a
  // seek, a resize, or anything else that may have disturbed it.
  void Invalidate() { valid_ = false; }

  // Escape sequences that make terminal rows 0..rows-1 and columns
  // 0..cols-1 show `screen`'s cells from row `top`, column `left` on;
  // cells beyond the screen show blank. The terminal's cursor ends where
  // the recording's is when that is visible and inside the region, hidden
  // otherwise, and its pen is reset. Starts with "\033[0m\033[H\033[2J" when
  // invalidated or the region changed size.
  std::string Draw(const Screen& screen, int top, int left, int rows, int cols);

  // Terminal rows from the top down to the last one showing anything:
  // where the shell's prompt goes on the way out.
  int RowsUsed() const;

 private:
  bool valid_ = false;
  int rows_ = 0;
  int cols_ = 0;
  std::vector<Cell> drawn_;  // rows_ x cols_, what the terminal shows.
  std::vector<Cell> row_;    // Scratch: the row being drawn.
};

}  // namespace mez::play

#endif  // MEZ_PLAY_RENDER_H_
