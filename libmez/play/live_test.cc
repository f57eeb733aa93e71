// A recording still being recorded: the player announces it as live, waits
// at the end of what has arrived, reads on from there when more comes
// (also after a line cut in half), and ends once the session has ended.
#include <gtest/gtest.h>

#include <string>

#include "libmez/play/play_test_util.h"

namespace mez::play {
namespace {

// A recording that grows while it is played, live until told otherwise.
class GrowingSource : public RecordingSource {
 public:
  explicit GrowingSource(std::string data) : data_(std::move(data)) {}
  Result<std::unique_ptr<record::ByteSource>> Open(uint64_t offset) override {
    opened_at.push_back(offset);
    if (offset > data_.size()) return Status(Code::kOutOfRange, "past end");
    return std::unique_ptr<record::ByteSource>(
        new record::StringSource(data_.substr(offset)));
  }
  std::optional<uint64_t> size() override { return std::nullopt; }
  SessionMeta meta() override {
    SessionMeta m;
    m.id = "s1";
    m.live = live;
    return m;
  }
  void Append(const std::string& more) { data_ += more; }

  bool live = true;
  std::vector<uint64_t> opened_at;

 private:
  std::string data_;
};

TEST(LiveTest, WaitsForMoreAndEndsWhenTheSessionEnds) {
  GrowingSource src(
      "{\"version\": 2, \"width\": 80, \"height\": 24}\n"
      "[0.5, \"o\", \"first\\r\\n\"]\n"
      "[1.0, \"o\", \"sec");  // The writer is mid-line.
  FakeClock clock;
  record::StringSink out;
  PlayerOptions o;
  o.clock = &clock;
  o.term_rows = 25;
  o.live_poll_us = 1'000'000;
  auto created = Player::Create(&src, o, &out);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  Player& p = **created;
  EXPECT_EQ(Banner(src.meta()),
            "Playing session s1, live: still being recorded");
  clock.Advance(2'000'000);
  auto wait = p.Tick();
  ASSERT_TRUE(wait.ok());
  EXPECT_GE(*wait, 0);  // Not over: waiting for more.
  EXPECT_TRUE(p.waiting_live());
  EXPECT_FALSE(p.finished());
  EXPECT_EQ(p.screen().RowText(0), "first");
  EXPECT_NE(p.StatusText().find("\u25cf live"), std::string::npos)
      << p.StatusText();
  EXPECT_EQ(p.duration_us(), std::nullopt);

  // The rest of the line and one more event arrive.
  src.Append("ond\\r\\n\"]\n[2.5, \"o\", \"third\\r\\n\"]\n");
  size_t opens = src.opened_at.size();
  clock.Advance(1'000'000);  // The next poll is due.
  ASSERT_TRUE(p.Tick().ok());
  ASSERT_EQ(src.opened_at.size(), opens + 1);
  EXPECT_GT(src.opened_at.back(), 0u);  // From where it stopped, not 0.
  EXPECT_EQ(p.screen().RowText(1), "second");
  EXPECT_EQ(p.screen().RowText(2), "third");
  EXPECT_TRUE(p.waiting_live());

  // The session ends: the next poll finds nothing more and playback ends.
  src.live = false;
  clock.Advance(1'000'000);
  auto last = p.Tick();
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, -1);
  EXPECT_TRUE(p.finished());
  EXPECT_EQ(p.duration_us(), 2'500'000);
  EXPECT_EQ(p.StatusText().find("live"), std::string::npos);
}

}  // namespace
}  // namespace mez::play
