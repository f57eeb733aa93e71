#include "libmez/record/utf8.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace mez::record {
namespace {

std::string Raw(std::string_view in) { return SanitizeUtf8(in); }

std::string Json(std::string_view in) {
  std::string out;
  AppendJsonEscaped(in, &out);
  return out;
}

TEST(Utf8Test, ReferenceVectorSplitAcrossChunks) {
  // C5 BC C3 gives "ż" and holds C3; the next chunk B3 completes "ó".
  Utf8Stream s(Utf8Stream::Mode::kRaw);
  std::string out;
  s.Append("\xC5\xBC\xC3", &out);
  EXPECT_EQ(out, "\xC5\xBC");
  EXPECT_TRUE(s.has_pending());
  out.clear();
  s.Append("\xB3", &out);
  EXPECT_EQ(out, "\xC3\xB3");
  EXPECT_FALSE(s.has_pending());
}

TEST(Utf8Test, ReferenceVectorMaximalSubparts) {
  // 83 23 F0 90 80 C0 21 -> U+FFFD # U+FFFD U+FFFD !
  EXPECT_EQ(Raw("\x83\x23\xF0\x90\x80\xC0\x21"),
            "\xEF\xBF\xBD#\xEF\xBF\xBD\xEF\xBF\xBD!");
  EXPECT_EQ(Json("\x83\x23\xF0\x90\x80\xC0\x21"),
            "\xEF\xBF\xBD#\xEF\xBF\xBD\xEF\xBF\xBD!");
}

TEST(Utf8Test, RejectsOverlongsSurrogatesAndOutOfRange) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(Raw("\xC0\xAF"), fffd + fffd);             // Overlong '/'.
  EXPECT_EQ(Raw("\xE0\x80\xAF"), fffd + fffd + fffd);  // Overlong.
  EXPECT_EQ(Raw("\xED\xA0\x80"), fffd + fffd + fffd);  // Surrogate D800.
  EXPECT_EQ(Raw("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // >10FFFF
  EXPECT_EQ(Raw("\xF5"), fffd);
  EXPECT_EQ(Raw("\xE2\x82"), fffd);  // Truncated at the end: one FFFD.
  EXPECT_EQ(Raw("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");  // Emoji kept.
}

// Every multibyte sequence split at every byte offset, across two and three
// chunks, gives the same result as the unsplit text.
TEST(Utf8Test, SplitAtEveryOffsetMatchesWhole) {
  const std::string samples[] = {
      "a\xC5\xBC"
      "b",                                 // 2-byte
      "\xE2\x82\xAC x \xE2\x82\xAC",       // 3-byte
      "\xF0\x9F\x98\x80\xF0\x9F\x98\x81",  // 4-byte
      "\xED\x9F\xBF\xEE\x80\x80",          // Around the surrogate gap.
      "\xF0\x90\x80\xC0!\x83\xE2\x82",     // Invalid mixes.
      "\xC3",                              // Lone lead.
      "\xE0\xA0\x80\xF4\x8F\xBF\xBF",      // Smallest 3-byte, largest 4-byte.
  };
  for (const std::string& text : samples) {
    std::string whole = Raw(text);
    for (size_t i = 0; i <= text.size(); ++i) {
      for (size_t j = i; j <= text.size(); ++j) {
        Utf8Stream s(Utf8Stream::Mode::kRaw);
        std::string out;
        s.Append(text.substr(0, i), &out);
        s.Append(text.substr(i, j - i), &out);
        s.Append(text.substr(j), &out);
        s.Finish(&out);
        EXPECT_EQ(out, whole) << "split at " << i << "," << j;
      }
    }
    // One byte at a time.
    Utf8Stream s(Utf8Stream::Mode::kJson);
    std::string out;
    for (char c : text) s.Append(std::string_view(&c, 1), &out);
    s.Finish(&out);
    EXPECT_EQ(out, Json(text));
  }
}

// Every code point's encoding, split at each offset, comes out whole.
TEST(Utf8Test, EveryMultibyteCodePointSurvivesEverySplit) {
  for (uint32_t cp = 0x80; cp <= 0x10FFFF; cp += (cp < 0x800 ? 1 : 61)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string enc;
    if (cp < 0x800) {
      enc = {static_cast<char>(0xC0 | cp >> 6),
             static_cast<char>(0x80 | (cp & 0x3F))};
    } else if (cp < 0x10000) {
      enc = {static_cast<char>(0xE0 | cp >> 12),
             static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
             static_cast<char>(0x80 | (cp & 0x3F))};
    } else {
      enc = {static_cast<char>(0xF0 | cp >> 18),
             static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
             static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
             static_cast<char>(0x80 | (cp & 0x3F))};
    }
    for (size_t i = 1; i < enc.size(); ++i) {
      Utf8Stream s(Utf8Stream::Mode::kRaw);
      std::string out;
      s.Append(enc.substr(0, i), &out);
      ASSERT_TRUE(out.empty());
      s.Append(enc.substr(i), &out);
      ASSERT_EQ(out, enc) << "code point " << cp << " split at " << i;
    }
  }
}

TEST(Utf8Test, JsonEscapesEveryControlByteQuoteBackslashAndDel) {
  std::string all;
  for (int c = 0; c < 0x20; ++c) all += static_cast<char>(c);
  all += "\"\\\x7f";
  std::string body = Json(all);
  // Only printable ASCII remains in the escaped body.
  for (unsigned char c : body) {
    EXPECT_GE(c, 0x20);
    EXPECT_LT(c, 0x7f);
  }
  EXPECT_NE(body.find("\\u001b"), std::string::npos);
  EXPECT_NE(body.find("\\u007f"), std::string::npos);
  EXPECT_NE(body.find("\\n"), std::string::npos);
  EXPECT_NE(body.find("\\\""), std::string::npos);
  EXPECT_NE(body.find("\\\\"), std::string::npos);
  // A strict JSON parser gives the bytes back.
  auto parsed = nlohmann::json::parse("\"" + body + "\"");
  EXPECT_EQ(parsed.get<std::string>(), all);
}

TEST(Utf8Test, JsonOutputIsAlwaysValidJson) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string body = Json(all + all);
  auto parsed = nlohmann::json::parse("\"" + body + "\"");  // Must not throw.
  EXPECT_EQ(parsed.get<std::string>().substr(0, 0x80), all.substr(0, 0x80));
}

}  // namespace
}  // namespace mez::record
