// msh play end to end: the real binary on local recordings, batch formats
// through the CLI, and the interactive player driven inside tmux (keys,
// status line, seek, quit, and the terminal restored afterwards).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <regex>
#include <string>
#include <thread>

#include "libmez/record/asciicast_writer.h"
#include "libmez/util/clock.h"
#include "tests/test_util.h"

#ifndef MSH_PATH
#error "MSH_PATH must name the msh binary"
#endif

namespace mez {
namespace {

using testing::CommandResult;
using testing::ShellQuote;
using testing::TempDir;

// "tick 1" .. "tick N", one a second after "start".
void WriteTicks(const std::string& path, int seconds, bool gzip = false,
                int width = 100, int height = 29) {
  auto file = record::FileSink::Create(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  FakeClock clock;
  record::AsciicastOptions options;
  options.clock = &clock;
  options.gzip = gzip;
  record::AsciicastHeader header;
  header.width = width;
  header.height = height;
  header.term = "xterm";
  std::unique_ptr<record::ByteSink> sink = std::move(file).value();
  auto w = record::AsciicastWriter::Create(std::move(sink), header, options);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write(0, Direction::kOut, "start\r\n").ok());
  for (int i = 1; i <= seconds; ++i) {
    std::string line = "tick " + std::to_string(i) + "\r\n";
    ASSERT_TRUE((*w)->Write(i * 1'000'000LL, Direction::kOut, line).ok());
  }
  ASSERT_TRUE((*w)->Close().ok());
}

// testing::Run, under a name gtest's Test::Run does not hide.
CommandResult Sh(const std::string& command) { return testing::Run(command); }

std::string Msh() { return ShellQuote(MSH_PATH); }

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// ---- Batch formats through the CLI ----

TEST(PlayCliTest, JsonTimingsHalvedAndCapped) {
  TempDir dir;
  std::string cast = dir.File("t.cast");
  WriteTicks(cast, 3);
  CommandResult r =
      Sh(Msh() + " play --format=json --speed=2 " + ShellQuote(cast));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(
      r.out,
      "{\"time\": 0.000000, \"code\": \"o\", \"data\": \"start\\r\\n\"}\n"
      "{\"time\": 0.500000, \"code\": \"o\", \"data\": \"tick 1\\r\\n\"}\n"
      "{\"time\": 1.000000, \"code\": \"o\", \"data\": \"tick 2\\r\\n\"}\n"
      "{\"time\": 1.500000, \"code\": \"o\", \"data\": \"tick 3\\r\\n\"}\n");
  r = Sh(Msh() + " play --format=json --speed=2 --skip-idle=250ms " +
         ShellQuote(cast));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("{\"time\": 0.375000, \"code\": \"o\", \"data\": "
                       "\"tick 3\\r\\n\"}"),
            std::string::npos)
      << r.out;
}

// The forms asciinema and tsh users type: -s, 2x, bare seconds, - for
// stdin, and text without escape codes.
TEST(PlayCliTest, AsciinemaAndTshHabits) {
  TempDir dir;
  std::string cast = dir.File("t.cast");
  WriteTicks(cast, 3);
  std::string want =
      "{\"time\": 0.000000, \"code\": \"o\", \"data\": \"start\\r\\n\"}\n"
      "{\"time\": 0.250000, \"code\": \"o\", \"data\": \"tick 1\\r\\n\"}\n"
      "{\"time\": 0.500000, \"code\": \"o\", \"data\": \"tick 2\\r\\n\"}\n"
      "{\"time\": 0.750000, \"code\": \"o\", \"data\": \"tick 3\\r\\n\"}\n";
  for (const char* flags : {"-s 2 --skip-idle 0.5", "--speed 2x -i 0.5",
                            "--speed=2X --idle-time-limit=500ms"}) {
    SCOPED_TRACE(flags);
    CommandResult r =
        Sh(Msh() + " play --format=json " + flags + " - < " + ShellQuote(cast));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out, want);
  }
  testing::WriteFileOrDie(
      dir.File("colour.cast"),
      "{\"version\": 2, \"width\": 80, \"height\": 24}\n"
      "[0.5, \"o\", \"\\u001b[31merror\\u001b[0m: disk full\\r\\n\"]\n");
  for (const char* flags : {"--format=text --strip", "--format=plain"}) {
    CommandResult r = Sh("cat " + ShellQuote(dir.File("colour.cast")) + " | " +
                         Msh() + " play " + flags + " - | grep '^error: disk'");
    EXPECT_EQ(r.exit_code, 0) << flags;
    EXPECT_EQ(r.out, "error: disk full\n") << flags;
  }
}

TEST(PlayCliTest, TextOfGzippedRecording) {
  TempDir dir;
  std::string cast = dir.File("t.cast.gz");
  WriteTicks(cast, 3, /*gzip=*/true);
  CommandResult r = Sh(Msh() + " play --format=text " + ShellQuote(cast));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "start\r\ntick 1\r\ntick 2\r\ntick 3\r\n");
}

TEST(PlayCliTest, ErrorsAreOneLineWithExitCodes) {
  TempDir dir;
  std::string bad = dir.File("bad.cast");
  testing::WriteFileOrDie(
      bad,
      "{\"version\": 2, \"width\": 80, \"height\": 24}\n"
      "[0.5, \"o\", \"ok\"]\n[1.0, \"o\", broken]\n[2.0, \"o\", \"x\"]\n");
  CommandResult r =
      Sh(Msh() + " play --format=text " + ShellQuote(bad) + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("line 3: invalid JSON"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;  // "ok" + 1 line.
  r = Sh(Msh() + " play --speed=0 " + ShellQuote(bad) + " 2>/dev/null");
  EXPECT_EQ(r.exit_code, 2);
  r = Sh(Msh() + " play --skip-idle=5y " + ShellQuote(bad) + " 2>/dev/null");
  EXPECT_EQ(r.exit_code, 2);
  r = Sh(Msh() + " play --speed=1e300 " + ShellQuote(bad) + " 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "msh play: --speed: '1e300' is too fast (at most 1000x)\n");
  r = Sh(Msh() + " play --format=xml " + ShellQuote(bad) + " 2>/dev/null");
  EXPECT_EQ(r.exit_code, 2);
  // Interactive playback refuses a stdout that is not a terminal.
  r = Sh(Msh() + " play " + ShellQuote(bad) + " 2>&1 >/dev/null");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("terminal"), std::string::npos) << r.out;
}

// ---- Interactive, inside tmux ----

class Tmux {
 public:
  Tmux() {
    static std::atomic<int> n{0};
    socket_ = "mezplay" + std::to_string(getpid()) + "_" + std::to_string(n++);
  }
  ~Tmux() { Sh(Cmd("kill-server") + " >/dev/null 2>&1"); }

  std::string Cmd(const std::string& args) const {
    return "tmux -L " + socket_ + " -f /dev/null " + args;
  }
  // A 100x30 session running a plain shell in a UTF-8 locale.
  bool Start() {
    return Sh(Cmd("new-session -d -x 100 -y 30 " +
                  ShellQuote("env LANG=C.UTF-8 PS1='$ ' sh")))
               .exit_code == 0;
  }
  void Keys(const std::string& keys) { Sh(Cmd("send-keys -t 0 " + keys)); }
  void Type(const std::string& line) {
    Sh(Cmd("send-keys -t 0 -l " + ShellQuote(line)));
    Sh(Cmd("send-keys -t 0 Enter"));
  }
  std::string Capture() { return Sh(Cmd("capture-pane -p -t 0")).out; }

  // Polls the pane until `pred` holds, for at most 10 s.
  bool WaitFor(const std::function<bool(const std::string&)>& pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      last_ = Capture();
      if (pred(last_)) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  bool WaitForText(const std::string& text) {
    return WaitFor([&](const std::string& s) {
      return s.find(text) != std::string::npos;
    });
  }
  const std::string& last() const { return last_; }

 private:
  std::string socket_;
  std::string last_;
};

// The pane's terminal settings, as `stty -a` run in it prints them.
std::string PaneStty(Tmux* tmux, const std::string& file) {
  tmux->Type("stty -a > " + ShellQuote(file) + "; echo STTY''DONE");
  if (!tmux->WaitForText("STTYDONE")) return "";
  return ReadAll(file);
}

bool Cooked(const std::string& stty) {
  auto has = [&](const std::string& w) {
    return std::regex_search(stty, std::regex("(^|[ ;\n])" + w + "([ ;\n]|$)"));
  };
  return has("icanon") && has("echo") && !has("-icanon") && !has("-echo");
}

// The status line's "‖ MM:SS" (paused) as seconds, or -1.
int PausedSeconds(const std::string& screen) {
  std::smatch m;
  if (!std::regex_search(screen, m, std::regex("\u2016 (\\d\\d):(\\d\\d) /"))) {
    return -1;
  }
  return std::stoi(m[1]) * 60 + std::stoi(m[2]);
}

class PlayTmuxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::HaveProgram("tmux"))
        << "tmux is missing: run scripts/deps";
    ASSERT_TRUE(tmux_.Start());
    ASSERT_TRUE(tmux_.WaitForText("$")) << tmux_.last();
  }
  TempDir dir_;
  Tmux tmux_;
};

TEST_F(PlayTmuxTest, PauseSeekQuitAndTerminalRestored) {
  std::string cast = dir_.File("ticks.cast");
  WriteTicks(cast, 120);
  tmux_.Type(Msh() + " play " + ShellQuote(cast) + "; echo EXIT''=$?");
  ASSERT_TRUE(tmux_.WaitForText("tick 1")) << tmux_.last();
  EXPECT_NE(tmux_.last().find("Playing session ticks.cast"), std::string::npos)
      << tmux_.last();
  EXPECT_NE(tmux_.last().find("\u25b6 00:0"), std::string::npos)
      << tmux_.last();
  // Raw mode while playing.
  tmux_.Keys("Space");
  ASSERT_TRUE(tmux_.WaitFor([](const std::string& s) {
    return PausedSeconds(s) >= 0;
  })) << tmux_.last();
  int paused_at = PausedSeconds(tmux_.last());
  std::string shown = "tick " + std::to_string(paused_at);
  EXPECT_NE(tmux_.last().find(shown), std::string::npos) << tmux_.last();
  // Right arrow: 5 s on, still paused, the screen as it was there.
  tmux_.Keys("Right");
  ASSERT_TRUE(tmux_.WaitFor([&](const std::string& s) {
    return PausedSeconds(s) == paused_at + 5;
  })) << tmux_.last();
  std::string after = "tick " + std::to_string(paused_at + 5);
  ASSERT_TRUE(tmux_.WaitForText(after)) << tmux_.last();
  EXPECT_EQ(tmux_.last().find("tick " + std::to_string(paused_at + 6)),
            std::string::npos)
      << tmux_.last();
  // Left arrow: back 5 s; the later lines are gone again.
  tmux_.Keys("Left");
  ASSERT_TRUE(tmux_.WaitFor([&](const std::string& s) {
    return PausedSeconds(s) == paused_at && s.find(after) == std::string::npos;
  })) << tmux_.last();
  tmux_.Keys("q");
  ASSERT_TRUE(tmux_.WaitForText("EXIT=0")) << tmux_.last();
  EXPECT_EQ(tmux_.last().find("\u2016"), std::string::npos) << tmux_.last();
  EXPECT_TRUE(Cooked(PaneStty(&tmux_, dir_.File("stty"))));
  // The shell echoes typed text again.
  tmux_.Type("echo typed''back");
  EXPECT_TRUE(tmux_.WaitForText("typedback")) << tmux_.last();
}

TEST_F(PlayTmuxTest, SigtermRestoresTheTerminal) {
  std::string cast = dir_.File("ticks.cast");
  WriteTicks(cast, 120);
  std::string pid_file = dir_.File("pid");
  tmux_.Type("sh -c 'echo $$ > " + pid_file + "; exec \"$0\" \"$@\"' " + Msh() +
             " play " + ShellQuote(cast) + "; echo EXIT''=$?");
  ASSERT_TRUE(tmux_.WaitForText("tick 1")) << tmux_.last();
  pid_t pid = static_cast<pid_t>(std::stol(ReadAll(pid_file)));
  ASSERT_GT(pid, 1);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  ASSERT_TRUE(tmux_.WaitForText("EXIT=143")) << tmux_.last();
  EXPECT_TRUE(Cooked(PaneStty(&tmux_, dir_.File("stty"))));
}

TEST_F(PlayTmuxTest, PlaysToTheEndAndExits) {
  std::string cast = dir_.File("short.cast.gz");
  WriteTicks(cast, 2, /*gzip=*/true, 80, 24);
  tmux_.Type(Msh() + " play --speed=4 " + ShellQuote(cast) +
             "; echo EXIT''=$?");
  ASSERT_TRUE(tmux_.WaitForText("EXIT=0")) << tmux_.last();
  EXPECT_NE(tmux_.last().find("tick 2"), std::string::npos) << tmux_.last();
  EXPECT_TRUE(Cooked(PaneStty(&tmux_, dir_.File("stty"))));
}

}  // namespace
}  // namespace mez
