#include "libmez/util/duration.h"

#include <gtest/gtest.h>

#include <atomic>

#include "libmez/util/thread_pool.h"

namespace mez {
namespace {

TEST(DurationTest, ParsesOperatorForms) {
  EXPECT_EQ(*ParseDuration("500ms"), 500'000);
  EXPECT_EQ(*ParseDuration("30s"), 30'000'000);
  EXPECT_EQ(*ParseDuration("5m"), 300'000'000);
  EXPECT_EQ(*ParseDuration("24h"), 86'400'000'000);
  EXPECT_EQ(*ParseDuration("7d"), 7 * 86'400'000'000);
  EXPECT_EQ(*ParseDuration("1h30m"), 5'400'000'000);
  EXPECT_EQ(*ParseDuration("250us"), 250);
}

TEST(DurationTest, RejectsWithExamples) {
  for (const char* bad :
       {"", "5", "m", "5x", "-5s", "1.5h", "99999999999999999999s"}) {
    auto r = ParseDuration(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("examples"), std::string::npos);
  }
}

TEST(DurationTest, FormatsTheShortestExactForm) {
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(90'000'000), "1m30s");
  EXPECT_EQ(FormatDuration(1500), "1ms500us");
  EXPECT_EQ(*ParseDuration(FormatDuration(93'784'005'006)), 93'784'005'006);
}

TEST(ThreadPoolTest, RunsEveryTaskBeforeDestruction) {
  std::atomic<int> sum{0};
  {
    ThreadPool pool(3);
    for (int i = 1; i <= 1000; ++i) pool.Submit([&sum, i] { sum += i; });
  }
  EXPECT_EQ(sum.load(), 500500);
}

}  // namespace
}  // namespace mez
