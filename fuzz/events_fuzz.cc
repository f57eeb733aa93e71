// Feeds arbitrary bytes to the checks mezrecd runs on the enhanced
// recording event lines a node sends (libmez/ingest/events.h): the input,
// split at newlines, is one events frame. Every frame must be accepted or
// refused with kInvalidArgument and a UTF-8 message, never crash; and an
// accepted line's stored form must be a JSON object that starts with
// mezrecd's offset_us, and its audit details must serialize.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/ingest/events.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= in.size()) {
    size_t nl = in.find('\n', start);
    if (nl == std::string_view::npos) nl = in.size();
    lines.push_back(in.substr(start, nl - start));
    start = nl + 1;
  }
  auto r = mez::ingest::CheckEventLines(lines, 5, 1'700'000'000'000'000);
  if (!r.ok()) {
    if (r.status().code() != mez::Code::kInvalidArgument) __builtin_trap();
    // The message is audited (recording.rejected): it must stay UTF-8
    // whatever it quotes (dump throws otherwise).
    (void)nlohmann::json(r.status().message()).dump();
    return 0;
  }
  for (const auto& e : *r) {
    if (e.offset_us < 0) __builtin_trap();
    std::string stored = mez::ingest::StoredLine(e);
    auto j = nlohmann::json::parse(stored, nullptr, false);
    if (!j.is_object() || j.value("offset_us", int64_t{-1}) != e.offset_us ||
        j.value("type", std::string()) != e.type) {
      __builtin_trap();
    }
    (void)mez::ingest::AuditDetailsOf(e).dump(
        -1, ' ', false, nlohmann::json::error_handler_t::strict);
  }
  return 0;
}
