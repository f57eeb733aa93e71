// Fuzzes the player's event reader (its fast line parser and the fallback)
// on arbitrary recordings: errors, never crashes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "libmez/play/event_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  // Small reads exercise the line reassembly across buffer refills.
  mez::play::EventReader reader(
      std::make_unique<mez::record::StringSource>(bytes),
      mez::play::ReadPosition{}, 7);
  if (!reader.ReadHeader().ok()) return 0;
  mez::play::Event e;
  for (int i = 0; i < 100000; ++i) {
    auto more = reader.Next(&e);
    if (!more.ok() || !*more) break;
  }
  return 0;
}
