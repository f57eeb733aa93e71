// Fuzzes the asciicast reader: plain, gzip (by magic), and encrypted with a
// fixed key. It must return errors, never crash, hang or leak, and an error
// must be final.
#include <cstddef>
#include <cstdint>
#include <string>

#include "libmez/record/asciicast_reader.h"

namespace {

void ReadAll(const std::string& bytes, std::optional<std::string> key) {
  auto r = mez::record::AsciicastReader::Open(
      mez::record::OpenRecordingBytes(bytes), std::move(key));
  if (!r.ok()) return;
  mez::record::AsciicastEvent e;
  for (int i = 0; i < 100000; ++i) {
    auto more = (*r)->Next(&e);
    if (!more.ok()) {
      // Errors are final: reading on yields the same error, never an
      // event from past the damage.
      auto again = (*r)->Next(&e);
      if (again.ok() || again.status().message() != more.status().message()) {
        __builtin_trap();
      }
      return;
    }
    if (!*more) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  ReadAll(bytes, std::nullopt);
  ReadAll(bytes, std::string(32, '\x42'));
  return 0;
}
