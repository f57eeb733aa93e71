// The seek index built on a thread of its own (as msh play does): it reaches
// the end while playback goes on, gives the length, and seeks anywhere then
// re-read at most one interval and show what playing straight there shows.
#include "libmez/play/seek_index.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "libmez/play/play_test_util.h"

namespace mez::play {
namespace {

bool WaitForIndex(const Player& player) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!player.index_complete()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(SeekIndexTest, BackgroundIndexServesSeeksAnywhere) {
  Events events;
  for (int i = 0; i < 600; ++i) {  // 60 s, 100 ms apart, ~1 KiB each.
    std::string colour = "\033[3" + std::to_string(i % 8) + "m";
    events.push_back({i * 100'000, colour + "row " + std::to_string(i) + " " +
                                       std::string(1000, 'x') + "\033[m\r\n"});
  }
  std::string cast = MakeCast(events);
  PlayerOptions o;
  o.read_size = 4096;
  o.checkpoint_interval_us = 1'000'000;
  o.index_in_background = true;
  PlayerRig rig(cast, o);
  rig.Tick();
  ASSERT_TRUE(WaitForIndex(*rig.player));
  // The length is known without the player reading to the end.
  EXPECT_EQ(rig.player->duration_us(), 59'900'000);
  auto cps = rig.player->checkpoints();
  ASSERT_GE(cps.size(), 50u);
  for (size_t i = 1; i < cps.size(); ++i) {
    EXPECT_LE(cps[i].time_us - cps[i - 1].time_us, 1'000'000);
    EXPECT_LT(cps[i - 1].at.offset, cps[i].at.offset);
  }
  uint64_t interval_bytes = 11 * 1030;  // 1 s of events and one more.
  for (int64_t target : {45'000'000, 59'900'000, 3'300'000, 32'000'000}) {
    SCOPED_TRACE(target);
    rig.src.bytes_read = 0;
    rig.src.opened_at.clear();
    ASSERT_TRUE(rig.player->SeekTo(target).ok());
    EXPECT_EQ(rig.player->position_us(), target);
    ASSERT_EQ(rig.src.opened_at.size(), 1u);
    EXPECT_GT(rig.src.opened_at[0], 0u);
    EXPECT_LE(rig.src.bytes_read, interval_bytes + o.read_size);
    rig.TakeOut();
    PlayerRig straight(cast);
    straight.Tick();
    straight.clock.Advance(target);
    straight.Tick();
    for (int r = 0; r < 24; ++r) {
      EXPECT_EQ(rig.player->screen().RowText(r),
                straight.player->screen().RowText(r))
          << "row " << r;
      EXPECT_EQ(rig.ViewRow(r), straight.player->screen().RowText(r))
          << "row " << r;
    }
  }
}

// A player destroyed while its index is still being built stops the
// thread (the destructor joins it).
TEST(SeekIndexTest, DestroyedWhileIndexing) {
  Events events;
  for (int i = 0; i < 20000; ++i) {
    events.push_back({i * 10'000, "line " + std::to_string(i) + "\r\n"});
  }
  std::string cast = MakeCast(events);
  for (int i = 0; i < 5; ++i) {
    PlayerOptions o;
    o.index_in_background = true;
    PlayerRig rig(cast, o);
    rig.Tick();
  }
}

// A refused size in the middle stops the background index quietly; the
// player meets the same line itself.
TEST(SeekIndexTest, HostileResizeStopsTheIndexOnly) {
  std::string cast =
      "{\"version\": 2, \"width\": 80, \"height\": 24}\n"
      "[0.5, \"o\", \"before\"]\n"
      "[1.0, \"r\", \"65535x65535\"]\n"
      "[1.5, \"o\", \"after\"]\n";
  PlayerOptions o;
  o.index_in_background = true;
  PlayerRig rig(cast, o);
  ASSERT_TRUE(WaitForIndex(*rig.player));
  EXPECT_FALSE(rig.player->duration_us().has_value());
  rig.clock.Advance(2'000'000);
  auto r = rig.player->Tick();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDataLoss);
}

}  // namespace
}  // namespace mez::play
