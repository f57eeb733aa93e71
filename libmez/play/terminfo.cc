// The only file that includes <term.h>: it defines a macro for every
// capability name (lines, columns, save_cursor, ...), which would clash
// with ordinary identifiers anywhere else.
#include <curses.h>
#include <term.h>

#include <string>

namespace mez::play::internal {
namespace {

std::string* g_tputs_out = nullptr;

int AppendChar(int c) {
  g_tputs_out->push_back(static_cast<char>(c));
  return c;
}

}  // namespace

bool TerminfoSetup(int fd) {
  static int result = [fd] {
    int err = 0;
    return setupterm(nullptr, fd, &err) == OK ? 1 : 0;
  }();
  return result == 1;
}

// Expands `str` with tputs (which also drops padding marks) into a string.
std::string TerminfoPut(const char* str) {
  std::string out;
  if (str == nullptr) return out;
  g_tputs_out = &out;
  tputs(str, 1, AppendChar);
  g_tputs_out = nullptr;
  return out;
}

std::string TerminfoString(const char* name) {
  char* s = tigetstr(name);
  if (s == nullptr || s == reinterpret_cast<char*>(-1)) return {};
  return s;
}

std::string TerminfoParm2(const std::string& cap, int a, int b) {
  char* s = tparm(cap.c_str(), a, b, 0, 0, 0, 0, 0, 0, 0);
  return TerminfoPut(s);
}

}  // namespace mez::play::internal
