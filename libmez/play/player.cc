#include "libmez/play/player.h"

#include <algorithm>
#include <cstdio>

#include "libmez/play/seek_index_file.h"
#include "libmez/record/utf8.h"

namespace mez::play {
namespace {

constexpr int64_t kSecond = 1'000'000;

std::string FormatClock(int64_t us) {
  int64_t s = std::max<int64_t>(us, 0) / kSecond;
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld",
                  static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%02lld:%02lld",
                  static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

std::string FormatSpeed(double speed) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", speed);
  return buf;
}

// Columns `s` takes, counting each UTF-8 character as one.
size_t Columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Cuts `s` to `cols` characters.
std::string Clip(const std::string& s, size_t cols) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (n == cols) return s.substr(0, i);
      ++n;
    }
  }
  return s;
}

// Off only when the recording's rows fill the terminal exactly: then the
// status line would hide its last row. A recording that does not fit
// shows it, for the notice saying so.
bool StatusLineByDefault(const Screen& screen, int term_rows, int term_cols) {
  return !(screen.rows() == term_rows && screen.cols() <= term_cols);
}

// A marker's label as the status line may show it: valid UTF-8 without
// control characters (C0, DEL, C1), which would act on the viewer's
// terminal; each becomes a space.
std::string StatusLabel(const std::string& label) {
  std::string text = record::SanitizeUtf8(label);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) {
      out += ' ';
    } else if (c == 0xC2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) < 0xA0) {
      out += ' ';  // U+0080..U+009F
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

std::string Banner(const SessionMeta& meta) {
  std::string s = "Playing session " + meta.id;
  std::string details;
  if (!meta.user.empty()) details += "user: " + meta.user;
  if (!meta.node.empty()) {
    if (!details.empty()) details += ", ";
    details += "host: " + meta.node;
  }
  if (!details.empty()) s += " (" + details + ")";
  if (meta.live) s += ", live: still being recorded";
  return s;
}

Player::Player(RecordingSource* source, PlayerOptions options,
               record::ByteSink* out)
    : source_(source),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      out_(out),
      timeline_(options_.idle_cap_us),
      speed_(options_.speed) {}

Player::~Player() = default;  // index_ joins its thread.

Result<std::unique_ptr<Player>> Player::Create(RecordingSource* source,
                                               PlayerOptions options,
                                               record::ByteSink* out) {
  if (!(options.speed > 0)) return InvalidArgument("speed must be above 0");
  std::unique_ptr<Player> p(new Player(source, std::move(options), out));
  MEZ_ASSIGN_OR_RETURN(p->reader_,
                       OpenEvents(source, &p->header_, p->options_.read_size));
  p->options_.idle_cap_us = EffectiveIdleLimit(p->options_.idle_cap_us,
                                               p->header_.idle_time_limit_us);
  p->timeline_ = Timeline(p->options_.idle_cap_us);
  // Checked before the emulator allocates anything for it.
  Status size = CheckScreenSize(p->header_.info.width, p->header_.info.height);
  if (!size.ok()) return size.WithContext("line 1");
  p->screen_ =
      std::make_unique<Screen>(p->header_.info.height, p->header_.info.width);
  Checkpoint start;
  start.at = p->reader_->position();
  start.rows = p->screen_->rows();
  start.cols = p->screen_->cols();
  start.snapshot = p->screen_->Snapshot();
  SeekIndexOptions index;
  index.interval_us = p->options_.checkpoint_interval_us;
  index.interval_bytes = p->options_.checkpoint_bytes;
  index.budget = p->options_.checkpoint_budget;
  p->start_ = start;
  p->index_ = std::make_unique<SeekIndex>(index, std::move(start));
  if (p->options_.index_in_background) {
    CastHeader again;
    auto reader = OpenEvents(source, &again, p->options_.read_size);
    // Without it seeks still work, reading as far as they go.
    if (reader.ok()) {
      SeekIndex::StoredLoader stored;
      if (p->options_.use_stored_index) {
        stored = [source] { return source->StoredSeekIndex(); };
      }
      p->index_->IndexInBackground(std::move(reader).value(), p->header_,
                                   p->options_.idle_cap_us, std::move(stored));
    }
  }
  std::vector<Marker>& markers = p->options_.markers;
  std::stable_sort(
      markers.begin(), markers.end(),
      [](const Marker& a, const Marker& b) { return a.time_us < b.time_us; });
  p->marker_pos_.resize(markers.size());
  for (size_t i = 0; i < markers.size(); ++i) {
    markers[i].time_us = std::max<int64_t>(markers[i].time_us, 0);
    markers[i].label = StatusLabel(markers[i].label);
    // Without an idle limit the timeline is the recording's time.
    if (!p->options_.idle_cap_us.has_value() || markers[i].time_us == 0) {
      p->marker_pos_[i] = markers[i].time_us;
    }
  }
  p->Reanchor(p->clock_->MonotonicMicros(), 0);
  const PlayerOptions& o = p->options_;
  if (o.status_line.has_value()) {
    p->status_on_ = *o.status_line;
    p->status_chosen_ = true;
  } else {
    p->status_on_ = StatusLineByDefault(*p->screen_, o.term_rows, o.term_cols);
  }
  return p;
}

void Player::Reanchor(int64_t now, int64_t position) {
  anchor_wall_us_ = now;
  anchor_pos_us_ = position;
}

int64_t Player::position_us() const {
  if (paused_ || finished_) return anchor_pos_us_;
  int64_t elapsed = clock_->MonotonicMicros() - anchor_wall_us_;
  return anchor_pos_us_ +
         static_cast<int64_t>(static_cast<double>(elapsed) * speed_);
}

std::optional<int64_t> Player::duration_us() const {
  if (end_us_.has_value()) return end_us_;
  if (source_->meta().live) return std::nullopt;  // It grows yet.
  if (auto end = index_->end_us()) return end;
  if (!options_.idle_cap_us.has_value()) return source_->meta().duration_us;
  return std::nullopt;
}

Result<bool> Player::Peek() {
  if (have_next_) return true;
  if (eof_) return false;
  if (waiting_live_) return false;
  MEZ_ASSIGN_OR_RETURN(bool got, reader_->Next(&next_));
  if (!got) {
    if (source_->meta().live) {
      // More may come: Tick asks again from here.
      waiting_live_ = true;
      next_live_poll_us_ = clock_->MonotonicMicros() + options_.live_poll_us;
      return false;
    }
    eof_ = true;
    end_us_ = timeline_.pos_us();
    // Markers after the last event stand at the end.
    PlaceMarkers(timeline_.last_time_us(), *end_us_, INT64_MAX, *end_us_);
    return false;
  }
  int64_t before_time = timeline_.last_time_us();
  int64_t before_pos = timeline_.pos_us();
  next_timeline_us_ = timeline_.Place(next_.time_us);
  PlaceMarkers(before_time, before_pos, next_.time_us, next_timeline_us_);
  index_->Offer(next_, next_timeline_us_, before_time, before_pos, *screen_);
  have_next_ = true;
  return true;
}

Status Player::Apply(size_t* bytes) {
  have_next_ = false;
  applied_us_ = next_timeline_us_;
  if (next_.code == "o") {
    frame_dirty_ = true;
    screen_->Feed(next_.data);
    *bytes += next_.data.size();
  } else if (next_.code == "r") {
    int rows = 0;
    int cols = 0;
    if (ParseSizeEvent(next_.data, &rows, &cols)) {
      Status size = CheckScreenSize(cols, rows);
      if (!size.ok()) {
        return size.WithContext("line " + std::to_string(next_.line));
      }
      screen_->Resize(rows, cols);
      frame_dirty_ = true;
    }
  }
  return Status::Ok();
}

Status Player::EmitDue(int64_t pos, bool* busy) {
  *busy = false;
  if (paused_ || finished_) return Status::Ok();
  size_t burst = 0;
  for (;;) {
    if (burst >= options_.max_burst) {
      *busy = true;
      break;
    }
    MEZ_ASSIGN_OR_RETURN(bool have, Peek());
    if (!have) {
      if (!waiting_live_) finished_ = true;
      break;
    }
    if (next_timeline_us_ > pos) break;
    MEZ_RETURN_IF_ERROR(Apply(&burst));
  }
  if (burst > 0) status_dirty_ = true;
  return Status::Ok();
}

Result<int64_t> Player::Tick() {
  if (finished_) return -1;
  int64_t now = clock_->MonotonicMicros();
  if (std::string w = index_->TakeWarning(); !w.empty() && notice_.empty()) {
    notice_ = w;  // Shown on the status line until the next key.
    status_dirty_ = true;
  }
  if (waiting_live_ && now >= next_live_poll_us_) {
    // Read on from where the stream ended; a stream that ends again
    // while the session is live waits another interval.
    ReadPosition at = reader_->resume_position();
    MEZ_ASSIGN_OR_RETURN(auto stream, source_->Open(at.offset));
    reader_ = std::make_unique<EventReader>(std::move(stream), at,
                                            options_.read_size);
    waiting_live_ = false;
  }
  int64_t pos = position_us();
  bool busy = false;
  // What came before an event that stops playback is shown first.
  Status emitted = EmitDue(pos, &busy);
  MEZ_RETURN_IF_ERROR(DrawFrame());
  MEZ_RETURN_IF_ERROR(emitted);
  if (finished_) {
    anchor_pos_us_ = end_us_.value_or(applied_us_);
    status_dirty_ = true;
    MEZ_RETURN_IF_ERROR(DrawStatus(now));
    MEZ_RETURN_IF_ERROR(out_->Flush());
    return -1;
  }
  std::string text = StatusText();
  if (text != last_status_) status_dirty_ = true;
  int64_t wait = kSecond;
  if (status_dirty_) {
    int64_t due = last_status_draw_us_ < 0
                      ? now
                      : last_status_draw_us_ + options_.status_min_interval_us;
    if (text != last_status_ || due <= now) {
      MEZ_RETURN_IF_ERROR(DrawStatus(now));
    } else {
      wait = std::min(wait, due - now);
    }
  }
  MEZ_RETURN_IF_ERROR(out_->Flush());
  if (busy) return 0;
  if (!paused_) {
    if (have_next_) {
      double until = static_cast<double>(next_timeline_us_ - pos) / speed_;
      wait = std::min(wait, static_cast<int64_t>(until) + 1);
    }
    if (waiting_live_) wait = std::min(wait, next_live_poll_us_ - now);
    // The status line shows whole seconds.
    double tick = static_cast<double>(kSecond - pos % kSecond) / speed_;
    wait = std::min(wait, static_cast<int64_t>(tick) + 1);
  }
  return std::max<int64_t>(wait, 0);
}

std::string Player::StatusText() const {
  const char* glyph = paused_ ? (options_.utf8 ? "\u2016" : "||")
                              : (options_.utf8 ? "\u25b6" : ">");
  std::optional<int64_t> d = duration_us();
  int64_t pos = position_us();
  if (d.has_value()) pos = std::min(pos, *d);
  std::string s = std::string(glyph) + " " + FormatClock(pos) + " / " +
                  (d.has_value() ? FormatClock(*d) : "--:--") + "  " +
                  (options_.utf8 ? "\u00d7" : "x") + FormatSpeed(speed_);
  if (source_->meta().live) s += options_.utf8 ? "  \u25cf live" : "  (live)";
  // The recording's size, unless it is the terminal's (counting the status
  // line's row in or out); what is shown of it when it does not fit.
  int rows = screen_->rows();
  int cols = screen_->cols();
  std::string size = std::to_string(cols) + "x" + std::to_string(rows);
  if (cols > options_.term_cols || rows > ViewRows()) {
    s += "  [" + size + " > " + std::to_string(options_.term_cols) + "x" +
         std::to_string(ViewRows()) + ": h/j/k/l pan]";
  } else if (cols != options_.term_cols ||
             (rows != options_.term_rows && rows != options_.term_rows - 1)) {
    s += "  [" + size + "]";
  }
  if (!options_.markers.empty()) {
    // "#3/12 make test": the command being played and how many there are.
    int i = CurrentMarker();
    s += "  #" + std::to_string(i + 1) + "/" +
         std::to_string(options_.markers.size());
    if (i >= 0) s += " " + options_.markers[i].label;
  }
  return s;
}

Status Player::DrawStatus(int64_t now) {
  std::string text = StatusText();
  last_status_ = text;
  last_status_draw_us_ = now;
  status_dirty_ = false;
  if (!status_on_ || options_.term_rows < 2 || options_.term_cols < 2) {
    return Status::Ok();
  }
  size_t width = static_cast<size_t>(options_.term_cols - 1);
  std::string help =
      options_.utf8
          ? "space pause  \u2190/\u2192 seek  0-9 jump  g go to  +/- speed  "
            "s status  q quit"
          : "space pause  <-/-> seek  0-9 jump  g go to  +/- speed  s status  "
            "q quit";
  if (!options_.markers.empty()) help += "  [/] commands";
  std::string line = " " + text;
  if (prompting_) {
    line += "    go to (1:30, 90, 2m, 50%; Enter, Esc): " + prompt_ + "_";
  } else if (!notice_.empty()) {
    line += "    " + notice_;
  } else {
    std::string banner = Banner(source_->meta());
    if (Columns(line) + 4 + Columns(banner) <= width) line += "    " + banner;
    if (Columns(line) + 4 + Columns(help) <= width) line += "    " + help;
  }
  line = Clip(line, width);
  line.append(width - Columns(line), ' ');
  const TermCaps& caps = options_.caps;
  std::string seq = caps.save_cursor + caps.Cup(options_.term_rows - 1, 0) +
                    caps.attrs_off + caps.reverse + line + caps.attrs_off +
                    caps.clear_eol + caps.restore_cursor;
  return out_->Append(seq);
}

void Player::TogglePause() {
  int64_t now = clock_->MonotonicMicros();
  int64_t pos = position_us();
  paused_ = !paused_;
  Reanchor(now, pos);
  status_dirty_ = true;
}

void Player::ChangeSpeed(bool faster) {
  int64_t now = clock_->MonotonicMicros();
  int64_t pos = position_us();
  double next = faster ? speed_ * 2 : speed_ / 2;
  if (next >= kMinSpeed && next <= kMaxSpeed) speed_ = next;
  Reanchor(now, pos);
  status_dirty_ = true;
}

void Player::Quit() {
  anchor_pos_us_ = position_us();
  finished_ = true;
  quit_ = true;
}

Status Player::SeekTo(int64_t target) {
  if (finished_) return Status::Ok();
  MEZ_RETURN_IF_ERROR(MoveTo(target));
  Redraw();
  return DrawFrame();
}

Status Player::SeekToPercent(double percent) {
  if (finished_) return Status::Ok();
  std::optional<int64_t> length = duration_us();
  if (!length.has_value()) {
    int64_t here = position_us();
    MEZ_RETURN_IF_ERROR(MoveTo(INT64_MAX));  // Reads (and indexes) it all.
    length = end_us_.value_or(std::max(here, applied_us_));
  }
  percent = std::clamp(percent, 0.0, 100.0);
  return SeekTo(std::llround(static_cast<double>(*length) * percent / 100));
}

Status Player::MoveTo(int64_t target) {
  target = std::max<int64_t>(target, 0);
  if (end_us_.has_value()) target = std::min(target, *end_us_);
  // A far seek while the stored index is on its way waits for it (a
  // fetch and a parse) rather than read forward at emulator speed.
  if (!index_->end_us().has_value() && target > index_->furthest_us() &&
      !index_->WaitForStored(0)) {
    index_->WaitForStored(options_.stored_index_wait_us);
  }
  Checkpoint cp = index_->Find(target);
  uint64_t read_at = have_next_ ? next_.offset : reader_->position().offset;
  if (target < applied_us_ || cp.at.offset > read_at) {
    auto text = UnpackSnapshot(cp);
    if (!text.ok()) {
      // A damaged stored snapshot: never a wrong screen, read from the
      // start instead.
      notice_ = "stored seek index damaged: reading from the start";
      status_dirty_ = true;
      cp = start_;
      text = cp.snapshot;
    }
    MEZ_ASSIGN_OR_RETURN(auto stream, source_->Open(cp.at.offset));
    reader_ = std::make_unique<EventReader>(std::move(stream), cp.at,
                                            options_.read_size);
    screen_->Load(*text, cp.rows, cp.cols);
    timeline_.Restore(cp.at.last_time_us, cp.time_us);
    applied_us_ = cp.time_us;
    have_next_ = false;
    eof_ = false;
    waiting_live_ = false;
  }
  // Read up to the target without delays, on the emulator only.
  size_t bytes = 0;
  for (;;) {
    MEZ_ASSIGN_OR_RETURN(bool have, Peek());
    if (!have || next_timeline_us_ > target) break;
    MEZ_RETURN_IF_ERROR(Apply(&bytes));
  }
  if (end_us_.has_value()) target = std::min(target, *end_us_);
  Reanchor(clock_->MonotonicMicros(), target);
  return Status::Ok();
}

void Player::Redraw() {
  renderer_.Invalidate();
  frame_dirty_ = true;
  status_dirty_ = true;
  last_status_.clear();  // The frame's clear takes the status line too.
}

int Player::ViewRows() const {
  // A one-row terminal has no room for the status line (DrawStatus skips
  // it): the view keeps the row.
  bool status = status_on_ && options_.term_rows >= 2;
  return std::max(1, options_.term_rows - (status ? 1 : 0));
}

void Player::PlaceView() {
  int rows = ViewRows();
  int cols = std::max(1, options_.term_cols);
  if (follow_) {
    int crow = 0;
    int ccol = 0;
    screen_->cursor(&crow, &ccol);
    if (crow < top_) top_ = crow;
    if (crow >= top_ + rows) top_ = crow - rows + 1;
    // Rows move as little as they must; columns start at the left edge
    // whenever the cursor is within the first `cols` (a prompt, a line
    // being typed), so a narrow moment (a resize) leaves no lasting shift.
    left_ = ccol < cols ? 0 : ccol - cols + 1;
  }
  top_ = std::clamp(top_, 0, std::max(0, screen_->rows() - rows));
  left_ = std::clamp(left_, 0, std::max(0, screen_->cols() - cols));
}

Status Player::DrawFrame() {
  if (!frame_dirty_) return Status::Ok();
  frame_dirty_ = false;
  PlaceView();
  return out_->Append(renderer_.Draw(*screen_, top_, left_, ViewRows(),
                                     std::max(1, options_.term_cols)));
}

void Player::ToggleStatusLine() {
  if (options_.term_rows < 2) return;
  status_on_ = !status_on_;
  status_chosen_ = true;
  Redraw();
}

void Player::Pan(int rows, int cols) {
  follow_ = false;
  PlaceView();  // Start from a view inside the screen.
  top_ += rows;
  left_ += cols;
  frame_dirty_ = true;
  status_dirty_ = true;
}

void Player::Follow() {
  follow_ = true;
  frame_dirty_ = true;
}

void Player::Resize(int rows, int cols) {
  options_.term_rows = rows;
  options_.term_cols = cols;
  if (!status_chosen_) status_on_ = StatusLineByDefault(*screen_, rows, cols);
  Redraw();
}

std::string Player::SetupText() const {
  // Line feeds on the bottom row scroll the screen into the scrollback.
  return options_.caps.Cup(std::max(0, options_.term_rows - 1), 0) +
         std::string(static_cast<size_t>(std::max(0, options_.term_rows)),
                     '\n');
}

std::string Player::RestoreText() const {
  const TermCaps& caps = options_.caps;
  std::string s = caps.attrs_off;
  // Modes only a recording's bytes could have set, when those went to the
  // terminal: reset in case a terminal kept them from earlier.
  s += "\033[?1l\033>\033[?2004l\033[?1000l\033[?1002l\033[?1003l\033[?1006l";
  int last = options_.term_rows - 1;
  if (status_on_ && last >= 1) s += caps.Cup(last, 0) + caps.clear_eol;
  int used = renderer_.RowsUsed();
  s += caps.Cup(std::min(used, std::max(last, 0)), 0) + caps.cursor_visible;
  if (used > last) s += "\r\n";
  return s;
}

}  // namespace mez::play
