// Fuzzes the player's event path on arbitrary recordings: the event reader
// (its fast line parser and the fallback), then the interactive Player
// itself (terminal emulator, resize events, checkpoints, a seek back) on a
// fake clock. Errors, never crashes; and no header or resize size may make
// the emulator allocate beyond its limits (the seeds in corpus/play_events
// include sizes up to 65535x65535).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "libmez/play/event_reader.h"
#include "libmez/play/player.h"
#include "libmez/play/screen.h"
#include "libmez/util/clock.h"

namespace {

// Serves the input as a recording, reopenable at any offset.
class BytesSource : public mez::play::RecordingSource {
 public:
  explicit BytesSource(std::string data) : data_(std::move(data)) {}
  mez::Result<std::unique_ptr<mez::record::ByteSource>> Open(
      uint64_t offset) override {
    if (offset > data_.size()) {
      return mez::Status(mez::Code::kOutOfRange, "past the end");
    }
    return std::unique_ptr<mez::record::ByteSource>(
        new mez::record::StringSource(data_.substr(offset)));
  }
  std::optional<uint64_t> size() override { return data_.size(); }
  mez::play::SessionMeta meta() override { return {}; }

 private:
  std::string data_;
};

void ReadEvents(const std::string& bytes) {
  // Small reads exercise the line reassembly across buffer refills.
  mez::play::EventReader reader(
      std::make_unique<mez::record::StringSource>(bytes),
      mez::play::ReadPosition{}, 7);
  if (!reader.ReadHeader().ok()) return;
  mez::play::Event e;
  for (int i = 0; i < 100000; ++i) {
    auto more = reader.Next(&e);
    if (!more.ok() || !*more) break;
  }
}

void Play(const std::string& bytes) {
  BytesSource src(bytes);
  mez::FakeClock clock;
  mez::record::StringSink out;
  mez::play::PlayerOptions o;
  o.clock = &clock;
  o.read_size = 64;
  o.checkpoint_interval_us = 1'000'000;
  o.checkpoint_bytes = 256;
  auto player = mez::play::Player::Create(&src, o, &out);
  if (!player.ok()) return;
  mez::play::Player& p = **player;
  auto check_screen = [&p] {
    if (p.screen().cols() > mez::play::kMaxScreenCols ||
        p.screen().rows() > mez::play::kMaxScreenRows ||
        int64_t{p.screen().cols()} * p.screen().rows() >
            mez::play::kMaxScreenCells) {
      __builtin_trap();
    }
  };
  check_screen();
  for (int i = 0; i < 1000; ++i) {
    auto wait = p.Tick();
    check_screen();
    if (!wait.ok() || *wait < 0) break;
    // Jump ahead in big steps: recordings may claim days between events.
    clock.Advance(*wait > 0 ? *wait : 1);
    if (i == 20) {
      if (!p.SeekTo(0).ok()) break;
      check_screen();
    }
  }
  out.mutable_data().clear();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  ReadEvents(bytes);
  Play(bytes);
  return 0;
}
