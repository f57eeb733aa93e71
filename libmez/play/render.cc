#include "libmez/play/render.h"

namespace mez::play {
namespace {

void AppendCup(int row, int col, std::string* out) {
  *out +=
      "\033[" + std::to_string(row + 1) + ";" + std::to_string(col + 1) + "H";
}

bool IsBlank(const Cell& cell) { return cell == Cell{}; }

}  // namespace

std::string Renderer::Draw(const Screen& screen, int top, int left, int rows,
                           int cols) {
  std::string out;
  if (rows < 1 || cols < 1) return out;
  if (!valid_ || rows != rows_ || cols != cols_) {
    out = "\033[0m\033[H\033[2J";
    rows_ = rows;
    cols_ = cols;
    drawn_.assign(static_cast<size_t>(rows) * cols, Cell{});
    valid_ = true;
  }
  out += "\033[?25l";  // No cursor flying about while cells change.
  std::string pen;     // Unknown: the first cell sets it.
  row_.resize(static_cast<size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    int sr = top + r;
    for (int c = 0; c < cols; ++c) {
      int sc = left + c;
      Cell cell;
      if (sr >= 0 && sr < screen.rows() && sc >= 0 && sc < screen.cols()) {
        cell = screen.CellAt(sr, sc);
      }
      // Half a wide character, cut by the region's edges, shows blank.
      bool orphan = cell.text.empty() &&
                    (c == 0 || row_[static_cast<size_t>(c - 1)].width != 2);
      if (orphan || (cell.width == 2 && c + 1 >= cols)) {
        cell.text = " ";
        cell.width = 1;
      }
      row_[static_cast<size_t>(c)] = std::move(cell);
    }
    Cell* old = &drawn_[static_cast<size_t>(r) * cols];
    int first = 0;
    while (first < cols && old[first] == row_[static_cast<size_t>(first)]) {
      ++first;
    }
    if (first == cols) continue;
    int last = cols - 1;
    while (old[last] == row_[static_cast<size_t>(last)]) --last;
    // Start on a whole character: overwriting half of a wide one clears
    // all of it on most terminals.
    if (first > 0 && (old[first].text.empty() ||
                      row_[static_cast<size_t>(first)].text.empty())) {
      --first;
    }
    AppendCup(r, first, &out);
    for (int c = first; c <= last;) {
      const Cell& cell = row_[static_cast<size_t>(c)];
      if (cell.sgr != pen) {
        out += cell.sgr;
        pen = cell.sgr;
      }
      out += cell.text;
      c += cell.width;
    }
    for (int c = 0; c < cols; ++c) old[c] = row_[static_cast<size_t>(c)];
  }
  out += "\033[0m";
  int crow = 0;
  int ccol = 0;
  screen.cursor(&crow, &ccol);
  crow -= top;
  ccol -= left;
  if (screen.cursor_visible() && crow >= 0 && crow < rows && ccol >= 0 &&
      ccol < cols) {
    AppendCup(crow, ccol, &out);
    out += "\033[?25h";
  }
  return out;
}

int Renderer::RowsUsed() const {
  for (int r = rows_ - 1; r >= 0; --r) {
    for (int c = 0; c < cols_; ++c) {
      if (!IsBlank(drawn_[static_cast<size_t>(r) * cols_ + c])) return r + 1;
    }
  }
  return 0;
}

}  // namespace mez::play
