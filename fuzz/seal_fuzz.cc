// Feeds arbitrary record sequences to a ChunkOpener: it must classify, never
// crash. Input: records of
//   type(1: 0 chunk, 1 final record, 2 key id check) || time_us(i64 BE)
//   || direction(1) || context_len(1) || sealed_len(u16 BE)
//   || context || sealed
// A record cut short by the end of input keeps what is there. Key: 32 bytes
// of 0x4d; session id "fuzz-session" (the seeds in corpus/seal/ use both).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "libmez/record/seal.h"

namespace {

class Input {
 public:
  Input(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return rest_.empty(); }
  // Big-endian; missing bytes read as zero.
  uint64_t Uint(size_t bytes) {
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; ++i) {
      uint8_t b = 0;
      if (!rest_.empty()) {
        b = static_cast<uint8_t>(rest_.front());
        rest_.remove_prefix(1);
      }
      v = (v << 8) | b;
    }
    return v;
  }
  std::string_view Take(size_t n) {
    std::string_view out = rest_.substr(0, n);
    rest_.remove_prefix(out.size());
    return out;
  }

 private:
  std::string_view rest_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kKey(mez::record::kKeySize, '\x4d');
  auto opener = mez::record::ChunkOpener::Create(kKey, "fuzz-session");
  if (!opener.ok()) __builtin_trap();
  mez::record::ChunkOpener& o = **opener;
  Input in(data, size);
  while (!in.empty()) {
    uint8_t type = static_cast<uint8_t>(in.Uint(1));
    int64_t time_us = static_cast<int64_t>(in.Uint(8));
    uint8_t direction = static_cast<uint8_t>(in.Uint(1));
    size_t context_len = in.Uint(1);
    size_t sealed_len = in.Uint(2);
    std::string_view context = in.Take(context_len);
    std::string_view sealed = in.Take(sealed_len);
    switch (type % 3) {
      case 0: {
        auto plain = o.Open({time_us, direction, context}, sealed);
        if (plain.ok() &&
            plain->size() + mez::record::kSealOverhead != sealed.size()) {
          __builtin_trap();
        }
        break;
      }
      case 1:
        (void)o.OpenFinal(time_us, sealed);
        break;
      default:
        (void)o.CheckKeyId(sealed);
        break;
    }
  }
  mez::Status end = o.Finish();
  // A verdict is sticky: a failure recorded earlier must be what Finish says.
  if (end.ok() != (o.integrity() == mez::record::Integrity::kOk)) {
    __builtin_trap();
  }
  return 0;
}
