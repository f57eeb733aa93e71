// The renderer and the player's view: what reaches the viewer's terminal is
// checked by feeding it to an emulator of the viewer's size.
#include "libmez/play/render.h"

#include <gtest/gtest.h>

#include <string>

#include "libmez/play/play_test_util.h"
#include "libmez/play/screen.h"

namespace mez::play {
namespace {

TEST(RendererTest, DrawsOnlyWhatChanged) {
  Screen rec(5, 20);
  rec.Feed("hello\r\nworld");
  Renderer r;
  Screen viewer(5, 20);
  std::string first = r.Draw(rec, 0, 0, 5, 20);
  EXPECT_EQ(first.rfind("\033[0m\033[H\033[2J", 0), 0u) << first;
  viewer.Feed(first);
  EXPECT_EQ(viewer.RowText(0), "hello");
  EXPECT_EQ(viewer.RowText(1), "world");
  EXPECT_EQ(r.RowsUsed(), 2);
  rec.Feed("!");
  std::string second = r.Draw(rec, 0, 0, 5, 20);
  EXPECT_EQ(second.find("\033[2J"), std::string::npos) << second;
  EXPECT_EQ(second.find("hello"), std::string::npos) << second;
  EXPECT_NE(second.find("!"), std::string::npos) << second;
  viewer.Feed(second);
  EXPECT_EQ(viewer.RowText(1), "world!");
  int row = 0;
  int col = 0;
  viewer.cursor(&row, &col);
  EXPECT_EQ(row, 1);
  EXPECT_EQ(col, 6);
  // Nothing changed: nothing but cursor bookkeeping.
  std::string third = r.Draw(rec, 0, 0, 5, 20);
  EXPECT_EQ(third.find("world"), std::string::npos) << third;
}

TEST(RendererTest, ViewportCutsAndWideCharactersAtItsEdges) {
  Screen rec(4, 10);
  rec.Feed(
      "ab\xe4\xb8\xad"
      "cd\r\n0123456789\r\nx");  // U+4E2D is wide.
  Renderer r;
  Screen viewer(2, 3);
  // Columns 3..5: the right half of the wide character shows blank.
  viewer.Feed(r.Draw(rec, 0, 3, 2, 3));
  EXPECT_EQ(viewer.RowText(0), " cd");
  EXPECT_EQ(viewer.RowText(1), "345");
  // Columns 0..2: its left half does not fit either.
  viewer.Feed(r.Draw(rec, 0, 0, 2, 3));
  EXPECT_EQ(viewer.RowText(0), "ab");
  EXPECT_EQ(viewer.RowText(1), "012");
  // The cursor (row 2) is outside the view: hidden.
  EXPECT_FALSE(viewer.cursor_visible());
  // Rows beyond the recording are blank.
  Screen tall(6, 10);
  viewer.Feed(r.Draw(rec, 2, 0, 6, 10));
  Renderer r2;
  tall.Feed(r2.Draw(rec, 2, 0, 6, 10));
  EXPECT_EQ(tall.RowText(0), "x");
  EXPECT_EQ(tall.RowText(2), "");
  EXPECT_TRUE(tall.cursor_visible());
}

TEST(PlayerViewTest, StatusLineOffWhenTheRowsMatchAndToggled) {
  std::string cast = MakeCast({{0, "\033[24;1Hlast row"}, {9'000'000, "x"}});
  PlayerRig rig(cast, {}, std::nullopt, /*term_rows=*/24);
  EXPECT_FALSE(rig.player->status_line());
  rig.Tick();
  rig.TakeOut();
  EXPECT_EQ(rig.ViewRow(23), "last row");
  ASSERT_TRUE(rig.player->HandleInput("s").ok());
  rig.Tick();
  rig.TakeOut();
  EXPECT_TRUE(rig.player->status_line());
  EXPECT_EQ(rig.ViewRow(22), "last row");  // The view follows the cursor.
  EXPECT_EQ(rig.ViewRow(23).find(" \u25b6 00:00"), 0u) << rig.ViewRow(23);
  ASSERT_TRUE(rig.player->HandleInput("s").ok());
  rig.Tick();
  rig.TakeOut();
  EXPECT_EQ(rig.ViewRow(23), "last row");
}

TEST(PlayerViewTest, LargerRecordingFollowsTheCursorAndPans) {
  std::string text;
  for (int r = 0; r < 50; ++r) {
    text += "r" + std::to_string(r) + std::string(150, '.') + "|" +
            std::to_string(r) + "\r\n";
  }
  PlayerRig rig(MakeCast({{0, text}, {9'000'000, "x"}}, 200, 51));
  rig.Tick();
  rig.TakeOut();
  // 80x25 terminal, status line on: 24 rows of view, cursor on row 50.
  EXPECT_EQ(rig.player->view_top(), 27);
  EXPECT_EQ(rig.ViewRow(0).substr(0, 4), "r27.");
  EXPECT_EQ(rig.ViewRow(23), "");
  EXPECT_NE(rig.ViewRow(24).find("[200x51 > 80x24: h/j/k/l pan]"),
            std::string::npos)
      << rig.ViewRow(24);
  ASSERT_TRUE(rig.player->HandleInput("kl").ok());
  rig.TakeOut();
  EXPECT_EQ(rig.player->view_top(), 15);
  EXPECT_EQ(rig.player->view_left(), 40);
  EXPECT_EQ(rig.ViewRow(0), std::string(80, '.'));
  ASSERT_TRUE(rig.player->HandleInput("llll").ok());  // Stops at the edge.
  rig.TakeOut();
  EXPECT_EQ(rig.player->view_left(), 120);
  EXPECT_EQ(rig.ViewRow(0), std::string(33, '.') + "|15");
  ASSERT_TRUE(rig.player->HandleInput("f").ok());
  rig.TakeOut();
  EXPECT_EQ(rig.player->view_top(), 27);
  EXPECT_EQ(rig.player->view_left(), 0);
}

TEST(PlayerViewTest, PercentHomeAndEndKeys) {
  PlayerRig rig(SecondsCast(101), {}, 100'000'000);
  rig.Tick();
  ASSERT_TRUE(rig.player->HandleInput(" 5").ok());  // Paused, then 50%.
  EXPECT_EQ(rig.player->position_us(), 50'000'000);
  rig.TakeOut();
  EXPECT_EQ(rig.ViewRow(22), "e50");
  ASSERT_TRUE(rig.player->HandleInput("\033[F").ok());  // End.
  EXPECT_EQ(rig.player->position_us(), 100'000'000);
  ASSERT_TRUE(rig.player->HandleInput("\033[1~").ok());  // Home.
  EXPECT_EQ(rig.player->position_us(), 0);
  rig.TakeOut();
  EXPECT_EQ(rig.ViewRow(0), "e0");
  EXPECT_EQ(rig.ViewRow(1), "");
}

TEST(PlayerViewTest, GoToATimeTypedOnTheStatusLine) {
  PlayerRig rig(SecondsCast(181), {}, 180'000'000);
  rig.Tick();
  ASSERT_TRUE(rig.player->HandleInput(" g1:3").ok());
  EXPECT_TRUE(rig.player->prompting());
  rig.Tick();
  rig.TakeOut();
  EXPECT_NE(rig.ViewRow(24).find("go to (1:30, 90, 2m, 50%; Enter, Esc): 1:3_"),
            std::string::npos)
      << rig.ViewRow(24);
  ASSERT_TRUE(rig.player->HandleInput("0\r").ok());
  EXPECT_FALSE(rig.player->prompting());
  EXPECT_EQ(rig.player->position_us(), 90'000'000);
  rig.TakeOut();
  EXPECT_EQ(rig.ViewRow(22), "e90");
  for (auto [keys, at] :
       {std::pair{"g2m\r", 120'000'000}, std::pair{"g25%\r", 45'000'000},
        std::pair{"g0:0:10\r", 10'000'000},
        std::pair{"g99x\x7f\r", 99'000'000}}) {
    SCOPED_TRACE(keys);
    ASSERT_TRUE(rig.player->HandleInput(keys).ok());
    EXPECT_EQ(rig.player->position_us(), at);
  }
  // Escape (alone, or starting an arrow key) and Ctrl-C cancel.
  ASSERT_TRUE(rig.player->HandleInput("g12\033[C").ok());
  EXPECT_FALSE(rig.player->prompting());
  ASSERT_TRUE(rig.player->HandleInput("g12\x03").ok());
  EXPECT_FALSE(rig.player->prompting());
  EXPECT_FALSE(rig.player->quit());
  EXPECT_EQ(rig.player->position_us(), 99'000'000);
  // A bad time is said on the status line, until the next key.
  ASSERT_TRUE(rig.player->HandleInput("g1:xx\r").ok());
  rig.Tick();
  rig.TakeOut();
  EXPECT_NE(rig.ViewRow(24).find("not a time: 1:xx"), std::string::npos)
      << rig.ViewRow(24);
  EXPECT_EQ(rig.player->position_us(), 99'000'000);
}

// The prompt brings the status line when it is off, and takes it away
// again.
TEST(PlayerViewTest, PromptShowsTheStatusLineWhenOff) {
  PlayerRig rig(SecondsCast(30), {}, 29'000'000, /*term_rows=*/24);
  rig.Tick();
  EXPECT_FALSE(rig.player->status_line());
  ASSERT_TRUE(rig.player->HandleInput("g").ok());
  EXPECT_TRUE(rig.player->status_line());
  ASSERT_TRUE(rig.player->HandleInput("10\r").ok());
  EXPECT_FALSE(rig.player->status_line());
  EXPECT_EQ(rig.player->position_us(), 10'000'000);
}

// Without a known length (no duration from the source), a percentage reads
// to the end first.
TEST(PlayerViewTest, PercentWithoutAKnownLength) {
  PlayerRig rig(SecondsCast(101));
  rig.Tick();
  ASSERT_TRUE(rig.player->HandleInput(" 9").ok());
  EXPECT_EQ(rig.player->position_us(), 90'000'000);
  EXPECT_EQ(rig.player->duration_us(), 100'000'000);
  rig.TakeOut();
  EXPECT_EQ(rig.ViewRow(22), "e90");
}

}  // namespace
}  // namespace mez::play
