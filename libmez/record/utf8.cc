#include "libmez/record/utf8.h"

#include <array>
#include <cstring>

namespace mez::record {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";

// Per-byte classes for the fast path.
enum : unsigned char { kPlain = 0, kEscape = 1, kMulti = 2 };

constexpr std::array<unsigned char, 256> MakeClasses() {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if (c >= 0x80) {
      t[c] = kMulti;
    } else if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) {
      t[c] = kEscape;
    } else {
      t[c] = kPlain;
    }
  }
  return t;
}
constexpr std::array<unsigned char, 256> kJsonClass = MakeClasses();

void AppendEscape(unsigned char c, std::string* out) {
  switch (c) {
    case '"':
      out->append("\\\"");
      return;
    case '\\':
      out->append("\\\\");
      return;
    case '\b':
      out->append("\\b");
      return;
    case '\f':
      out->append("\\f");
      return;
    case '\n':
      out->append("\\n");
      return;
    case '\r':
      out->append("\\r");
      return;
    case '\t':
      out->append("\\t");
      return;
    default:
      break;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
  out->append(buf, 6);
}

// For a lead byte: the sequence length and the valid range of the second
// byte (RFC 3629 table, which excludes overlongs and surrogates).
struct Lead {
  int len;  // 0: not a valid lead byte.
  unsigned char lo, hi;
};

inline Lead LeadInfo(unsigned char b) {
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b >= 0xE1 && b <= 0xEC) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xEE && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

}  // namespace

size_t Utf8Stream::Process(const unsigned char* p, size_t n, bool final,
                           std::string* out) {
  const bool json = mode_ == Mode::kJson;
  size_t i = 0;
  while (i < n) {
    // Fast path: a run of bytes that are copied unchanged.
    size_t run = i;
    if (json) {
      while (run < n && kJsonClass[p[run]] == kPlain) ++run;
    } else {
      while (run < n && p[run] < 0x80) ++run;
    }
    if (run > i) {
      out->append(reinterpret_cast<const char*>(p + i), run - i);
      i = run;
      if (i == n) break;
    }
    unsigned char b = p[i];
    if (b < 0x80) {  // Only reached in JSON mode: a byte to escape.
      AppendEscape(b, out);
      ++i;
      continue;
    }
    Lead lead = LeadInfo(b);
    if (lead.len == 0) {
      out->append(kReplacement, 3);
      ++i;
      continue;
    }
    int j = 1;
    for (; j < lead.len; ++j) {
      if (i + j >= n) {
        if (!final) return i;  // Incomplete: hold back from i.
        break;
      }
      unsigned char c = p[i + j];
      bool ok =
          j == 1 ? (c >= lead.lo && c <= lead.hi) : (c >= 0x80 && c <= 0xBF);
      if (!ok) break;
    }
    if (j == lead.len) {
      out->append(reinterpret_cast<const char*>(p + i), lead.len);
    } else {
      out->append(kReplacement, 3);  // The maximal subpart p[i, i+j).
    }
    i += j;
  }
  return n;
}

void Utf8Stream::Append(std::string_view bytes, std::string* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  if (carry_len_ > 0) {
    // Complete (or fail) the held-back sequence with up to 3 new bytes.
    unsigned char tmp[8];
    std::memcpy(tmp, carry_, carry_len_);
    size_t take = std::min(n, 4 - carry_len_);
    std::memcpy(tmp + carry_len_, p, take);
    size_t tmp_len = carry_len_ + take;
    size_t used = Process(tmp, tmp_len, false, out);
    if (used == 0) {  // Still incomplete: all new bytes joined the carry.
      std::memcpy(carry_, tmp, tmp_len);
      carry_len_ = tmp_len;
      return;
    }
    // The first sequence ended inside tmp at or after the old carry; any
    // later incomplete sequence in tmp is re-examined from the input.
    size_t from_input = used - carry_len_;
    carry_len_ = 0;
    p += from_input;
    n -= from_input;
  }
  size_t used = Process(p, n, false, out);
  carry_len_ = n - used;
  std::memcpy(carry_, p + used, carry_len_);
}

void Utf8Stream::Finish(std::string* out) {
  if (carry_len_ == 0) return;
  Process(carry_, carry_len_, true, out);
  carry_len_ = 0;
}

std::string SanitizeUtf8(std::string_view bytes) {
  Utf8Stream s(Utf8Stream::Mode::kRaw);
  std::string out;
  s.Append(bytes, &out);
  s.Finish(&out);
  return out;
}

void AppendJsonEscaped(std::string_view bytes, std::string* out) {
  Utf8Stream s(Utf8Stream::Mode::kJson);
  s.Append(bytes, out);
  s.Finish(out);
}

}  // namespace mez::record
