// Test helpers shared by the player's tests: recordings built in memory, a
// source that counts what is read, and a player on a fake clock whose output
// is fed to an emulated viewer terminal.
#ifndef MEZ_PLAY_PLAY_TEST_UTIL_H_
#define MEZ_PLAY_PLAY_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "libmez/play/player.h"
#include "libmez/play/screen.h"
#include "libmez/play/source.h"
#include "libmez/record/asciicast_writer.h"
#include "libmez/record/gzip.h"
#include "libmez/util/clock.h"

namespace mez::play {

using Events = std::vector<std::pair<int64_t, std::string>>;

// An asciicast file holding `events` as stdout data.
inline std::string MakeCast(const Events& events, int width = 80,
                            int height = 24,
                            record::AsciicastOptions options = {}) {
  auto sink = std::make_unique<record::StringSink>();
  record::StringSink* raw = sink.get();
  FakeClock clock;
  options.clock = &clock;
  std::unique_ptr<record::ByteSink> below = std::move(sink);
  if (options.gzip && !options.key.has_value()) {
    below = std::move(record::GzipSink::Create(std::move(below)).value());
    options.gzip = false;
  }
  record::AsciicastHeader header;
  header.width = width;
  header.height = height;
  header.term = "xterm";
  auto w = record::AsciicastWriter::Create(std::move(below), header, options);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  for (const auto& [t, data] : events) {
    EXPECT_TRUE((*w)->Write(t, Direction::kOut, data).ok());
  }
  EXPECT_TRUE((*w)->Close().ok());
  return raw->data();
}

// Serves a stream held in memory, and counts what is read from it.
class MemorySource : public RecordingSource {
 public:
  explicit MemorySource(std::string data, SessionMeta meta = {})
      : data_(std::move(data)), meta_(std::move(meta)) {}

  Result<std::unique_ptr<record::ByteSource>> Open(uint64_t offset) override {
    opened_at.push_back(offset);
    if (offset > data_.size()) return Status(Code::kOutOfRange, "past end");
    return std::unique_ptr<record::ByteSource>(
        new Counting(data_.substr(offset), &bytes_read));
  }
  std::optional<uint64_t> size() override { return data_.size(); }
  SessionMeta meta() override { return meta_; }
  Result<std::optional<std::string>> StoredSeekIndex() override {
    ++stored_asks;
    return stored_index;
  }

  std::vector<uint64_t> opened_at;
  // What StoredSeekIndex serves (set before a player is made).
  std::optional<std::string> stored_index;
  std::atomic<int> stored_asks{0};
  // Atomic: a background index reads its stream on another thread.
  std::atomic<uint64_t> bytes_read{0};

 private:
  class Counting : public record::ByteSource {
   public:
    Counting(std::string data, std::atomic<uint64_t>* counter)
        : inner_(std::move(data)), counter_(counter) {}
    Result<size_t> Read(char* buf, size_t n) override {
      auto r = inner_.Read(buf, n);
      if (r.ok()) *counter_ += *r;
      return r;
    }

   private:
    record::StringSource inner_;
    std::atomic<uint64_t>* counter_;
  };

  std::string data_;
  SessionMeta meta_;
};

struct PlayerRig {
  // The terminal is 80x25 unless `term_rows` and `term_cols` say otherwise:
  // an 80x24 recording then leaves a row for the status line.
  explicit PlayerRig(std::string cast, PlayerOptions o = {},
                     std::optional<int64_t> duration_us = std::nullopt,
                     int term_rows = 25, int term_cols = 80)
      : src(std::move(cast), SessionMeta{"s1", "alice", "web1", duration_us}),
        viewer(term_rows, term_cols) {
    o.clock = &clock;
    o.term_rows = term_rows;
    o.term_cols = term_cols;
    auto p = Player::Create(&src, o, &out);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    player = std::move(p).value();
  }
  int64_t Tick() {
    auto r = player->Tick();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : -2;
  }
  // What the player wrote since the last call; the viewer's terminal
  // (an emulator of its size) receives it too.
  std::string TakeOut() {
    std::string s = std::move(out.mutable_data());
    out.mutable_data().clear();
    viewer.Feed(s);
    return s;
  }
  // Row `r` of the viewer's terminal, after a TakeOut.
  std::string ViewRow(int r) const { return viewer.RowText(r); }

  FakeClock clock;
  MemorySource src;
  record::StringSink out;
  std::unique_ptr<Player> player;
  Screen viewer;
};

// Events "e0".."e59", one a second, each on its own line.
inline std::string SecondsCast(int n = 60, int64_t step = 1'000'000) {
  Events events;
  for (int i = 0; i < n; ++i) {
    events.push_back({i * step, "e" + std::to_string(i) + "\r\n"});
  }
  return MakeCast(events);
}

}  // namespace mez::play

#endif  // MEZ_PLAY_PLAY_TEST_UTIL_H_
