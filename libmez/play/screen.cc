#include "libmez/play/screen.h"

#include <vterm.h>

#include <algorithm>
#include <cstring>

#include "libmez/play/rep_guard.h"

namespace mez::play {
namespace {

// The pen a cell is drawn with, comparable.
struct Pen {
  bool bold = false;
  int underline = 0;
  bool italic = false;
  bool blink = false;
  bool reverse = false;
  bool strike = false;
  VTermColor fg{};
  VTermColor bg{};
};

bool SameColor(const VTermColor& a, const VTermColor& b) {
  bool a_def = VTERM_COLOR_IS_DEFAULT_FG(&a) || VTERM_COLOR_IS_DEFAULT_BG(&a);
  bool b_def = VTERM_COLOR_IS_DEFAULT_FG(&b) || VTERM_COLOR_IS_DEFAULT_BG(&b);
  if (a_def || b_def) return a_def == b_def;
  if (VTERM_COLOR_IS_INDEXED(&a) != VTERM_COLOR_IS_INDEXED(&b)) return false;
  if (VTERM_COLOR_IS_INDEXED(&a)) return a.indexed.idx == b.indexed.idx;
  return a.rgb.red == b.rgb.red && a.rgb.green == b.rgb.green &&
         a.rgb.blue == b.rgb.blue;
}

bool SamePen(const Pen& a, const Pen& b) {
  return a.bold == b.bold && a.underline == b.underline &&
         a.italic == b.italic && a.blink == b.blink && a.reverse == b.reverse &&
         a.strike == b.strike && SameColor(a.fg, b.fg) && SameColor(a.bg, b.bg);
}

bool IsDefault(const VTermColor& c) {
  return VTERM_COLOR_IS_DEFAULT_FG(&c) || VTERM_COLOR_IS_DEFAULT_BG(&c);
}

void AppendColor(const VTermColor& c, bool fg, std::string* out) {
  if (IsDefault(c)) return;
  if (VTERM_COLOR_IS_INDEXED(&c)) {
    int idx = c.indexed.idx;
    if (idx < 8) {
      *out += ";" + std::to_string((fg ? 30 : 40) + idx);
    } else if (idx < 16) {
      *out += ";" + std::to_string((fg ? 90 : 100) + idx - 8);
    } else {
      *out += (fg ? ";38;5;" : ";48;5;") + std::to_string(idx);
    }
    return;
  }
  *out += (fg ? ";38;2;" : ";48;2;") + std::to_string(c.rgb.red) + ";" +
          std::to_string(c.rgb.green) + ";" + std::to_string(c.rgb.blue);
}

// A full SGR (reset first) selecting `pen`.
void AppendSgr(const Pen& pen, std::string* out) {
  *out += "\033[0";
  if (pen.bold) *out += ";1";
  if (pen.italic) *out += ";3";
  if (pen.underline == VTERM_UNDERLINE_DOUBLE) {
    *out += ";21";
  } else if (pen.underline != 0) {
    *out += ";4";
  }
  if (pen.blink) *out += ";5";
  if (pen.reverse) *out += ";7";
  if (pen.strike) *out += ";9";
  AppendColor(pen.fg, true, out);
  AppendColor(pen.bg, false, out);
  *out += "m";
}

Pen CellPen(const VTermScreenCell& cell) {
  Pen p;
  p.bold = cell.attrs.bold;
  p.underline = cell.attrs.underline;
  p.italic = cell.attrs.italic;
  p.blink = cell.attrs.blink;
  p.reverse = cell.attrs.reverse;
  p.strike = cell.attrs.strike;
  p.fg = cell.fg;
  p.bg = cell.bg;
  return p;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0x10FFFF) {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A blank drawn with the default pen looks like a cleared cell.
bool IsBlank(const VTermScreenCell& cell) {
  return (cell.chars[0] == 0 || cell.chars[0] == ' ') && !cell.attrs.reverse &&
         !cell.attrs.underline && !cell.attrs.strike && IsDefault(cell.bg);
}

void DiscardOutput(const char*, size_t, void*) {}

// Brings a size within 1..kMaxScreen* and the cell budget (rows give way).
void ClampSize(int* rows, int* cols) {
  *cols = std::clamp(*cols, 1, kMaxScreenCols);
  *rows = std::clamp(*rows, 1, kMaxScreenRows);
  int64_t max_rows = kMaxScreenCells / *cols;
  if (*rows > max_rows) *rows = static_cast<int>(max_rows);
}

int OnTermProp(VTermProp prop, VTermValue* val, void* user);

const VTermScreenCallbacks kCallbacks = {
    nullptr,     // damage
    nullptr,     // moverect
    nullptr,     // movecursor
    OnTermProp,  // settermprop
    nullptr,     // bell
    nullptr,     // resize
    nullptr,     // sb_pushline
    nullptr,     // sb_popline
};

}  // namespace

struct Screen::Impl {
  VTerm* vt = nullptr;
  VTermScreen* screen = nullptr;
  VTermState* state = nullptr;
  bool altscreen = false;
  bool cursor_visible = true;
  RepGuard rep;  // See rep_guard.h: every byte goes through it.
};

namespace {
int OnTermProp(VTermProp prop, VTermValue* val, void* user) {
  auto* impl = static_cast<Screen::Impl*>(user);
  if (prop == VTERM_PROP_ALTSCREEN) impl->altscreen = val->boolean != 0;
  if (prop == VTERM_PROP_CURSORVISIBLE)
    impl->cursor_visible = val->boolean != 0;
  return 1;
}
}  // namespace

Status CheckScreenSize(int cols, int rows) {
  if (cols >= 1 && rows >= 1 && cols <= kMaxScreenCols &&
      rows <= kMaxScreenRows &&
      static_cast<int64_t>(cols) * rows <= kMaxScreenCells) {
    return Status::Ok();
  }
  return DataLoss("terminal size " + std::to_string(cols) + "x" +
                  std::to_string(rows) +
                  " is beyond what the player emulates (at most " +
                  std::to_string(kMaxScreenCols) + " columns, " +
                  std::to_string(kMaxScreenRows) + " rows and " +
                  std::to_string(kMaxScreenCells) +
                  " cells; no real terminal is larger): the recording is "
                  "damaged or forged; --format=text shows its output "
                  "without emulating a screen");
}

Screen::Screen(int rows, int cols) : impl_(new Impl) {
  ClampSize(&rows, &cols);
  rows_ = rows;
  cols_ = cols;
  impl_->vt = vterm_new(rows, cols);
  vterm_set_utf8(impl_->vt, 1);
  vterm_output_set_callback(impl_->vt, DiscardOutput, nullptr);
  impl_->screen = vterm_obtain_screen(impl_->vt);
  impl_->state = vterm_obtain_state(impl_->vt);
  vterm_screen_set_callbacks(impl_->screen, &kCallbacks, impl_);
  vterm_screen_enable_altscreen(impl_->screen, 1);
  vterm_screen_reset(impl_->screen, 1);
}

Screen::~Screen() {
  vterm_free(impl_->vt);
  delete impl_;
}

bool Screen::altscreen() const { return impl_->altscreen; }
bool Screen::cursor_visible() const { return impl_->cursor_visible; }

void Screen::Feed(std::string_view bytes) {
  if (bytes.empty()) return;
  VTerm* vt = impl_->vt;
  VTermState* state = impl_->state;
  impl_->rep.Feed(
      bytes,
      [vt](std::string_view b) { vterm_input_write(vt, b.data(), b.size()); },
      [state] {
        VTermPos pos;
        vterm_state_get_cursorpos(state, &pos);
        return pos.col;
      },
      cols_);
}

void Screen::Resize(int rows, int cols) {
  if (rows < 1 || cols < 1) return;
  ClampSize(&rows, &cols);
  if (rows == rows_ && cols == cols_) return;
  vterm_set_size(impl_->vt, rows, cols);
  rows_ = rows;
  cols_ = cols;
}

void Screen::cursor(int* row, int* col) const {
  VTermPos pos;
  vterm_state_get_cursorpos(impl_->state, &pos);
  *row = pos.row;
  *col = pos.col;
}

std::string Screen::Snapshot(int max_rows, int max_cols) const {
  int rows = max_rows > 0 && max_rows < rows_ ? max_rows : rows_;
  int cols = max_cols > 0 && max_cols < cols_ ? max_cols : cols_;
  std::string out = "\033[0m";
  if (impl_->altscreen) out += "\033[?1049h";
  out += "\033[H\033[2J";
  Pen current;
  VTermScreenCell cell;
  for (int r = 0; r < rows; ++r) {
    // The last column worth drawing: cleared cells need nothing.
    int last = -1;
    for (int c = 0; c < cols; ++c) {
      vterm_screen_get_cell(impl_->screen, VTermPos{r, c}, &cell);
      if (cell.chars[0] != static_cast<uint32_t>(-1) && !IsBlank(cell))
        last = c;
    }
    if (last < 0) continue;
    out += "\033[" + std::to_string(r + 1) + ";1H";
    for (int c = 0; c <= last;) {
      vterm_screen_get_cell(impl_->screen, VTermPos{r, c}, &cell);
      int width = cell.width > 0 ? cell.width : 1;
      if (c + width > cols) break;
      Pen pen = CellPen(cell);
      if (!SamePen(pen, current)) {
        AppendSgr(pen, &out);
        current = pen;
      }
      if (cell.chars[0] == 0) {
        out.push_back(' ');
      } else {
        for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL && cell.chars[i] != 0;
             ++i) {
          AppendUtf8(cell.chars[i], &out);
        }
      }
      c += width;
    }
  }
  // The pen the recording writes with next.
  Pen pen;
  VTermValue v;
  vterm_state_get_penattr(impl_->state, VTERM_ATTR_BOLD, &v);
  pen.bold = v.boolean;
  vterm_state_get_penattr(impl_->state, VTERM_ATTR_UNDERLINE, &v);
  pen.underline = v.number;
  vterm_state_get_penattr(impl_->state, VTERM_ATTR_ITALIC, &v);
  pen.italic = v.boolean;
  vterm_state_get_penattr(impl_->state, VTERM_ATTR_BLINK, &v);
  pen.blink = v.boolean;
  vterm_state_get_penattr(impl_->state, VTERM_ATTR_REVERSE, &v);
  pen.reverse = v.boolean;
  vterm_state_get_penattr(impl_->state, VTERM_ATTR_STRIKE, &v);
  pen.strike = v.boolean;
  vterm_state_get_penattr(impl_->state, VTERM_ATTR_FOREGROUND, &v);
  pen.fg = v.color;
  vterm_state_get_penattr(impl_->state, VTERM_ATTR_BACKGROUND, &v);
  pen.bg = v.color;
  AppendSgr(pen, &out);
  int crow = 0;
  int ccol = 0;
  cursor(&crow, &ccol);
  if (crow >= rows) crow = rows - 1;
  if (ccol >= cols) ccol = cols - 1;
  out +=
      "\033[" + std::to_string(crow + 1) + ";" + std::to_string(ccol + 1) + "H";
  out += impl_->cursor_visible ? "\033[?25h" : "\033[?25l";
  return out;
}

void Screen::Load(std::string_view snapshot, int rows, int cols) {
  impl_->altscreen = false;
  impl_->cursor_visible = true;
  vterm_screen_reset(impl_->screen, 1);
  impl_->rep.Reset();
  Resize(rows, cols);
  Feed(snapshot);
}

Cell Screen::CellAt(int row, int col) const {
  VTermScreenCell cell;
  vterm_screen_get_cell(impl_->screen, VTermPos{row, col}, &cell);
  Cell out;
  if (cell.chars[0] == static_cast<uint32_t>(-1)) {
    out.text.clear();  // The right half of a wide character.
  } else if (cell.chars[0] != 0) {
    out.text.clear();
    for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL && cell.chars[i] != 0; ++i) {
      AppendUtf8(cell.chars[i], &out.text);
    }
  }
  out.width = cell.width == 2 ? 2 : 1;
  Pen pen = CellPen(cell);
  bool plain = !pen.bold && pen.underline == 0 && !pen.italic && !pen.blink &&
               !pen.reverse && !pen.strike && IsDefault(pen.fg) &&
               IsDefault(pen.bg);
  if (!plain) {
    out.sgr.clear();
    AppendSgr(pen, &out.sgr);
  }
  return out;
}

std::string Screen::RowText(int row) const {
  std::string out;
  VTermScreenCell cell;
  for (int c = 0; c < cols_;) {
    vterm_screen_get_cell(impl_->screen, VTermPos{row, c}, &cell);
    if (cell.chars[0] == 0) {
      out.push_back(' ');
    } else {
      for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL && cell.chars[i] != 0; ++i) {
        AppendUtf8(cell.chars[i], &out);
      }
    }
    c += cell.width > 0 ? cell.width : 1;
  }
  size_t end = out.find_last_not_of(' ');
  out.resize(end == std::string::npos ? 0 : end + 1);
  return out;
}

}  // namespace mez::play
