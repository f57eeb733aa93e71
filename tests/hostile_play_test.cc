// Hostile recordings through the real `msh play` binary on a terminal (a
// pty of the test's own): a header or resize event claiming 65535x65535
// (which ingest accepts, so a node can plant it) used to kill msh with
// SIGSEGV inside libvterm, and 4096x4096 took 1.2 GB. Now msh refuses such
// sizes with exit 1 and a message naming the size and the limit, and its
// peak RSS stays bounded, also at the largest size it does emulate
// (issue #14, item 3).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>

#include "tests/test_util.h"

namespace mez::testing {
namespace {

// Peak RSS a playback may reach: generous (the largest emulated screen
// needs about 75 MB), far below what the hostile sizes used to take.
constexpr long kMaxRssKb = 300 * 1024;

struct PtyRun {
  int exit_code = -1;  // -1: killed by a signal (signal in term_signal).
  int term_signal = 0;
  long max_rss_kb = 0;
  std::string out;  // Everything msh wrote to the terminal.
};

// Runs `msh play <path>` with its stdin, stdout and stderr on a new pty of
// 80x24, reads until it exits (killing it after 60 s) and reports its exit
// status and peak RSS (getrusage of that child, via wait4).
PtyRun PlayOnPty(const std::string& path) {
  PtyRun r;
  struct winsize ws {};
  ws.ws_row = 24;
  ws.ws_col = 80;
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, &ws);
  if (pid < 0) {
    ADD_FAILURE() << "forkpty failed";
    return r;
  }
  if (pid == 0) {
    setenv("TERM", "xterm", 1);
    setenv("HOME", "/nonexistent", 1);
    unsetenv("MEZITE_RECORDING_ENC_KEY");
    execl(MSH_PATH, "msh", "play", path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      ADD_FAILURE() << "msh play did not finish within 60 s; killing it";
      kill(pid, SIGKILL);
      break;
    }
    struct pollfd p {};
    p.fd = master;
    p.events = POLLIN;
    int n = poll(&p, 1, static_cast<int>(std::min<long>(left, 1000)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    ssize_t got = read(master, buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EIO: the child closed its side.
    r.out.append(buf, static_cast<size_t>(got));
  }
  int status = 0;
  struct rusage ru {};
  if (wait4(pid, &status, 0, &ru) == pid) {
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
    r.max_rss_kb = ru.ru_maxrss;
  }
  close(master);
  return r;
}

std::string Header(int w, int h) {
  return "{\"version\": 2, \"width\": " + std::to_string(w) +
         ", \"height\": " + std::to_string(h) + "}\n";
}

class HostilePlayTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& data) {
    std::string path = dir_.File(name);
    WriteFileOrDie(path, data);
    return path;
  }
  TempDir dir_;
};

TEST_F(HostilePlayTest, HugeHeaderIsRefusedWithoutCrashing) {
  for (auto [w, h] : {std::pair{65535, 65535}, std::pair{4096, 4096}}) {
    std::string size = std::to_string(w) + "x" + std::to_string(h);
    SCOPED_TRACE(size);
    std::string path = Write("huge-" + size + ".cast",
                             Header(w, h) + "[0.1, \"o\", \"hello\\r\\n\"]\n");
    PtyRun r = PlayOnPty(path);
    EXPECT_EQ(r.term_signal, 0) << "msh play died of signal " << r.term_signal;
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("msh play: " + path + ": line 1: terminal size " +
                         size + " is beyond what the player emulates"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("at most 4096 columns, 4096 rows and 1048576 cells"),
              std::string::npos)
        << r.out;
    EXPECT_LT(r.max_rss_kb, kMaxRssKb);
  }
}

TEST_F(HostilePlayTest, HugeResizeEventStopsPlaybackWithoutCrashing) {
  std::string path = Write("resize.cast", Header(80, 24) +
                                              "[0.01, \"o\", \"before\"]\n"
                                              "[0.02, \"r\", \"65535x65535\"]\n"
                                              "[0.03, \"o\", \"after\"]\n");
  PtyRun r = PlayOnPty(path);
  EXPECT_EQ(r.term_signal, 0) << "msh play died of signal " << r.term_signal;
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("before"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("after"), std::string::npos) << r.out;
  EXPECT_NE(
      r.out.find("msh play: " + path + ": line 3: terminal size 65535x65535"),
      std::string::npos)
      << r.out;
  EXPECT_LT(r.max_rss_kb, kMaxRssKb);
}

// The largest screen the player does emulate plays, in bounded memory,
// with the terminal restored (the status line's scroll region reset).
TEST_F(HostilePlayTest, LargestEmulatedScreenPlaysInBoundedMemory) {
  std::string path =
      Write("edge.cast", Header(1920, 540) +
                             "[0.01, \"o\", \"\\u001b[?1049h\\u001b[540;1920Hx"
                             "\\u001b[1;1Hedge of the screen\"]\n"
                             "[0.02, \"r\", \"4096x256\"]\n"
                             "[0.03, \"o\", \"still here\"]\n");
  PtyRun r = PlayOnPty(path);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("still here"), std::string::npos);
  EXPECT_LT(r.max_rss_kb, kMaxRssKb);
}

// Without a screen to emulate, the text form reads any size the format
// allows.
TEST_F(HostilePlayTest, TextFormatStillReadsTheHostileFile) {
  std::string path = Write(
      "huge.cast", Header(65535, 65535) + "[0.1, \"o\", \"hello\\r\\n\"]\n");
  auto r = ::mez::testing::Run(std::string(MSH_PATH) + " play --format=text " +
                               ShellQuote(path) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "hello\r\n");
}

}  // namespace
}  // namespace mez::testing
