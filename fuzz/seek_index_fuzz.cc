// Fuzzes the stored seek index: the body parser (what ReadRecording serves
// to msh play) and the file decoder (what mezrecd reads from storage),
// plain and sealed with a fixed key. Errors, never a crash, hang, leak or
// an allocation beyond the bounds; the snapshots of an index that parses
// unpack (or fail to) and load into the emulator as the player's would.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "libmez/play/screen.h"
#include "libmez/play/seek_index_file.h"
#include "libmez/record/sink.h"

namespace {

void Parse(std::string_view body) {
  auto index = mez::play::ParseSeekIndex(body);
  if (!index.ok()) return;
  if (index->checkpoints.empty()) __builtin_trap();
  // Two snapshots at most: the emulator is not what is fuzzed here.
  for (size_t i = 0; i < index->checkpoints.size() && i < 2; ++i) {
    const mez::play::Checkpoint& cp = index->checkpoints[i];
    if (!mez::play::CheckScreenSize(cp.cols, cp.rows).ok()) __builtin_trap();
    auto text = mez::play::UnpackSnapshot(cp);
    if (!text.ok()) continue;
    if (text->size() != cp.text_size) __builtin_trap();
    mez::play::Screen screen(cp.rows, cp.cols);
    screen.Load(*text, cp.rows, cp.cols);
  }
}

void Decode(const std::string& bytes, std::optional<std::string> key) {
  mez::record::StringSource src(bytes);
  auto body = mez::play::DecodeSeekIndexFile(&src, key, "s1");
  if (body.ok()) Parse(*body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  Parse(bytes);
  Decode(bytes, std::nullopt);
  Decode(bytes, std::string(32, '\x42'));
  return 0;
}
