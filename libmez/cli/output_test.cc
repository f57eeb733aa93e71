#include "libmez/cli/output.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace mez::cli {
namespace {

std::string Render(const Table& t, bool tty, int width) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  t.Print(f, tty, width, 1);
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

TEST(TableTest, TerminalOutputFitsTheWidthAndColoursStatus) {
  Table t({"ID", "STATUS", "COMMAND"});
  t.AddRow({"s1", "incomplete", std::string(200, 'x')});
  std::string out = Render(t, true, 60);
  EXPECT_NE(out.find("\x1b[31mincomplete\x1b[0m"), std::string::npos);
  size_t line_end = out.find('\n');
  EXPECT_LE(line_end, 60u);
  EXPECT_NE(out.find("\xE2\x80\xA6"), std::string::npos);  // Cut with "…".
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
