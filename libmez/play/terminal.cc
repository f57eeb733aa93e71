#include "libmez/play/terminal.h"

#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

namespace mez::play {
namespace internal {
bool TerminfoSetup(int fd);
std::string TerminfoPut(const char* str);
std::string TerminfoString(const char* name);
std::string TerminfoParm2(const std::string& cap, int a, int b);
}  // namespace internal

namespace {

constexpr size_t kRestoreMax = 1024;
constexpr int kFatalSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
constexpr int kNumFatal = sizeof(kFatalSignals) / sizeof(kFatalSignals[0]);

// What a signal handler needs, in storage it can read without locks.
struct RestoreText {
  char normal[kRestoreMax];
  size_t normal_len = 0;
  char alt[kRestoreMax];
  size_t alt_len = 0;
};

struct GuardState {
  int in_fd = -1;
  int out_fd = -1;
  struct termios saved {};
  bool have_termios = false;
  RestoreText text[2];
  volatile sig_atomic_t slot = 0;
  volatile sig_atomic_t alt = 0;
  volatile sig_atomic_t resized = 0;
  volatile sig_atomic_t restored = 1;
  struct sigaction old_fatal[kNumFatal];
  struct sigaction old_winch;
};

GuardState g_state;
std::atomic<bool> g_in_use{false};

// Async-signal-safe: write(2) and tcsetattr(3) only.
void WriteRestore() {
  if (g_state.restored) return;
  g_state.restored = 1;
  const RestoreText& t = g_state.text[g_state.slot];
  const char* p = g_state.alt ? t.alt : t.normal;
  size_t n = g_state.alt ? t.alt_len : t.normal_len;
  while (n > 0) {
    ssize_t w = write(g_state.out_fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (g_state.have_termios) {
    tcsetattr(g_state.in_fd, TCSANOW, &g_state.saved);
  }
}

void OnFatalSignal(int sig) {
  int saved_errno = errno;
  WriteRestore();
  // SA_RESETHAND put the default action back: die as the signal meant.
  raise(sig);
  errno = saved_errno;
}

void OnWinch(int) { g_state.resized = 1; }

void CopyText(const std::string& s, char* dst, size_t* len) {
  size_t n = std::min(s.size(), kRestoreMax);
  std::memcpy(dst, s.data(), n);
  *len = n;
}

bool ContainsUtf8(const char* v) {
  if (v == nullptr) return false;
  std::string s(v);
  for (char& c : s) c = static_cast<char>(std::tolower(c));
  return s.find("utf-8") != std::string::npos ||
         s.find("utf8") != std::string::npos;
}

}  // namespace

TermCaps TermCaps::Ansi() {
  TermCaps c;
  c.save_cursor = "\0337";
  c.restore_cursor = "\0338";
  c.clear_eol = "\033[K";
  c.reverse = "\033[7m";
  c.attrs_off = "\033[m";
  c.cursor_visible = "\033[?25h";
  c.cursor_up = "\033[A";
  return c;
}

TermCaps TermCaps::Load(int fd) {
  TermCaps c = Ansi();
  if (!internal::TerminfoSetup(fd)) return c;
  std::string cup = internal::TerminfoString("cup");
  if (cup.empty()) return c;  // Not addressable: keep the ANSI strings.
  c.from_terminfo = true;
  c.cup_ = cup;
  c.csr_ = internal::TerminfoString("csr");
  auto put = [](const char* name, std::string* field) {
    std::string s = internal::TerminfoString(name);
    if (!s.empty()) *field = internal::TerminfoPut(s.c_str());
  };
  put("sc", &c.save_cursor);
  put("rc", &c.restore_cursor);
  put("el", &c.clear_eol);
  put("rev", &c.reverse);
  put("sgr0", &c.attrs_off);
  put("cnorm", &c.cursor_visible);
  put("cuu1", &c.cursor_up);
  return c;
}

std::string TermCaps::Cup(int row, int col) const {
  if (!cup_.empty()) return internal::TerminfoParm2(cup_, row, col);
  return "\033[" + std::to_string(row + 1) + ";" + std::to_string(col + 1) +
         "H";
}

std::string TermCaps::Csr(int top, int bottom) const {
  if (!csr_.empty()) return internal::TerminfoParm2(csr_, top, bottom);
  if (from_terminfo) return {};  // The terminal has no scroll regions.
  return "\033[" + std::to_string(top + 1) + ";" + std::to_string(bottom + 1) +
         "r";
}

bool GetWindowSize(int fd, int* rows, int* cols) {
  struct winsize ws {};
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) {
    return false;
  }
  *rows = ws.ws_row;
  *cols = ws.ws_col;
  return true;
}

bool LocaleIsUtf8() {
  for (const char* name : {"LC_ALL", "LC_CTYPE", "LANG"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') return ContainsUtf8(v);
  }
  return false;
}

Result<std::unique_ptr<TerminalGuard>> TerminalGuard::Enter(int in_fd,
                                                            int out_fd) {
  if (g_in_use.exchange(true)) {
    return FailedPrecondition("the terminal is already in use by a player");
  }
  std::unique_ptr<TerminalGuard> guard(new TerminalGuard);
  g_state.in_fd = in_fd;
  g_state.out_fd = out_fd;
  g_state.have_termios = false;
  g_state.slot = 0;
  g_state.alt = 0;
  g_state.resized = 0;
  g_state.text[0].normal_len = g_state.text[0].alt_len = 0;
  if (in_fd >= 0) {
    if (tcgetattr(in_fd, &g_state.saved) != 0) {
      g_in_use = false;
      return ErrnoStatus("read terminal settings", errno);
    }
    g_state.have_termios = true;
  }
  g_state.restored = 0;
  guard->active_ = true;
  for (int i = 0; i < kNumFatal; ++i) {
    struct sigaction sa {};
    sa.sa_handler = OnFatalSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(kFatalSignals[i], &sa, &g_state.old_fatal[i]);
  }
  struct sigaction winch {};
  winch.sa_handler = OnWinch;
  sigemptyset(&winch.sa_mask);
  sigaction(SIGWINCH, &winch, &g_state.old_winch);
  if (g_state.have_termios) {
    struct termios raw = g_state.saved;
    cfmakeraw(&raw);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(in_fd, TCSADRAIN, &raw) != 0) {
      Status s = ErrnoStatus("set raw mode", errno);
      (void)guard->Restore();
      return s;
    }
  }
  return guard;
}

TerminalGuard::~TerminalGuard() { (void)Restore(); }

void TerminalGuard::SetRestoreText(const std::string& normal,
                                   const std::string& alt) {
  int next = 1 - g_state.slot;
  CopyText(normal, g_state.text[next].normal, &g_state.text[next].normal_len);
  CopyText(alt, g_state.text[next].alt, &g_state.text[next].alt_len);
  g_state.slot = next;
}

void TerminalGuard::SetAltscreen(bool on) { g_state.alt = on ? 1 : 0; }

bool TerminalGuard::TakeResized() {
  if (!g_state.resized) return false;
  g_state.resized = 0;
  return true;
}

Status TerminalGuard::Restore() {
  if (!active_) return Status::Ok();
  active_ = false;
  // Block the fatal signals so a handler cannot run half-way through.
  sigset_t block, old;
  sigemptyset(&block);
  for (int sig : kFatalSignals) sigaddset(&block, sig);
  sigprocmask(SIG_BLOCK, &block, &old);
  WriteRestore();
  for (int i = 0; i < kNumFatal; ++i) {
    sigaction(kFatalSignals[i], &g_state.old_fatal[i], nullptr);
  }
  sigaction(SIGWINCH, &g_state.old_winch, nullptr);
  sigprocmask(SIG_SETMASK, &old, nullptr);
  g_in_use = false;
  return Status::Ok();
}

}  // namespace mez::play
