// A terminal emulator (libvterm) fed with a recording's output, so that the
// player knows what the screen shows at any point and can redraw it on the
// real terminal after a seek. A snapshot is that screen written as escape
// sequences (clear, cursor moves, SGR, text) for an xterm-like terminal.
//
// What a snapshot keeps: every cell's characters, colours and attributes
// (bold, underline, italic, blink, reverse, strike), the cursor position
// and visibility, the current pen, and whether the alternate screen is on.
// What it loses: the main screen's contents while the alternate one is
// shown, scroll regions, tab stops, character sets and saved cursors.
#ifndef MEZ_PLAY_SCREEN_H_
#define MEZ_PLAY_SCREEN_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "libmez/util/status.h"

namespace mez::play {

// The largest screen the player emulates. libvterm keeps two buffers (main
// and alternate) of about 36 bytes a cell, so memory follows the cell count:
// at 2^20 cells `msh play` peaks at about 200 MB with its two screens (the
// player's and the seek index's; 4096x4096 took 1.2 GB with one,
// 65535x65535 crashed it). Real terminals stay far below: an 8K display
// (7680x4320) with a tiny 4x8-pixel font is 1920x540 (1,036,800 cells); a
// 4K one with a readable 8x16 font is 480x135. A recording that claims more
// (the header allows 65535x65535) is broken or hostile.
inline constexpr int kMaxScreenCols = 4096;
inline constexpr int kMaxScreenRows = 4096;
inline constexpr int64_t kMaxScreenCells = int64_t{1} << 20;

// One cell of the emulated screen as a terminal would draw it.
struct Cell {
  // UTF-8 characters; " " for a blank cell, empty for the right half of a
  // wide character (drawn by the cell to its left).
  std::string text = " ";
  int width = 1;  // Columns `text` takes: 1, or 2 for a wide character.
  // A full SGR (reset first) selecting the cell's colours and attributes,
  // "\033[0m" for the default pen.
  std::string sgr = "\033[0m";
  bool operator==(const Cell&) const = default;
};

// Ok when a `cols` x `rows` screen is within the limits above; otherwise
// kDataLoss naming the size and the limits.
Status CheckScreenSize(int cols, int rows);

// REQUIRES: external synchronization.
class Screen {
 public:
  // Sizes beyond the limits (or below 1) are clamped into them, so that no
  // input makes the emulator allocate more; callers refuse such sizes with
  // CheckScreenSize first.
  Screen(int rows, int cols);
  ~Screen();
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  // Interprets terminal output (UTF-8).
  void Feed(std::string_view bytes);
  // Resizes the emulated terminal (a recording's "r" event); clamped as in
  // the constructor.
  void Resize(int rows, int cols);
  int rows() const { return rows_; }
  int cols() const { return cols_; }

  // Escape sequences that redraw this screen on a terminal, clipped to
  // `max_rows` x `max_cols` (0: no clip). Starts with a full clear.
  std::string Snapshot(int max_rows = 0, int max_cols = 0) const;
  // Replaces the whole state with that of a snapshot taken from a screen of
  // `rows` x `cols`.
  void Load(std::string_view snapshot, int rows, int cols);

  // The cell at `row`, `col` (0-based, within the screen).
  Cell CellAt(int row, int col) const;

  // The text of one row, trailing blanks removed (tests, debugging).
  std::string RowText(int row) const;
  bool altscreen() const;
  bool cursor_visible() const;
  void cursor(int* row, int* col) const;

  struct Impl;  // libvterm's state; opaque to users.

 private:
  Impl* impl_;
  int rows_;
  int cols_;
};

}  // namespace mez::play

#endif  // MEZ_PLAY_SCREEN_H_
