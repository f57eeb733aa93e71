// The interactive player: real-time playback on a terminal with pause,
// speed changes and seeking, and the time -> offset index that makes a seek
// cost at most one checkpoint interval of reading. Behaviour:
// docs/formats/playback.md.
//
// Player itself does no terminal I/O of its own: it writes what the
// terminal should receive to a ByteSink and takes key bytes from its
// caller, and it reads time from a Clock, so that tests drive it with a
// FakeClock. PlayInteractive() wires it to the real terminal.
//
// Files: player.cc (timing, seeks, view, status line), player_keys.cc
// (keys and the go-to prompt), player_markers.cc (the commands on the
// timeline), interactive.cc (PlayInteractive).
#ifndef MEZ_PLAY_PLAYER_H_
#define MEZ_PLAY_PLAYER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/play/event_reader.h"
#include "libmez/play/render.h"
#include "libmez/play/screen.h"
#include "libmez/play/seek_index.h"
#include "libmez/play/source.h"
#include "libmez/play/terminal.h"
#include "libmez/play/timing.h"
#include "libmez/record/sink.h"
#include "libmez/util/clock.h"

namespace mez::play {

inline constexpr double kMinSpeed = 1.0 / 16;
inline constexpr double kMaxSpeed = 16;
inline constexpr int64_t kSeekStepUs = 5'000'000;
inline constexpr int64_t kMarkerBackUs = 1'000'000;

// A point on the recording's timeline worth jumping to: a command typed at
// the prompt (from enhanced recording's events: markers.h).
struct Marker {
  int64_t time_us = 0;  // Recording time, from the start.
  std::string label;    // Shown on the status line (control bytes dropped).
};

struct PlayerOptions {
  double speed = 1.0;  // > 0; keys move it within 1/16..16.
  // Longest gap kept, recording time; nullopt: the header's idle_time_limit,
  // kNoIdleLimit: every gap.
  std::optional<int64_t> idle_cap_us;
  Clock* clock = nullptr;  // RealClock() when null.
  int term_rows = 24;      // The real terminal's size.
  int term_cols = 80;
  // Whether the status line shows at the start (the 's' key toggles it).
  // nullopt: shown unless the recording's rows fill the terminal exactly,
  // so that the status line would take the place of its last row.
  std::optional<bool> status_line;
  // Where PlayInteractive starts: a timeline time, or a percentage of the
  // timeline (which wins).
  std::optional<int64_t> start_at_us;
  std::optional<double> start_at_percent;
  // Reached with ']' and '[' and named on the status line; any order
  // (Create sorts them by time).
  std::vector<Marker> markers;
  bool utf8 = true;  // Status line glyphs (else ASCII ones).
  TermCaps caps = TermCaps::Ansi();
  // The seek index (SeekIndexOptions): a checkpoint every this much
  // timeline time or this many bytes, all snapshots within the budget.
  int64_t checkpoint_interval_us = 5'000'000;
  uint64_t checkpoint_bytes = 1 << 20;
  uint64_t checkpoint_budget = 64 << 20;
  // Also index the whole recording at once on a thread of its own (with a
  // second stream from the source), so that seeks anywhere soon cost at
  // most one interval. PlayInteractive turns it on.
  bool index_in_background = false;
  // With it, first fetch the source's stored seek index
  // (RecordingSource::StoredSeekIndex) and adopt it when it fits, instead
  // of reading the recording; a seek beyond what is indexed waits up to
  // stored_index_wait_us for that fetch.
  bool use_stored_index = true;
  int64_t stored_index_wait_us = 3'000'000;
  // A live recording (SessionMeta::live) that reached the end of what has
  // arrived is asked again this often.
  // Each ask is a new ReadRecording for a remote session (and an audit
  // event on the server), hence not more often.
  int64_t live_poll_us = 2'000'000;
  size_t read_size = 64 << 10;              // Per read from the source.
  size_t max_burst = 1 << 20;               // Output bytes per Tick, to stay
                                            // responsive to keys.
  int64_t status_min_interval_us = 50'000;  // Status redraws after output.
};

// REQUIRES: external synchronization. `source` and `out` must outlive it.
class Player {
 public:
  // Opens the source and reads the header; writes nothing yet.
  static Result<std::unique_ptr<Player>> Create(RecordingSource* source,
                                                PlayerOptions options,
                                                record::ByteSink* out);
  ~Player();

  const CastHeader& header() const { return header_; }

  // Key bytes as the terminal sends them: space pauses and resumes, '+'
  // and '-' double and halve the speed, right and left arrows seek 5 s,
  // '0'..'9' jump to 0%..90%, Home and End to the start and the end, 'g'
  // types a time to go to (StartPrompt), 's'
  // toggles the status line, 'h', 'j', 'k', 'l' pan a recording larger than
  // the terminal (left, down, up, right) and 'f' follows its cursor again,
  // ']' and '[' (or 'n' and 'p') go to the next and previous marker, 'q'
  // (or Ctrl-C) quits. Partial escape sequences are kept for the next
  // call.
  Status HandleInput(std::string_view bytes);
  void TogglePause();
  void ChangeSpeed(bool faster);
  // Moves to `timeline_us` (clamped to the recording) and redraws the
  // screen as it is there.
  Status SeekTo(int64_t timeline_us);
  Status SeekBy(int64_t delta_us) { return SeekTo(position_us() + delta_us); }
  // Moves to `percent` (0..100) of the timeline, reading to the end first
  // when its length is not known yet.
  Status SeekToPercent(double percent);
  void ToggleStatusLine();
  // Pans the view by `rows` and `cols` (clamped to the recording) and stops
  // following the cursor.
  void Pan(int rows, int cols);
  void Follow();
  // 'g' (or 't'): a prompt on the status line takes a time ("1:30", "90",
  // "2m") or a percentage ("50%"); Enter jumps there, Escape or Ctrl-C
  // cancels.
  void StartPrompt();
  bool prompting() const { return prompting_; }
  // To the first marker after the position; back to the start of the
  // command being played, or to the one before it when that started less
  // than kMarkerBackUs ago (so that pressing again goes further back). A marker
  // not reached yet is placed by reading on, on the emulator only. Without one
  // there: a notice on the status line.
  Status NextMarker();
  Status PreviousMarker();
  // The last marker at or before the position (an index into
  // markers()), or -1.
  int CurrentMarker() const;
  const std::vector<Marker>& markers() const { return options_.markers; }
  void Quit();

  // Writes everything due by the clock's now, then the status line when it
  // changed. Returns the microseconds until it needs calling again, or -1
  // when playback is over (the end reached, or Quit).
  Result<int64_t> Tick();
  // The real terminal changed size.
  void Resize(int rows, int cols);

  // What the terminal needs at the start: its contents pushed into its
  // scrollback, so that the player draws on a clear screen.
  std::string SetupText() const;
  // What it needs on the way out: the status line cleared, the pen reset,
  // the cursor visible on the line below the last picture.
  std::string RestoreText() const;

  int64_t position_us() const;
  bool paused() const { return paused_; }
  double speed() const { return speed_; }
  bool finished() const { return finished_; }
  // At the end of what a live recording has sent so far, waiting for more.
  bool waiting_live() const { return waiting_live_; }
  bool quit() const { return quit_; }
  // Timeline length, once known (from the source, or at the end).
  std::optional<int64_t> duration_us() const;
  // The seek index so far (a copy).
  std::vector<Checkpoint> checkpoints() const { return index_->checkpoints(); }
  // The background index reached the end of the recording (or stopped).
  bool index_complete() const { return index_->background_done(); }
  // The index came whole from the source's stored one.
  bool index_from_store() const { return index_->adopted_stored(); }
  void IndexStats(size_t* checkpoints, uint64_t* snapshot_bytes) const {
    *checkpoints = index_->size();
    *snapshot_bytes = index_->snapshot_bytes();
  }
  const Screen& screen() const { return *screen_; }
  // The status line without escapes, e.g. "▶ 00:12 / 03:45  ×2", with
  // "[200x50 > 80x23: h/j/k/l pan]" when the recording does not fit.
  std::string StatusText() const;
  bool status_line() const { return status_on_; }
  // The recording's row and column at the view's top left corner.
  int view_top() const { return top_; }
  int view_left() const { return left_; }

 private:
  Player(RecordingSource* source, PlayerOptions options, record::ByteSink* out);
  // Makes next_ hold the next unapplied event; false at the end.
  Result<bool> Peek();
  // Writes the events due at timeline time `pos`, stopping after
  // max_burst bytes (then *busy). Reaching the end sets finished_.
  Status EmitDue(int64_t pos, bool* busy);
  // Applies next_ to the emulator; counts its bytes into *bytes.
  Status Apply(size_t* bytes);
  // Moves the emulator (not the terminal) to `target`.
  Status MoveTo(int64_t target);
  // Draws the emulator into the view when it changed.
  Status DrawFrame();
  // Forgets what the terminal shows: the next frame and status line are
  // drawn whole.
  void Redraw();
  int ViewRows() const;
  // Keeps the cursor in view when following, and the view in the screen.
  void PlaceView();
  Status DrawStatus(int64_t now);
  void EndPrompt();
  // One key of the prompt at keys[*i], advancing *i.
  Status PromptKey(const std::string& keys, size_t* i);
  void Reanchor(int64_t now, int64_t position);
  // Gives the markers from recording time `from_time` (exclusive; inclusive
  // when 0) to `to_time` their timeline times, the timeline going from
  // `from_pos` to `to_pos` between the two.
  void PlaceMarkers(int64_t from_time, int64_t from_pos, int64_t to_time,
                    int64_t to_pos);
  // Reads until marker `i` has its timeline time (or the end).
  Status ReadUntilPlaced(size_t i);

  RecordingSource* source_;
  PlayerOptions options_;
  Clock* clock_;
  record::ByteSink* out_;
  CastHeader header_;
  std::unique_ptr<EventReader> reader_;
  std::unique_ptr<Screen> screen_;
  Timeline timeline_;
  std::unique_ptr<SeekIndex> index_;
  Checkpoint start_;  // The state before any event (index_'s may be stored).

  Event next_;
  int64_t next_timeline_us_ = 0;
  bool have_next_ = false;
  bool eof_ = false;
  bool waiting_live_ = false;  // At the end of a live stream, for now.
  int64_t next_live_poll_us_ = 0;
  int64_t applied_us_ = 0;  // Timeline time of the last applied event.
  std::optional<int64_t> end_us_;

  double speed_;
  bool paused_ = false;
  bool finished_ = false;
  bool quit_ = false;
  int64_t anchor_wall_us_ = 0;  // Clock time at anchor_pos_us_.
  int64_t anchor_pos_us_ = 0;

  Renderer renderer_;
  bool frame_dirty_ = true;
  bool status_on_ = true;
  bool status_chosen_ = false;  // Toggled by the viewer: kept on resize.
  bool follow_ = true;
  int top_ = 0;
  int left_ = 0;

  bool prompting_ = false;
  bool status_for_prompt_ = false;  // Shown only for the prompt.
  std::string prompt_;
  std::string notice_;  // A bad time typed: shown until the next key.

  // Timeline times of options_.markers, once the reader has gone past them
  // (all of them at once when no idle limit applies).
  std::vector<std::optional<int64_t>> marker_pos_;

  std::string pending_keys_;
  std::string last_status_;
  int64_t last_status_draw_us_ = -1;
  bool status_dirty_ = true;
};

// Plays `source` on the terminal `out_fd` (which must be one), keys from
// `in_fd` (ignored when not a terminal): prints the "Playing session"
// line, draws the recording's screen from the terminal's top, the status
// line on its bottom row, and restores the terminal on every way out,
// fatal signals included. `options.term_*`,
// `utf8` and `caps` are taken from the terminal and environment.
Status PlayInteractive(RecordingSource* source, PlayerOptions options,
                       int in_fd, int out_fd);

// "Playing session <id> (user: <u>, host: <node>)", leaving out what is
// unknown.
std::string Banner(const SessionMeta& meta);

}  // namespace mez::play

#endif  // MEZ_PLAY_PLAYER_H_
