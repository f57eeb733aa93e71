#include "libmez/cli/output.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace mez::cli {
namespace {

std::string Render(const Table& t, bool tty, int width, bool header = true) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  t.Print(f, tty, width, 1, header);
  std::fclose(f);
  std::string s(buf, len);
  free(buf);
  return s;
}

TEST(TableTest, PipedOutputKeepsEveryCellWholeOnOneLine) {
  Table t({"ID", "STATUS", "COMMAND"});
  t.AddRow({"s1", "complete", "make -j8 all\nsecond line"});
  t.AddRow({"s2", "", std::string(200, 'x')});
  std::string out = Render(t, false, 40);
  EXPECT_EQ(out.find("\x1b["), std::string::npos);  // No colour.
  EXPECT_NE(out.find(std::string(200, 'x')), std::string::npos);
  EXPECT_NE(out.find("s2  -"), std::string::npos);  // Empty cell is "-".
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3);
}

TEST(TerminalSafeTest, ControlsAndBrokenUtf8AreShownNotActedOn) {
  // C0 (ESC, BEL), DEL, the C1 CSI and OSC as UTF-8, a lone 8-bit CSI.
  EXPECT_EQ(TerminalSafe("a\x1b[2Jb\x07"
                         "c\x7f"),
            "a\\x1b[2Jb\\x07c\\x7f");
  EXPECT_EQ(TerminalSafe("x\xc2\x9b"
                         "1m\xc2\x9d"
                         "0;t\xc2\x9c"),
            "x\\u009b1m\\u009d0;t\\u009c");
  EXPECT_EQ(TerminalSafe("\x9b"
                         "31m"),
            "\\x9b31m");
  // Overlong, surrogate and cut sequences are not UTF-8.
  EXPECT_EQ(TerminalSafe("\xc0\x9b"), "\\xc0\\x9b");
  EXPECT_EQ(TerminalSafe("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(TerminalSafe("ab\xe6\x97"), "ab\\xe6\\x97");
  // Text is left alone, UTF-8 included (U+00A0 and up).
  std::string text =
      "za\u017c\u00f3\u0142\u0107 \u65e5\u672c \U0001F600 \u00a0/x";
  EXPECT_EQ(TerminalSafe(text), text);
}

TEST(TableTest, CellsFromSessionsCannotDriveTheTerminal) {
  Table t({"TYPE", "DETAILS"});
  t.AddRow({"session.command",
            "argv=[\"printf\", \"\xc2\x9d"
            "52;c;SGVsbG8=\x07\"]"});
  for (bool tty : {false, true}) {
    std::string out = Render(t, tty, 200);
    EXPECT_EQ(out.find("\xc2\x9d"), std::string::npos) << out;
    EXPECT_EQ(out.find('\x07'), std::string::npos) << out;
    EXPECT_NE(out.find("\\u009d52;c;SGVsbG8=\\x07"), std::string::npos) << out;
  }
}

TEST(TableTest, TerminalOutputFitsTheWidthAndColoursStatus) {
  Table t({"ID", "STATUS", "COMMAND"});
  t.AddRow({"s1", "incomplete", std::string(200, 'x')});
  std::string out = Render(t, true, 60);
  EXPECT_NE(out.find("\x1b[31mincomplete\x1b[0m"), std::string::npos);
  size_t line_end = out.find('\n');
  EXPECT_LE(line_end, 60u);
  EXPECT_NE(out.find("\xE2\x80\xA6"), std::string::npos);  // Cut with "…".
}

TEST(TableTest, NarrowTerminalDropsColumnsBeforeCuttingWholeOnes) {
  std::string id(32, 'a');
  Table t({"SESSION ID", "STATUS", "USER", "STARTED", "LOGIN"});
  t.AddRow({id, "complete", "a-rather-long-user-name", "2026-12-07 22:14",
            "ubuntu"});
  t.KeepWhole({0, 3});
  t.DropFirst({4, 2});
  std::string out = Render(t, true, 70, false);
  EXPECT_EQ(out.rfind(id, 0), 0u) << out;  // First, whole, no header.
  EXPECT_NE(out.find("2026-12-07 22:14"), std::string::npos) << out;
  EXPECT_EQ(out.find("ubuntu"), std::string::npos) << out;  // Dropped first.
  EXPECT_NE(out.find("a-rathe\xE2\x80\xA6"), std::string::npos) << out;  // Cut.
  // 70 columns: 9 bytes of colour codes, "…" is 3 bytes.
  EXPECT_EQ(out.find('\n'), 70u + 9 + 2) << out;
  // Narrower still: the user goes too, the id and time never shrink.
  out = Render(t, true, 40, false);
  EXPECT_EQ(out.find("a-rathe"), std::string::npos) << out;
  EXPECT_NE(out.find(id + "  "), std::string::npos) << out;
  EXPECT_NE(out.find("2026-12-07 22:14"), std::string::npos) << out;
  // Piped: everything, whole, and the header only when asked.
  EXPECT_EQ(Render(t, false, 40, false).find("SESSION"), std::string::npos);
  EXPECT_EQ(Render(t, false, 40, true).rfind("SESSION ID", 0), 0u);
}

TEST(TimeTest, ShortDurationsAndTimes) {
  EXPECT_EQ(ShortDuration(754'000'000), "12m34s");
  EXPECT_EQ(ShortDuration(3'723'000'000), "1h02m03s");
  EXPECT_EQ(ShortDuration(45'000'000), "45s");
  EXPECT_EQ(ShortDuration(250'000), "0.25s");
  EXPECT_EQ(ShortDuration(-5), "0s");
  EXPECT_EQ(ShortUtc(1'763'800'000'000'000), "2025-11-22 08:26");
  EXPECT_EQ(ShortUtc(0), "-");
}

TEST(TimeTest, SinceAndUntilTakeDurationsBackFromNow) {
  int64_t since, until;
  const int64_t now = 100'000'000'000;
  ASSERT_TRUE(TimeWindow("", "24h", "1h", now, &since, &until).ok());
  EXPECT_EQ(since, now - 86'400'000'000);
  EXPECT_EQ(until, now - 3'600'000'000);
  auto bad = TimeWindow("", "yesterday", "", now, &since, &until);
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_NE(bad.message().find("duration"), std::string::npos);
}

TEST(TimeTest, IsoRoundTripAndWindows) {
  EXPECT_EQ(IsoUtc(1'763'800'000'000'000), "2025-11-22T08:26:40Z");
  EXPECT_EQ(IsoUtc(0), "-");
  EXPECT_EQ(*ParseIsoUtc("2025-11-22T08:26:40Z"), 1'763'800'000'000'000);
  EXPECT_EQ(*ParseIsoUtc("2025-11-22"), 1'763'769'600'000'000);
  EXPECT_FALSE(ParseIsoUtc("22/11/2025").ok());
  int64_t since, until;
  ASSERT_TRUE(TimeWindow("24h", "", "", 100'000'000'000, &since, &until).ok());
  EXPECT_EQ(since, 100'000'000'000 - 86'400'000'000);
  EXPECT_EQ(until, 0);
  EXPECT_FALSE(TimeWindow("1h", "2025-01-01", "", 0, &since, &until).ok());
  EXPECT_FALSE(
      TimeWindow("", "2025-01-02", "2025-01-01", 0, &since, &until).ok());
  EXPECT_EQ(ParseOutputFormat("yaml").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace mez::cli
