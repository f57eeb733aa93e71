#include "libmez/util/encoding.h"

#include <array>
#include <cstdint>

namespace mez {
namespace {

constexpr char kB64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> MakeB64Table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kB64[i])] = i;
  return t;
}
constexpr std::array<int8_t, 256> kB64Table = MakeB64Table();

// Two output characters for every 12-bit input group: halves the lookups of
// the encoder's hot loop.
constexpr std::array<uint16_t, 4096> MakePairTable() {
  std::array<uint16_t, 4096> t{};
  for (int i = 0; i < 4096; ++i) {
    t[i] = static_cast<uint16_t>(static_cast<unsigned char>(kB64[i >> 6]) |
                                 static_cast<unsigned char>(kB64[i & 63]) << 8);
  }
  return t;
}
constexpr std::array<uint16_t, 4096> kB64Pairs = MakePairTable();

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void Base64EncodeTo(std::string_view data, std::string* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  size_t start = out->size();
  out->resize(start + (n + 2) / 3 * 4);
  char* o = out->data() + start;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    uint16_t hi = kB64Pairs[v >> 12];
    uint16_t lo = kB64Pairs[v & 4095];
    o[0] = static_cast<char>(hi & 0xff);
    o[1] = static_cast<char>(hi >> 8);
    o[2] = static_cast<char>(lo & 0xff);
    o[3] = static_cast<char>(lo >> 8);
    o += 4;
  }
  if (i < n) {
    uint32_t v = p[i] << 16;
    if (i + 1 < n) v |= p[i + 1] << 8;
    *o++ = kB64[v >> 18];
    *o++ = kB64[(v >> 12) & 63];
    *o++ = i + 1 < n ? kB64[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
}

std::string Base64Encode(std::string_view data) {
  std::string out;
  Base64EncodeTo(data, &out);
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return InvalidArgument("base64 length " + std::to_string(text.size()) +
                           " is not a multiple of 4");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = text[i + j];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return InvalidArgument("base64 data after padding");
      v[j] = kB64Table[static_cast<unsigned char>(c)];
      if (v[j] < 0) {
        return InvalidArgument("invalid base64 character at offset " +
                               std::to_string(i + j));
      }
    }
    uint32_t w = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>(w >> 16);
    if (pad < 2) out += static_cast<char>((w >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(w & 0xff);
  }
  return out;
}

std::string HexEncode(std::string_view data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

Result<std::string> HexDecode(std::string_view text) {
  if (text.size() % 2 != 0) {
    return InvalidArgument("hex string has odd length " +
                           std::to_string(text.size()));
  }
  std::string out;
  out.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = HexValue(text[i]);
    int lo = HexValue(text[i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgument("invalid hex character at offset " +
                             std::to_string(hi < 0 ? i : i + 1));
    }
    out += static_cast<char>(hi << 4 | lo);
  }
  return out;
}

}  // namespace mez
