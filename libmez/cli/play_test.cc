#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "libmez/cli/commands.h"
#include "tests/test_util.h"

namespace mez::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kCast[] =
    "{\"version\": 2, \"width\": 80, \"height\": 24}\n"
    "[0.5, \"o\", \"hello \"]\n"
    "[1.0, \"o\", \"world\\r\\n\"]\n";

class CliPlayTest : public ::testing::Test {
 protected:
  PlayRecordingOptions Text(const std::string& target) {
    PlayRecordingOptions o;
    o.format = "text";
    o.target = target;
    return o;
  }
  mez::testing::TempDir dir_;
};

TEST_F(CliPlayTest, LocalFilePlaysToStdout) {
  std::string f = dir_.File("s.cast");
  mez::testing::WriteFileOrDie(f, kCast);
  ::testing::internal::CaptureStdout();
  Status s = PlayRecording(Text(f));
  std::string out = ::testing::internal::GetCapturedStdout();
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_THAT(out, HasSubstr("hello world"));
}

TEST_F(CliPlayTest, BadFlagsAreUsageErrors) {
  std::string f = dir_.File("s.cast");
  mez::testing::WriteFileOrDie(f, kCast);
  PlayRecordingOptions o = Text(f);
  o.format = "gif";
  EXPECT_EQ(PlayRecording(o).code(), Code::kInvalidArgument);
  o = Text(f);
  o.skip_idle = "soon";
  Status s = PlayRecording(o);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), ::testing::StartsWith("--skip-idle: "));
}

TEST_F(CliPlayTest, StdinPlainAndFlagErrors) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string cast =
      std::string(kCast) + "[1.5, \"o\", \"\\u001b[1mbold\\u001b[m\\r\\n\"]\n";
  ASSERT_EQ(write(fds[1], cast.data(), cast.size()),
            static_cast<ssize_t>(cast.size()));
  close(fds[1]);
  PlayRecordingOptions o = Text("-");
  o.strip = true;
  o.stdin_fd = fds[0];
  ::testing::internal::CaptureStdout();
  Status s = PlayRecording(o);
  std::string out = ::testing::internal::GetCapturedStdout();
  close(fds[0]);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(out, "hello world\nbold\n");

  std::string f = dir_.File("s.cast");
  mez::testing::WriteFileOrDie(f, kCast);
  struct Bad {
    const char* flag;
    std::string PlayRecordingOptions::*field;
    const char* value;
  };
  for (Bad bad :
       {Bad{"--speed: ", &PlayRecordingOptions::speed, "fast"},
        Bad{"--skip-idle: ", &PlayRecordingOptions::skip_idle, "-2"},
        Bad{"--start-at: ", &PlayRecordingOptions::start_at, "200%"}}) {
    o = Text(f);
    o.*bad.field = bad.value;
    s = PlayRecording(o);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad.flag;
    EXPECT_THAT(s.message(), ::testing::StartsWith(bad.flag));
  }
  o = Text(f);
  o.start_at = "50%";
  EXPECT_THAT(PlayRecording(o).message(), HasSubstr("--format=pty"));
  o = Text(f);
  o.format = "json";
  o.strip = true;
  EXPECT_EQ(PlayRecording(o).code(), Code::kInvalidArgument);
}

TEST_F(CliPlayTest, DamagedRecordingNamesTheFile) {
  std::string f = dir_.File("bad.cast");
  mez::testing::WriteFileOrDie(
      f, "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.5, \"o\"\n");
  ::testing::internal::CaptureStdout();
  Status s = PlayRecording(Text(f));
  ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(f));
}

TEST_F(CliPlayTest, MissingCastFileIsReportedNotLookedUp) {
  PlayRecordingOptions o = Text("nope.cast");
  // An identity that cannot be read: never needed for a local file.
  o.identity = dir_.File("no-identity.json");
  Status s = PlayRecording(o);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("nope.cast"));
  EXPECT_THAT(s.message(), Not(HasSubstr("no-identity")));
}

}  // namespace
}  // namespace mez::cli
