// `msh play ID` on a session still being recorded, against the real
// mezrecd: the text form says that more is coming; the terminal form shows
// the session as live, plays what arrives after it started, and ends when
// the recording stream closes.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

#ifndef MSH_PATH
#error "MSH_PATH must name the msh binary"
#endif

namespace mez::testing {
namespace {

namespace pb = mezite::v1;

// testing::Run, under a name gtest's Test::Run does not hide.
CommandResult Sh(const std::string& command) { return Run(command); }

class PlayLiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(HaveProgram("tmux")) << "tmux is missing: run scripts/deps";
    server_ = std::make_unique<Mezrecd>(dir_.File("data"));
    ASSERT_TRUE(server_->Start()) << server_->log();
    std::string err;
    server_->RegisterNode("web-01", "127.0.0.1:22", &err);
    ASSERT_EQ(err, "");
    Sh("mkdir -p " + ShellQuote(dir_.File("home")));
    socket_ = "mezlive" + std::to_string(getpid());
  }
  void TearDown() override { Sh(Tmux("kill-server") + " >/dev/null 2>&1"); }

  // msh as the cluster's admin, with a private HOME.
  std::string Msh() const {
    return "HOME=" + ShellQuote(dir_.File("home")) +
           " MEZ_IDENTITY= " + ShellQuote(MSH_PATH) + " --identity " +
           ShellQuote(server_->data_dir() + "/admin.identity");
  }
  std::string Tmux(const std::string& args) const {
    return "tmux -L " + socket_ + " -f /dev/null " + args;
  }
  std::string Capture() { return Sh(Tmux("capture-pane -p -t 0")).out; }
  // Polls the pane until it shows `text`, for at most 15 s.
  bool WaitForText(const std::string& text) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    for (;;) {
      last_ = Capture();
      if (last_.find(text) != std::string::npos) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> server_;
  std::string socket_;
  std::string last_;
};

TEST_F(PlayLiveTest, LiveSessionIsAnnouncedAndFollowedToItsEnd) {
  auto stub = server_->Stub();
  RecordCall call(stub.get(), server_->Token(auth::Role::kNode, "web-01"));
  ASSERT_TRUE(call.Send(HeaderFrame("s-live", server_->Grant("alice", "web-01"),
                                    pb::SESSION_KIND_SHELL)));
  ASSERT_TRUE(call.Send(ChunkFrame(100'000, pb::DIRECTION_OUT, "first\r\n")));

  // The text form: what has arrived, and a note that more is coming. The
  // first chunk may take a moment to reach storage.
  CommandResult text;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  do {
    text = Sh(Msh() + " play --format=text s-live 2>&1");
    if (text.out.find("first") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("first\r\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("msh play: session s-live is still being recorded: "
                          "this is what has arrived so far"),
            std::string::npos)
      << text.out;

  // The terminal form waits at the end of what has arrived.
  ASSERT_EQ(Sh(Tmux("new-session -d -x 100 -y 30 " +
                    ShellQuote("env LANG=C.UTF-8 PS1='$ ' sh")))
                .exit_code,
            0);
  ASSERT_TRUE(WaitForText("$")) << last_;
  Sh(Tmux("send-keys -t 0 -l " +
          ShellQuote(Msh() + " play s-live; echo EXIT''=$?")));
  Sh(Tmux("send-keys -t 0 Enter"));
  ASSERT_TRUE(WaitForText("first")) << last_;
  ASSERT_TRUE(WaitForText("\u25cf live")) << last_;
  ASSERT_TRUE(call.Send(ChunkFrame(300'000, pb::DIRECTION_OUT, "second\r\n")));
  ASSERT_TRUE(WaitForText("second")) << last_;
  EXPECT_EQ(last_.find("EXIT="), std::string::npos) << last_;
  // The session ends: so does playback.
  grpc::Status st = call.Close();
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(WaitForText("EXIT=0")) << last_;
}

}  // namespace
}  // namespace mez::testing
