// REP (CSI Ps b) never reaches libvterm, whose REP loops forever when no
// character of non-zero width came before: the screen shows what REP shows,
// and hostile input (a recording, a stored seek index's snapshot) cannot
// hang the player or mezrecd's indexer. Each case would hang without the
// guard where marked.
#include "libmez/play/rep_guard.h"

#include <gtest/gtest.h>

#include <string>

#include "libmez/play/screen.h"

namespace mez::play {
namespace {

std::string Row(const std::string& input, int row = 0, int cols = 80) {
  Screen s(24, cols);
  s.Feed(input);
  return s.RowText(row);
}

TEST(RepGuardTest, RepWithNothingBeforeIsDroppedNotHung) {
  EXPECT_EQ(Row("\033[b"), "");                            // Hung.
  EXPECT_EQ(Row("\033[H\033[2J\033[0m\033[b\0001H"), "");  // Hung (fuzz).
  EXPECT_EQ(Row("\033[5b"), "");                           // Hung.
  // Hung: a lone U+0301 has no width. What is shown does not matter.
  EXPECT_NE(Row("\xcc\x81\033[3bz").find('z'), std::string::npos);
  EXPECT_EQ(Row("\033]0;title\007\033[b"), "");  // Hung.
  Screen s(24, 80);
  s.Feed("ab");
  s.Load(Screen(24, 80).Snapshot(), 24, 80);  // A reset forgets 'b'.
  s.Feed("\033[b");
  EXPECT_EQ(s.RowText(0), "");
}

TEST(RepGuardTest, RepRepeatsTheLastCharacterToTheEndOfTheRow) {
  EXPECT_EQ(Row("ab\033[3b"), "abbbb");
  EXPECT_EQ(Row("ab\033[b"), "abb");
  EXPECT_EQ(Row("ab\033[0b"), "abb");
  EXPECT_EQ(Row("x\033[100b", 0, 10), "xxxxxxxxxx");
  EXPECT_EQ(Row("x\033[100b", 1, 10), "");  // Nothing wraps.
  EXPECT_EQ(Row("\xc3\xa9\033[2b"), "\xc3\xa9\xc3\xa9\xc3\xa9");
  EXPECT_EQ(Row("a\r\n\033[2b", 1), "aa");  // Controls do not count.
  EXPECT_EQ(Row("a\033(B\033[2b"), "aaa");  // Nor escape sequences.
  // Split across writes anywhere.
  Screen s(24, 80);
  for (std::string part : {"q", "\033", "[", "2", "b"}) s.Feed(part);
  EXPECT_EQ(s.RowText(0), "qqq");
}

TEST(RepGuardTest, OtherSequencesPassUnchanged) {
  EXPECT_EQ(Row("a\033[?5b"), "a");  // Not REP.
  EXPECT_EQ(Row("\033[1;31mred\033[m"), "red");
  EXPECT_EQ(Row("abc\033[2Dx"), "axc");
  EXPECT_EQ(Row("a\033[2\033[3Cb"), "a   b");  // A CSI cut by a new one.
  // A CSI longer than any real one is dropped whole, REP or not.
  EXPECT_EQ(Row("a\033[" + std::string(300, '1') + "bz"), "az");
  // A C0 control inside a REP is executed, then REP applies.
  EXPECT_EQ(Row("ab\033[2\rb"), "bb");
}

}  // namespace
}  // namespace mez::play
