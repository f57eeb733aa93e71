// What `msh play` shows, compared cell row by cell row with a reference: the
// real binary plays a recording in a tmux pane of a given size, and the
// pane's text (`tmux capture-pane -p`) must equal what a terminal emulator
// (libvterm, through play::Screen) shows after the same events, for the
// cases of issue #16: a recording that fills the terminal to its last row,
// one larger than the terminal, and seeks (forward, back, to the end, back
// to the start, then resumed).
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "libmez/play/screen.h"
#include "libmez/record/asciicast_writer.h"
#include "libmez/util/clock.h"
#include "tests/test_util.h"

#ifndef MSH_PATH
#error "MSH_PATH must name the msh binary"
#endif

namespace mez {
namespace {

using testing::ShellQuote;
using testing::TempDir;

using Events = std::vector<std::pair<int64_t, std::string>>;
constexpr int64_t kSecond = 1'000'000;

void WriteCast(const std::string& path, const Events& events, int width,
               int height) {
  auto file = record::FileSink::Create(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  FakeClock clock;
  record::AsciicastOptions options;
  options.clock = &clock;
  record::AsciicastHeader header;
  header.width = width;
  header.height = height;
  header.term = "xterm";
  std::unique_ptr<record::ByteSink> sink = std::move(file).value();
  auto w = record::AsciicastWriter::Create(std::move(sink), header, options);
  ASSERT_TRUE(w.ok());
  for (const auto& [t, data] : events) {
    ASSERT_TRUE((*w)->Write(t, Direction::kOut, data).ok());
  }
  ASSERT_TRUE((*w)->Close().ok());
}

// The reference: the recording's screen after every event up to `until_us`,
// as rows of text (trailing blanks removed, as capture-pane prints them).
std::vector<std::string> Reference(const Events& events, int width, int height,
                                   int64_t until_us) {
  play::Screen screen(height, width);
  for (const auto& [t, data] : events) {
    if (t <= until_us) screen.Feed(data);
  }
  std::vector<std::string> rows;
  for (int r = 0; r < height; ++r) rows.push_back(screen.RowText(r));
  return rows;
}

// Rows `top`.. of `rows`, each cut to `cols` columns (ASCII recordings).
std::vector<std::string> Window(const std::vector<std::string>& rows, int top,
                                int count, int left, int cols) {
  std::vector<std::string> out;
  for (int r = top; r < top + count; ++r) {
    std::string row = r < static_cast<int>(rows.size()) ? rows[r] : "";
    row = left < static_cast<int>(row.size()) ? row.substr(left, cols) : "";
    row.erase(row.find_last_not_of(' ') + 1);
    out.push_back(row);
  }
  return out;
}

std::string Join(const std::vector<std::string>& rows) {
  std::string s;
  for (const auto& r : rows) s += "|" + r + "\n";
  return s;
}

// One tmux server on a private socket for the whole suite; each test plays
// in its own window of the size it asks for.
class PlayScreenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    socket_ = new std::string("mezscreen" + std::to_string(getpid()));
    dir_ = new TempDir;
    testing::WriteFileOrDie(dir_->File("tmux.conf"),
                            "set -g status off\nset -g remain-on-exit on\n");
  }
  static void TearDownTestSuite() {
    testing::Run(Tmux("kill-server") + " >/dev/null 2>&1");
    delete dir_;
    delete socket_;
  }
  static std::string Tmux(const std::string& args) {
    return "tmux -L " + *socket_ + " -f " + dir_->File("tmux.conf") + " " +
           args;
  }

  void SetUp() override {
    ASSERT_TRUE(testing::HaveProgram("tmux"))
        << "tmux is missing: run scripts/deps";
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override {
    testing::Run(Tmux("kill-session -t " + name_) + " >/dev/null 2>&1");
  }

  // Plays `cast` with `flags` in a new cols x rows tmux session.
  void Play(const std::string& cast, const std::string& flags, int cols,
            int rows) {
    std::string command = "env LANG=C.UTF-8 " + ShellQuote(MSH_PATH) +
                          " play " + flags + " " + ShellQuote(cast);
    auto r = testing::Run(
        Tmux("new-session -d -s " + name_ + " -x " + std::to_string(cols) +
             " -y " + std::to_string(rows) + " " + ShellQuote(command)));
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  void Keys(const std::string& keys) {
    testing::Run(Tmux("send-keys -t " + name_ + " " + keys));
  }
  std::vector<std::string> Capture() {
    std::string out = testing::Run(Tmux("capture-pane -p -t " + name_)).out;
    std::vector<std::string> rows;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) rows.push_back(line);
    return rows;
  }
  // Polls the pane until `pred` holds, for at most 10 s.
  bool WaitFor(
      const std::function<bool(const std::vector<std::string>&)>& pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      last_ = Capture();
      if (pred(last_)) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  // Waits until the pane's rows `first`.. are `want`.
  bool WaitForRows(const std::vector<std::string>& want, int first = 0) {
    return WaitFor([&](const std::vector<std::string>& rows) {
      for (size_t i = 0; i < want.size(); ++i) {
        size_t r = first + i;
        std::string got = r < rows.size() ? rows[r] : "";
        if (got != want[i]) return false;
      }
      return true;
    });
  }
  std::string Last() const { return Join(last_); }

  static std::string* socket_;
  static TempDir* dir_;
  std::string name_;
  std::vector<std::string> last_;
};

std::string* PlayScreenTest::socket_ = nullptr;
TempDir* PlayScreenTest::dir_ = nullptr;

// The paused position on the status line ("‖ MM:SS /") in seconds, or -1.
int PausedAt(const std::vector<std::string>& rows) {
  std::smatch m;
  for (const auto& row : rows) {
    if (std::regex_search(row, m, std::regex("\u2016 (\\d\\d):(\\d\\d) /"))) {
      return std::stoi(m[1]) * 60 + std::stoi(m[2]);
    }
  }
  return -1;
}

// An 80x24 recording that writes all 24 rows, the last one included, then
// idles: played in an 80x24 terminal, every row shows (no status line over
// the last one); 's' brings the status line, which takes its own row.
TEST_F(PlayScreenTest, LastRowShowsWhenTheSizesMatch) {
  Events events;
  std::string screen = "\033[H\033[2J";
  for (int r = 1; r <= 24; ++r) {
    screen += "\033[" + std::to_string(r) + ";1Hrow " + std::to_string(r) +
              (r == 24 ? " -- the bottom line of vim, less and top" : "");
  }
  events.push_back({0, screen});
  events.push_back({60 * kSecond, "done"});  // Keeps playback going.
  std::string cast = dir_->File("last_row.cast");
  WriteCast(cast, events, 80, 24);
  Play(cast, "", 80, 24);
  auto want = Reference(events, 80, 24, 0);
  ASSERT_EQ(want[23], "row 24 -- the bottom line of vim, less and top");
  ASSERT_TRUE(WaitForRows(want)) << Last();

  // The status line on demand: the view moves up one row to keep the
  // cursor (on the last row) in sight; nothing is drawn over it.
  Keys("s");
  ASSERT_TRUE(WaitForRows(Window(want, 1, 23, 0, 80))) << Last();
  ASSERT_TRUE(WaitFor([](const std::vector<std::string>& rows) {
    return rows.size() == 24 && rows[23].find("\u25b6 00:0") == 1;
  })) << Last();
  Keys("s");
  ASSERT_TRUE(WaitForRows(want)) << Last();
  Keys("q");
}

// A 200x50 recording in an 80x24 terminal: a notice says so, the view
// follows the cursor (at the bottom), and h/j/k/l pan.
TEST_F(PlayScreenTest, LargerRecordingIsCutWithANoticeAndPans) {
  Events events;
  std::string text;
  for (int r = 1; r <= 50; ++r) {
    std::string line = "line " + std::to_string(r) + ":";
    for (int c = 0; line.size() < 199; ++c) {
      line += " " + std::to_string(r * 1000 + c);
    }
    text += line.substr(0, 199) + "\r\n";
  }
  text += "$ ";
  events.push_back({0, text});
  events.push_back({60 * kSecond, "exit\r\n"});
  std::string cast = dir_->File("large.cast");
  WriteCast(cast, events, 200, 50);
  Play(cast, "", 80, 24);
  auto want = Reference(events, 200, 50, 0);
  ASSERT_EQ(want[49], "$");
  // The cursor is on row 50: the view shows rows 28..50.
  ASSERT_TRUE(WaitForRows(Window(want, 27, 23, 0, 80))) << Last();
  EXPECT_NE(last_[23].find("[200x50 > 80x23: h/j/k/l pan]"), std::string::npos)
      << Last();
  Keys("k");  // Up half a view (11 rows).
  ASSERT_TRUE(WaitForRows(Window(want, 16, 23, 0, 80))) << Last();
  Keys("l");  // Right half a view (40 columns).
  ASSERT_TRUE(WaitForRows(Window(want, 16, 23, 40, 80))) << Last();
  Keys("f");  // Follow the cursor again.
  ASSERT_TRUE(WaitForRows(Window(want, 27, 23, 0, 80))) << Last();
  Keys("q");
}

// 100 s of output, one event a second: lines that scroll, colours, and a
// full-screen program on the alternate screen from 50 s to 59 s.
Events SeekEvents() {
  Events events;
  for (int i = 0; i <= 100; ++i) {
    std::string data;
    if (i == 50) data += "\033[?1049h\033[H\033[2J";
    if (i >= 50 && i < 60) {
      data += "\033[" + std::to_string(i - 49) + ";" +
              std::to_string(2 * (i - 49)) + "H\033[1;3" +
              std::to_string(i % 8) + "mfull screen " + std::to_string(i) +
              "\033[m\033[24;1Hstatus " + std::to_string(i);
    } else {
      if (i == 60) data += "\033[?1049l";
      data += "\033[3" + std::to_string(i % 8) + "mline " + std::to_string(i) +
              "\033[m " + std::string(i % 37, '=') + "\r\n";
    }
    events.push_back({i * kSecond, data});
  }
  return events;
}

// Seeks by keys and --start-at show the recording as it was at the new
// position, and resuming after a seek back adds to that picture only.
TEST_F(PlayScreenTest, SeeksShowTheRecordingAtTheirTime) {
  Events events = SeekEvents();
  std::string cast = dir_->File("seek.cast");
  WriteCast(cast, events, 80, 24);
  // 80x25: the status line has a row of its own.
  Play(cast, "--start-at 80%", 80, 25);
  Keys("Space");
  auto paused = [&](int at) {
    return WaitFor([at](const std::vector<std::string>& rows) {
      int p = PausedAt(rows);
      return at < 0 ? p >= 0 : p == at;
    });
  };
  ASSERT_TRUE(paused(-1)) << Last();
  int p = PausedAt(last_);
  EXPECT_GE(p, 80) << Last();
  EXPECT_TRUE(WaitForRows(Reference(events, 80, 24, p * kSecond)))
      << "at " << p << "\n"
      << Last();

  struct Step {
    const char* keys;
    int at;  // Seconds.
  };
  for (Step step : {Step{"5", 50}, Step{"Right", 55}, Step{"Left Left", 45},
                    Step{"End", 100}, Step{"Home", 0}, Step{"9", 90},
                    Step{"5 Right", 55}}) {
    SCOPED_TRACE(step.keys);
    Keys(step.keys);
    ASSERT_TRUE(paused(step.at)) << Last();
    EXPECT_TRUE(WaitForRows(Reference(events, 80, 24, step.at * kSecond)))
        << Last();
  }
  // Back to 45 s, resumed for a while, paused again: the picture is the
  // recording's at that point, with nothing of the full-screen program.
  Keys("Left Left");
  ASSERT_TRUE(paused(45)) << Last();
  Keys("Space");
  ASSERT_TRUE(WaitFor([](const std::vector<std::string>& rows) {
    return !rows.empty() &&
           rows.back().find("\u25b6 00:46") != std::string::npos;
  })) << Last();
  Keys("Space");
  ASSERT_TRUE(paused(-1)) << Last();
  p = PausedAt(last_);
  EXPECT_TRUE(WaitForRows(Reference(events, 80, 24, p * kSecond)))
      << "at " << p << "\n"
      << Last();
  Keys("q");
}

}  // namespace
}  // namespace mez
