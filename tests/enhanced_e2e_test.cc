// Enhanced recording from end to end, with the real binaries: mezd --bpf
// follows an interactive `msh ssh` shell; mezrecd stores its events and
// audits its commands; `msh sessions show` and `mezctl audit ls` list
// them; `msh play` in tmux names the commands on its status line and
// jumps between them. node-sync still ends a session whose mezrecd dies;
// node mode uploads the events with the recording once mezrecd is back.
#include <gtest/gtest.h>
#include <limits.h>
#include <stdlib.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "libmez/bpf/monitor.h"
#include "tests/mezd_harness.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"
#include "tests/tmux_util.h"

#ifndef MSH_PATH
#error "MSH_PATH must name the msh binary"
#endif

namespace mez::testing {
namespace {

using nlohmann::json;

bool PollUntil(const std::function<bool()>& pred, int seconds = 60) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? buf : path;
}

class EnhancedE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!bpf::Monitor::Built()) {
      GTEST_SKIP() << "this build has no BPF (MEZ_BPF off or missing tools)";
    }
    ASSERT_TRUE(HaveProgram("ssh")) << "ssh is missing: run scripts/deps";
    ASSERT_TRUE(HaveProgram("tmux")) << "tmux is missing: run scripts/deps";
    me_ = CurrentLogin();
    port_ = FreeLoopbackPort();
    ASSERT_NE(port_, 0);
    StartCluster();
    std::string error;
    ASSERT_TRUE(
        AddUserAndLogin(*cluster_, dir_.path(), "alice", me_, &alice_, &error))
        << error;
  }
  void TearDown() override {
    if (HasFailure() && mezd_ != nullptr) {
      std::cerr << "---- mezd log ----\n" << mezd_->log();
    }
  }
  // On a fixed port, so that mezd finds it again after a restart.
  void StartCluster() {
    cluster_ = std::make_unique<Mezrecd>(
        dir_.File("data"),
        std::vector<std::string>{"--listen",
                                 "127.0.0.1:" + std::to_string(port_)});
    ASSERT_TRUE(cluster_->Start()) << cluster_->log();
  }
  void StartNode(const std::string& mode) {
    MezdOptions options;
    options.node_name = "node-1";
    options.extra_args = {"--bpf", "--upload-retry-max", "1s", "--data-dir",
                          dir_.File("mezd")};
    options.env = {"MEZITE_RECORDING_MODE=" + mode};
    std::string error;
    mezd_ = StartRegisteredNode(cluster_.get(), dir_.path(), options, &error);
    ASSERT_NE(mezd_, nullptr) << error;
  }
  // A shell line running msh as alice.
  std::string Msh(const std::string& args) const {
    return "HOME=" + ShellQuote(alice_.home) +
           " MEZ_IDENTITY= " + ShellQuote(MSH_PATH) + " " + args;
  }
  // Alice's only session, once complete ("" after 60 s).
  std::string CompleteSession() {
    std::string id;
    bool done = PollUntil([&] {
      auto r = ::mez::testing::Run(Msh("sessions ls --format=json 2>&1"));
      json arr = json::parse(r.out, nullptr, false);
      if (!arr.is_array() || arr.size() != 1) return false;
      if (arr[0].value("status", "") != "complete") return false;
      id = arr[0].value("id", "");
      return true;
    });
    return done ? id : "";
  }
  // The session's events as `msh sessions show --format=json` prints them.
  std::vector<json> Events(const std::string& id) {
    auto r = ::mez::testing::Run(
        Msh("sessions show --format=json " + ShellQuote(id)));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    std::vector<json> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line, nullptr, false);
      EXPECT_TRUE(j.is_object()) << line;
      if (j.is_object()) out.push_back(j);
    }
    return out;
  }
  // The exec events whose argv is `argv`.
  static std::vector<json> Execs(const std::vector<json>& events,
                                 const std::vector<std::string>& argv) {
    std::vector<json> out;
    for (const json& e : events) {
      if (e.value("type", "") == "exec" && e.contains("argv") &&
          e["argv"] == json(argv)) {
        out.push_back(e);
      }
    }
    return out;
  }

  TempDir dir_;
  std::string me_;
  uint16_t port_ = 0;
  std::unique_ptr<Mezrecd> cluster_;
  std::unique_ptr<Mezd> mezd_;
  TestUser alice_;
};

TEST_F(EnhancedE2eTest, ShellCommandsAreStoredAuditedAndMarkedInPlayback) {
  StartNode("node-sync");
  Tmux term;
  ASSERT_TRUE(term.Start("env LANG=C.UTF-8 PS1='$ ' sh", 100, 30));
  ASSERT_TRUE(term.WaitForText("$")) << term.last();
  term.Type(Msh("ssh node-1") + "; echo MSH''EXIT=$?");
  // Type only once the node's shell has drawn something (its prompt):
  // keys typed earlier go to the local terminal, not the node.
  ASSERT_TRUE(term.WaitFor([](const std::string& s) {
    size_t cmd = s.find("ssh node-1");
    size_t eol = cmd == std::string::npos ? cmd : s.find('\n', cmd);
    return eol != std::string::npos &&
           s.find_first_not_of(" \n", eol) != std::string::npos;
  })) << term.last();
  term.Type("echo RE''ADY");
  ASSERT_TRUE(term.WaitForText("\nREADY")) << term.last();
  // Typed with '' so that only the output shows the joined word.
  term.Type("/bin/echo ONE''1");
  ASSERT_TRUE(term.WaitForText("\nONE1")) << term.last();
  term.Type("ls / | wc -l >/dev/null; /bin/echo TW''O2");
  ASSERT_TRUE(term.WaitForText("\nTWO2")) << term.last();
  // A connect to a loopback port (mezrecd's), made by bash's redirection
  // in the child that then runs /bin/echo.
  term.Type("/bin/echo CON''N3 </dev/tcp/127.0.0.1/" + std::to_string(port_));
  ASSERT_TRUE(term.WaitForText("\nCONN3")) << term.last();
  term.Type("exit");
  ASSERT_TRUE(term.WaitForText("MSHEXIT=0")) << term.last();

  std::string id = CompleteSession();
  ASSERT_NE(id, "");
  // Stored: the commands with their absolute paths and whole argv.
  std::vector<json> events = Events(id);
  std::vector<json> one = Execs(events, {"/bin/echo", "ONE1"});
  ASSERT_EQ(one.size(), 1u) << events.size() << " events";
  std::string echo = RealPath("/bin/echo");
  EXPECT_EQ(one[0]["path"], echo);
  EXPECT_GT(one[0]["offset_us"].get<int64_t>(), 0);
  EXPECT_EQ(Execs(events, {"ls", "/"}).size(), 1u);
  EXPECT_EQ(Execs(events, {"wc", "-l"}).size(), 1u);
  bool connected = false;
  for (const json& e : events) {
    if (e.value("type", "") == "connect" &&
        e.value("remote_addr", "") == "127.0.0.1" &&
        e.value("remote_port", 0) == port_ && e.value("established", false)) {
      connected = true;
    }
  }
  EXPECT_TRUE(connected) << "no established connect to port " << port_;
  // Audited, and found by the filters an auditor uses.
  auto audit =
      Mezctl(*cluster_, "audit ls --type=session.command --session=" + id +
                            " --user=alice --format=json");
  ASSERT_EQ(audit.exit_code, 0) << audit.out;
  EXPECT_NE(audit.out.find("ONE1"), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("TWO2"), std::string::npos) << audit.out;

  // Played in a terminal with a row to spare for the status line (the
  // recording is 100x30): it names the command the position is at; ']'
  // and '[' move between commands.
  Tmux player;
  // At 1/16 speed: the session lasted a second or two, and the keys must
  // arrive before playback ends, however busy the machine is.
  ASSERT_TRUE(player.Start(
      "env LANG=C.UTF-8 " + Msh("play --speed=0.0625 " + ShellQuote(id)), 100,
      31));
  ASSERT_TRUE(player.WaitFor([](const std::string& s) {
    return std::regex_search(s, std::regex("#[0-9]+/[0-9]+"));
  })) << player.last();
  player.Keys("Space");  // Paused: it would end before the keys otherwise.
  const std::regex at_one("#([0-9]+)/[0-9]+ /bin/echo ONE1");
  bool found = false;
  for (int i = 0; i < 20 && !found; ++i) {
    player.Keys("]");
    found = player.WaitFor(
        [&](const std::string& s) { return std::regex_search(s, at_one); }, 2);
  }
  ASSERT_TRUE(found) << player.last();
  // The pipeline is one command; the one after it on the same line
  // another (the shell gave each its own process group).
  player.Keys("]");
  ASSERT_TRUE(player.WaitFor([](const std::string& s) {
    return std::regex_search(
        s, std::regex("#[0-9]+/[0-9]+ ls / \\| wc -l(?! \\|)"));
  })) << player.last();
  player.Keys("]");
  ASSERT_TRUE(player.WaitFor([](const std::string& s) {
    return std::regex_search(s, std::regex("#[0-9]+/[0-9]+ /bin/echo TWO2"));
  })) << player.last();
  player.Keys("[");
  player.Keys("[");
  ASSERT_TRUE(player.WaitFor([&](const std::string& s) {
    return std::regex_search(s, at_one);
  })) << player.last();
  player.Keys("q");
}

// A process that outlives its session is no longer followed; the session's
// events and the audit log say which it was.
TEST_F(EnhancedE2eTest, ProcessesLeftRunningAreReported) {
  StartNode("node-sync");
  // A duration no other process on the machine uses, to find it by.
  const std::string marker = "31.4159";
  struct Reaper {
    std::string pattern;
    ~Reaper() {
      ::mez::testing::Run("pkill -f " + ShellQuote(pattern) +
                          " >/dev/null 2>&1");
    }
  } reaper{"sleep " + marker};
  // The shell waits until the sleep runs (a pattern its own command line
  // does not match), so that the sleep's exec is the session's too.
  auto r = ::mez::testing::Run(
      Msh("ssh node-1 " +
          ShellQuote("setsid sleep " + marker +
                     " </dev/null >/dev/null 2>&1 & until pgrep -f '^sleep "
                     "31[.]4159' >/dev/null; do :; done; echo started")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::string id = CompleteSession();
  ASSERT_NE(id, "");
  std::vector<json> events = Events(id);
  std::vector<json> left;
  for (const json& e : events) {
    if (e.value("type", "") == "untracked") left.push_back(e);
  }
  ASSERT_EQ(left.size(), 1u) << json(events).dump();
  EXPECT_EQ(left[0]["path"], RealPath("/bin/sleep"));
  EXPECT_EQ(left[0]["argv"], json({"sleep", marker}));
  // Its start is an exec of the session.
  EXPECT_EQ(Execs(events, {"sleep", marker}).size(), 1u);
  auto audit =
      Mezctl(*cluster_, "audit ls --type=session.untracked --session=" + id +
                            " --format=json");
  ASSERT_EQ(audit.exit_code, 0) << audit.out;
  EXPECT_NE(audit.out.find(marker), std::string::npos) << audit.out;
}

TEST_F(EnhancedE2eTest, NodeSyncStillEndsTheSessionWhenMezrecdDies) {
  StartNode("node-sync");
  Tmux term;
  ASSERT_TRUE(
      term.Start(Msh("ssh node-1 'echo start''ed; sleep 60; echo never'") +
                     "; echo RC=$?; sleep 600",
                 100, 30));
  ASSERT_TRUE(term.WaitForText("started")) << term.last();
  cluster_->Kill9();
  ASSERT_TRUE(term.WaitForText("RC=")) << term.last();
  EXPECT_EQ(term.last().find("RC=0"), std::string::npos) << term.last();
  EXPECT_EQ(term.last().find("never"), std::string::npos) << term.last();
}

TEST_F(EnhancedE2eTest, NodeModeUploadsTheEventsOnceMezrecdIsBack) {
  StartNode("node");
  Tmux term;
  std::string flag = dir_.File("go");
  // The command waits for the flag, made once mezrecd is down.
  ASSERT_TRUE(term.Start(
      Msh("ssh node-1 " +
          ShellQuote("echo start''ed; while [ ! -e " + ShellQuote(flag) +
                     " ]; do sleep 0.1; done; /bin/echo THR''EE3")) +
          "; echo RC=$?; sleep 600",
      100, 30));
  ASSERT_TRUE(term.WaitForText("started")) << term.last();
  ASSERT_EQ(cluster_->Stop(), 0);
  WriteFileOrDie(flag, "");
  ASSERT_TRUE(term.WaitForText("RC=0")) << term.last();
  ASSERT_NE(term.last().find("THREE3"), std::string::npos) << term.last();

  StartCluster();
  std::string id = CompleteSession();
  ASSERT_NE(id, "") << mezd_->log();
  std::vector<json> events = Events(id);
  EXPECT_EQ(Execs(events, {"/bin/echo", "THREE3"}).size(), 1u)
      << events.size() << " events";
}

}  // namespace
}  // namespace mez::testing
