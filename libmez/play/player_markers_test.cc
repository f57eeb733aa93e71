// The player's markers: placed on the timeline (with and without an idle
// limit), ']' and '[' jump between them, the status line names the
// current one, and a hostile label cannot reach the viewer's terminal.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "libmez/play/markers.h"
#include "libmez/play/play_test_util.h"
#include "libmez/play/player.h"

namespace mez::play {
namespace {

// "e0".."e59", one a second; commands at 10 s, 25 s and 40 s.
PlayerOptions WithCommands() {
  PlayerOptions o;
  o.markers = {{25'000'000, "make test"},
               {10'000'000, "ls -la"},
               {40'000'000, "vim notes"}};
  o.index_in_background = false;
  return o;
}

TEST(PlayerMarkersTest, KeysJumpBetweenCommandsAndTheStatusLineNamesThem) {
  PlayerRig rig(SecondsCast(), WithCommands());
  ASSERT_EQ(rig.Tick() >= 0, true);
  EXPECT_EQ(rig.player->CurrentMarker(), -1);
  EXPECT_NE(rig.player->StatusText().find("#0/3"), std::string::npos)
      << rig.player->StatusText();
  // Sorted on the way in.
  EXPECT_EQ(rig.player->markers()[0].label, "ls -la");

  ASSERT_TRUE(rig.player->HandleInput("]").ok());
  EXPECT_EQ(rig.player->position_us(), 10'000'000);
  EXPECT_EQ(rig.player->CurrentMarker(), 0);
  EXPECT_NE(rig.player->StatusText().find("#1/3 ls -la"), std::string::npos)
      << rig.player->StatusText();
  // The screen is the recording's at 10 s: e10 is the last line written.
  rig.Tick();
  rig.TakeOut();
  EXPECT_EQ(rig.player->screen().RowText(10), "e10");
  EXPECT_EQ(rig.player->screen().RowText(11), "");

  ASSERT_TRUE(rig.player->HandleInput("n").ok());
  EXPECT_EQ(rig.player->position_us(), 25'000'000);
  ASSERT_TRUE(rig.player->HandleInput("]").ok());
  EXPECT_EQ(rig.player->position_us(), 40'000'000);
  EXPECT_NE(rig.player->StatusText().find("#3/3 vim notes"), std::string::npos);
  // None after the last: stays, and says so.
  ASSERT_TRUE(rig.player->HandleInput("]").ok());
  EXPECT_EQ(rig.player->position_us(), 40'000'000);

  // Back: right after a marker, '[' goes to the one before it.
  ASSERT_TRUE(rig.player->HandleInput("[").ok());
  EXPECT_EQ(rig.player->position_us(), 25'000'000);
  ASSERT_TRUE(rig.player->HandleInput("p").ok());
  EXPECT_EQ(rig.player->position_us(), 10'000'000);
  // Before the first: to the start.
  ASSERT_TRUE(rig.player->HandleInput("[").ok());
  EXPECT_EQ(rig.player->position_us(), 0);
  // Well after a marker, '[' goes to that marker.
  ASSERT_TRUE(rig.player->SeekTo(30'000'000).ok());
  ASSERT_TRUE(rig.player->HandleInput("[").ok());
  EXPECT_EQ(rig.player->position_us(), 25'000'000);
}

TEST(PlayerMarkersTest, BackGoesCommandByCommandWhenTheyAreClose) {
  PlayerOptions o;
  o.markers = {{10'000'000, "a"}, {10'300'000, "b"}, {10'600'000, "c"}};
  PlayerRig rig(SecondsCast(), o);
  ASSERT_TRUE(rig.player->SeekTo(10'600'000).ok());
  ASSERT_TRUE(rig.player->HandleInput("[").ok());
  EXPECT_EQ(rig.player->position_us(), 10'300'000);
  ASSERT_TRUE(rig.player->HandleInput("[").ok());
  EXPECT_EQ(rig.player->position_us(), 10'000'000);
  // Well into "c": back to its start first.
  ASSERT_TRUE(rig.player->SeekTo(12'000'000).ok());
  ASSERT_TRUE(rig.player->HandleInput("[").ok());
  EXPECT_EQ(rig.player->position_us(), 10'600'000);
}

TEST(PlayerMarkersTest, AnIdleLimitMovesMarkersWithTheTimeline) {
  // Output at 0 s, 1 s, then 61 s and 62 s: a one-minute pause. A command
  // at 30 s (in the pause) and one at 62 s.
  Events events = {{0, "a\r\n"},
                   {1'000'000, "b\r\n"},
                   {61'000'000, "c\r\n"},
                   {62'000'000, "d\r\n"}};
  PlayerOptions o;
  o.idle_cap_us = 2'000'000;
  o.markers = {{30'000'000, "sleep 60"}, {62'000'000, "echo d"}};
  PlayerRig rig(MakeCast(events), o);
  // Timeline: 0, 1, 3 (61 s less 58 s of pause), 4.
  ASSERT_TRUE(rig.player->NextMarker().ok());
  // 29 s into a pause cut to 2 s: where the cut pause ends.
  EXPECT_EQ(rig.player->position_us(), 3'000'000);
  ASSERT_TRUE(rig.player->NextMarker().ok());
  EXPECT_EQ(rig.player->position_us(), 4'000'000);
  // Jumped over by a seek to the start, both are still known.
  ASSERT_TRUE(rig.player->SeekTo(0).ok());
  ASSERT_TRUE(rig.player->NextMarker().ok());
  EXPECT_EQ(rig.player->position_us(), 3'000'000);
}

TEST(PlayerMarkersTest, MarkersJumpedOverBySeekingAreFoundAgain) {
  // With an idle limit a marker is placed only when read past; a seek to
  // the end from the background index's last checkpoint skips them, '['
  // must still find them.
  Events events;
  for (int i = 0; i < 30; ++i) {
    events.push_back({i * 3'000'000LL, "x" + std::to_string(i) + "\r\n"});
  }
  PlayerOptions o;
  o.idle_cap_us = 1'000'000;  // Every 3 s gap becomes 1 s.
  o.checkpoint_interval_us = 2'000'000;
  o.index_in_background = true;
  o.use_stored_index = false;
  o.markers = {{30'000'000, "first"}, {60'000'000, "second"}};
  PlayerRig rig(MakeCast(events), o);
  for (int i = 0; i < 3000 && !rig.player->index_complete(); ++i) {
    ASSERT_EQ(usleep(10'000), 0);
  }
  ASSERT_TRUE(rig.player->index_complete());
  rig.player->TogglePause();  // Paused, the player stays at the end.
  ASSERT_TRUE(rig.player->SeekToPercent(100).ok());
  EXPECT_EQ(rig.player->position_us(), 29'000'000);
  EXPECT_EQ(rig.player->CurrentMarker(), -1);  // Not placed: skipped.
  ASSERT_TRUE(rig.player->HandleInput("[").ok());
  EXPECT_EQ(rig.player->position_us(), 20'000'000);  // 60 s -> 20 s
  ASSERT_TRUE(rig.player->HandleInput("[").ok());
  EXPECT_EQ(rig.player->position_us(), 10'000'000);
  EXPECT_EQ(rig.player->screen().RowText(10), "x10");
}

TEST(PlayerMarkersTest, AHostileLabelReachesTheStatusLineWithoutControls) {
  PlayerOptions o;
  // A command line that carries terminal controls: clear screen, an OSC
  // title, a C1 CSI, DEL.
  o.markers = {{0,
                "rm\x1b[2J\x1b]0;owned\x07 -rf\xc2\x9b"
                "1m\x7f x"}};
  PlayerRig rig(SecondsCast(5), o);
  rig.Tick();
  std::string out = rig.TakeOut();
  std::string status = rig.player->StatusText();
  EXPECT_NE(status.find("#1/1 rm"), std::string::npos) << status;
  EXPECT_EQ(status.find('\x1b'), std::string::npos);
  EXPECT_EQ(status.find('\x07'), std::string::npos);
  EXPECT_EQ(status.find('\x7f'), std::string::npos);
  EXPECT_EQ(status.find("\xc2\x9b"), std::string::npos);
  // Nothing of it made it to the terminal as a control either.
  EXPECT_EQ(out.find("\x1b]0;owned"), std::string::npos);
  EXPECT_EQ(out.find("\xc2\x9b"), std::string::npos);
}

TEST(PlayerMarkersTest, WithoutMarkersTheKeysDoNothing) {
  PlayerRig rig(SecondsCast(10), PlayerOptions{});
  ASSERT_TRUE(rig.player->SeekTo(5'000'000).ok());
  ASSERT_TRUE(rig.player->HandleInput("][np").ok());
  EXPECT_EQ(rig.player->position_us(), 5'000'000);
  EXPECT_EQ(rig.player->StatusText().find('#'), std::string::npos);
}

TEST(CommandMarkersTest, ChildrenOfTheShellArePipelinesShareOneMarker) {
  std::vector<ExecEvent> execs = {
      {0, 100, 1, 0, {"-bash"}},                      // the session's shell
      {2'000'000, 101, 100, 0, {"ls", "-la"}},        // typed
      {5'000'000, 102, 100, 0, {"make", "test"}},     // typed
      {5'010'000, 103, 102, 0, {"cc", "-c", "a.c"}},  // run by make: not typed
      {9'000'000, 104, 100, 0, {"ps", "aux"}},        // a pipeline ...
      {9'020'000, 105, 100, 0, {"grep", "ssh"}},      // ... of two
      {12'000'000, 106, 999, 0, {"cron-job"}},        // not the shell's child
  };
  std::vector<Marker> m = CommandMarkers(execs);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].time_us, 2'000'000);
  EXPECT_EQ(m[0].label, "ls -la");
  EXPECT_EQ(m[1].label, "make test");
  EXPECT_EQ(m[2].time_us, 9'000'000);
  EXPECT_EQ(m[2].label, "ps aux | grep ssh");
}

TEST(CommandMarkersTest, ProcessGroupsTellPipelinesFromQuickCommands) {
  // An interactive shell (pid 100, group 100) makes a group per pipeline.
  auto exec = [](int64_t t, int64_t pid, int64_t pgid,
                 std::vector<std::string> argv) {
    ExecEvent e;
    e.offset_us = t;
    e.pid = pid;
    e.ppid = pid == 100 ? 1 : 100;
    e.pgid = pgid;
    e.argv = std::move(argv);
    return e;
  };
  std::vector<ExecEvent> execs = {
      exec(0, 100, 100, {"-bash"}),
      exec(1'000, 101, 101, {"/bin/echo", "ONE1"}),  // "echo; ls | wc"
      exec(500'000, 103, 102, {"wc", "-l"}),         // exec'd first, ...
      exec(502'000, 102, 102, {"ls", "/"}),          // ... slow, same group
      exec(503'000, 104, 104, {"true"}),
      exec(900'000, 105, 100, {"id", "-u"}),  // $(id -u): the shell's group
      exec(950'000, 106, 100, {"tty"}),       // ... and within 100 ms
  };
  std::vector<Marker> m = CommandMarkers(execs);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].label, "/bin/echo ONE1");
  EXPECT_EQ(m[1].label, "ls / | wc -l");
  EXPECT_EQ(m[1].time_us, 500'000);
  EXPECT_EQ(m[2].label, "true");
  EXPECT_EQ(m[3].label, "id -u | tty");
}

TEST(CommandMarkersTest, LongLabelsAreCutAtACharacter) {
  std::string arg(300, 'x');
  arg[199] = '\xc3';  // "é" across the cut
  arg[200] = '\xa9';
  std::vector<ExecEvent> execs = {{0, 1, 0, 0, {"sh"}}, {1, 2, 1, 0, {arg}}};
  std::vector<Marker> m = CommandMarkers(execs);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].label, std::string(199, 'x') + "...");
}

TEST(CommandMarkersTest, StoredLinesThatAreNotExecEventsAreSkipped) {
  std::string lines =
      R"({"offset_us":5,"type":"exec","pid":1,"ppid":0,"argv":["sh"]})"
      "\n"
      R"({"offset_us":6,"type":"exit","pid":1})"
      "\nnot json\n"
      R"({"offset_us":"7","type":"exec","pid":2,"ppid":1,"argv":["ls"]})"
      "\n"
      R"({"offset_us":8,"type":"exec","pid":3,"ppid":1,"pgid":3,"argv":["id",3]})"
      "\n[1,2]\n\n"
      // The last line without its newline still counts.
      R"({"offset_us":90,"type":"exec","pid":4,"ppid":1,"pgid":4,"argv":["w"]})";
  record::StringSource src(lines);
  auto m = CommandMarkersFromLines(&src);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].time_us, 8);
  EXPECT_EQ((*m)[0].label, "id");
  EXPECT_EQ((*m)[1].label, "w");  // 82 us later, but its own group.
}

TEST(CommandMarkersTest, ReadingStopsAtTheByteBound) {
  std::string lines =
      R"({"offset_us":0,"type":"exec","pid":1,"ppid":0,"argv":["sh"]})"
      "\n";
  std::string second =
      R"({"offset_us":500000,"type":"exec","pid":2,"ppid":1,"argv":["a"]})"
      "\n";
  std::string third =
      R"({"offset_us":900000,"type":"exec","pid":3,"ppid":1,"argv":["b"]})"
      "\n";
  record::StringSource src(lines + second + third);
  bool cut = false;
  auto m =
      CommandMarkersFromLines(&src, lines.size() + second.size() + 10, &cut);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(cut);
  ASSERT_EQ(m->size(), 1u);  // "b" was past the bound.
  EXPECT_EQ((*m)[0].label, "a");
  record::StringSource all(lines + second + third);
  m = CommandMarkersFromLines(&all, 1 << 20, &cut);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(cut);
  EXPECT_EQ(m->size(), 2u);
}

TEST(CommandMarkersTest, AnEndlessLineIsRefusedNotHeld) {
  // A hostile server's stream without a newline: refused at the bound.
  std::string lines =
      R"({"offset_us":5,"type":"exec","pid":1,"ppid":0,"argv":[")" +
      std::string(kMaxMarkerLineBytes + 100'000, 'x');
  record::StringSource src(lines);
  auto m = CommandMarkersFromLines(&src);
  EXPECT_EQ(m.status().code(), Code::kDataLoss);
}

}  // namespace
}  // namespace mez::play
