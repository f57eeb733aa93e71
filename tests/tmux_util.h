// A tmux server of its own for a test: a terminal a real program runs in,
// typed into with send-keys and read with capture-pane. Killed with its
// sessions when the object goes.
#ifndef MEZ_TESTS_TMUX_UTIL_H_
#define MEZ_TESTS_TMUX_UTIL_H_

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "tests/test_util.h"

namespace mez::testing {

class Tmux {
 public:
  Tmux() {
    static std::atomic<int> n{0};
    socket_ = "meztmux" + std::to_string(getpid()) + "_" + std::to_string(n++);
  }
  ~Tmux() { Run(Cmd("kill-server") + " >/dev/null 2>&1"); }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  std::string Cmd(const std::string& args) const {
    return "tmux -L " + socket_ + " -f /dev/null " + args;
  }
  // A cols x rows session running `command` (through sh); the pane stays
  // after it exits, so its last output can be read.
  bool Start(const std::string& command, int cols, int rows) {
    return Run(Cmd("new-session -d -x " + std::to_string(cols) + " -y " +
                   std::to_string(rows) + " " + ShellQuote(command) +
                   " \\; set-option -g remain-on-exit on"))
               .exit_code == 0;
  }
  // `line` as literal keys, then Enter.
  void Type(const std::string& line) {
    Run(Cmd("send-keys -t 0 -l " + ShellQuote(line)));
    Run(Cmd("send-keys -t 0 Enter"));
  }
  // Keys as tmux names them ("Space", "]", "q").
  void Keys(const std::string& keys) {
    Run(Cmd("send-keys -t 0 " + ShellQuote(keys)));
  }
  // The visible pane.
  std::string Capture() { return Run(Cmd("capture-pane -p -t 0")).out; }
  // Polls the pane until `pred` holds, for at most `seconds`.
  bool WaitFor(const std::function<bool(const std::string&)>& pred,
               int seconds = 30) {
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    for (;;) {
      last_ = Capture();
      if (pred(last_)) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  bool WaitForText(const std::string& text, int seconds = 30) {
    return WaitFor(
        [&](const std::string& s) { return s.find(text) != std::string::npos; },
        seconds);
  }
  const std::string& last() const { return last_; }

 private:
  std::string socket_;
  std::string last_;
};

}  // namespace mez::testing

#endif  // MEZ_TESTS_TMUX_UTIL_H_
