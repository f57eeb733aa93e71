// Helpers for tests that drive real programs (asciinema, tshark, ...).
#ifndef MEZ_TESTS_TEST_UTIL_H_
#define MEZ_TESTS_TEST_UTIL_H_

#include <string>

namespace mez::testing {

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;  // -1 when the command did not exit normally.
  std::string out;     // stdout (stderr too when merged).
};

// Runs `command` with /bin/sh, stdin from /dev/null, capturing stdout.
CommandResult Run(const std::string& command);

// Single-quotes `s` for /bin/sh.
std::string ShellQuote(const std::string& s);

// True when `program` is on PATH.
bool HaveProgram(const std::string& program);

void WriteFileOrDie(const std::string& path, const std::string& data);

}  // namespace mez::testing

#endif  // MEZ_TESTS_TEST_UTIL_H_
