// msh play's values as asciinema and tsh users type them, and the plain
// output that grep can read.
#include "libmez/play/flags.h"

#include <gtest/gtest.h>

#include <string>

#include "libmez/play/output.h"
#include "libmez/play/play_test_util.h"
#include "libmez/play/timing.h"

namespace mez::play {
namespace {

TEST(FlagsTest, Speed) {
  EXPECT_EQ(*ParseSpeed("2"), 2);
  EXPECT_EQ(*ParseSpeed("2x"), 2);
  EXPECT_EQ(*ParseSpeed("0.5X"), 0.5);
  EXPECT_EQ(*ParseSpeed("1000"), 1000);
  for (const char* bad :
       {"0", "-1", "x", "", "2y", "inf", "nan", "+2", "1001", "1e308", "2 x"}) {
    SCOPED_TRACE(bad);
    auto r = ParseSpeed(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    // Short and to the point: no range printed digit by digit.
    EXPECT_LT(r.status().message().size(), 80u) << r.status().message();
  }
  EXPECT_EQ(ParseSpeed("1001").status().message(),
            "'1001' is too fast (at most 1000x)");
}

TEST(FlagsTest, IdleLimitTakesBareSecondsDurationsAndOff) {
  EXPECT_EQ(*ParseIdleLimit("2"), 2'000'000);
  EXPECT_EQ(*ParseIdleLimit("0.5"), 500'000);
  EXPECT_EQ(*ParseIdleLimit("0"), 0);
  EXPECT_EQ(*ParseIdleLimit("500ms"), 500'000);
  EXPECT_EQ(*ParseIdleLimit("1m30s"), 90'000'000);
  EXPECT_EQ(*ParseIdleLimit("off"), kNoIdleLimit);
  for (const char* bad : {"-1", "soon", "5y", "1e300", "", "400d"}) {
    SCOPED_TRACE(bad);
    auto r = ParseIdleLimit(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_LT(r.status().message().size(), 120u) << r.status().message();
  }
}

TEST(FlagsTest, StartAtTimeOrPercent) {
  EXPECT_EQ(*ParseStartAt("90")->time_us, 90'000'000);
  EXPECT_EQ(*ParseStartAt("1m30s")->time_us, 90'000'000);
  EXPECT_EQ(*ParseStartAt("50%")->percent, 50);
  EXPECT_FALSE(ParseStartAt("50%")->time_us.has_value());
  EXPECT_FALSE(ParseStartAt("101%").ok());
  EXPECT_FALSE(ParseStartAt("%").ok());
  EXPECT_FALSE(ParseStartAt("later").ok());
}

TEST(IdleLimitTest, HeaderLimitUnlessOverridden) {
  std::string cast =
      "{\"version\": 2, \"width\": 80, \"height\": 24, "
      "\"idle_time_limit\": 0.5}\n"
      "[0, \"o\", \"a\"]\n[10, \"o\", \"b\"]\n";
  auto times = [&](std::optional<int64_t> cap) {
    MemorySource src(cast);
    record::StringSink sink;
    auto out = NewJsonOutput(&sink);
    BatchOptions o;
    o.idle_cap_us = cap;
    EXPECT_TRUE(RunBatch(&src, o, out.get()).ok());
    return sink.data();
  };
  // As asciinema: the 10 s gap plays as 0.5 s.
  EXPECT_NE(times(std::nullopt)
                .find("{\"time\": 0.500000, \"code\": \"o\", "
                      "\"data\": \"b\"}"),
            std::string::npos);
  EXPECT_NE(times(2'000'000).find("{\"time\": 2.000000"), std::string::npos);
  EXPECT_NE(times(kNoIdleLimit).find("{\"time\": 10.000000"),
            std::string::npos);
  // The interactive player too.
  PlayerRig rig(cast);
  rig.Tick();
  rig.clock.Advance(500'000);
  rig.Tick();
  rig.TakeOut();
  EXPECT_EQ(rig.ViewRow(0), "ab");
}

// A cast written with the header's limit applied has no stale duration; one
// written with a limit given drops the header's, whose times it replaced.
TEST(IdleLimitTest, CastOutputHeader) {
  std::string cast =
      "{\"version\": 2, \"width\": 80, \"height\": 24, \"duration\": 10.0, "
      "\"idle_time_limit\": 0.5}\n"
      "[0, \"o\", \"a\"]\n[10, \"o\", \"b\"]\n";
  auto header = [&](std::optional<int64_t> cap) {
    MemorySource src(cast);
    record::StringSink sink;
    auto out = NewCastOutput(&sink, cap.has_value(), cap.has_value());
    BatchOptions o;
    o.idle_cap_us = cap;
    EXPECT_TRUE(RunBatch(&src, o, out.get()).ok());
    return sink.data().substr(0, sink.data().find('\n'));
  };
  std::string h = header(std::nullopt);
  EXPECT_EQ(h.find("duration"), std::string::npos) << h;
  EXPECT_NE(h.find("\"idle_time_limit\":0.5"), std::string::npos) << h;
  h = header(kNoIdleLimit);
  EXPECT_EQ(h.find("idle_time_limit"), std::string::npos) << h;
  EXPECT_EQ(h.find("duration"), std::string::npos) << h;
}

TEST(PlainOutputTest, DropsEscapesEvenWhenSplit) {
  MemorySource src(MakeCast({
      {0, "\033[1;31mred\033[0m text\r\n"},
      {1, "\033]0;title\007osc gone\r"},
      {2, "\nsplit \033["},
      {3, "32mcsi\033(B and \033]8;;http://x\033\\link\033]8;;\033\\\r\n"},
      {4, "tab\there\bbell\007\rprogress 50%\rprogress 100%\r\n"},
  }));
  record::StringSink sink;
  auto out = NewPlainOutput(&sink);
  ASSERT_TRUE(RunBatch(&src, BatchOptions{}, out.get()).ok());
  EXPECT_EQ(sink.data(),
            "red text\nosc gone\nsplit csi and link\n"
            "tab\therebell\nprogress 50%\nprogress 100%\n");
}

}  // namespace
}  // namespace mez::play
