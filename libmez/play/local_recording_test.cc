#include "libmez/play/local_recording.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <memory>
#include <string>

#include "libmez/play/seek_index_file.h"
#include "libmez/record/asciicast_writer.h"
#include "libmez/record/seal.h"
#include "libmez/record/sink.h"
#include "libmez/util/clock.h"
#include "tests/test_util.h"

namespace mez::play {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::map<std::string, std::string> g_env;

const char* FakeGetenv(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

// A one-event asciicast, sealed with `key` when one is given.
std::string Cast(const std::string& text, std::optional<std::string> key) {
  auto sink = std::make_unique<record::StringSink>();
  record::StringSink* raw = sink.get();
  FakeClock clock;
  record::AsciicastOptions options;
  options.clock = &clock;
  options.key = key;
  options.session_id = "s1";
  record::AsciicastHeader header;
  header.width = 80;
  header.height = 24;
  auto w = record::AsciicastWriter::Create(std::move(sink), header, options);
  EXPECT_TRUE(w.ok()) << w.status().message();
  EXPECT_TRUE((*w)->Write(0, Direction::kOut, text).ok());
  EXPECT_TRUE((*w)->Close().ok());
  return raw->data();
}

class PlayLocalRecordingTest : public ::testing::Test {
 protected:
  void SetUp() override { g_env.clear(); }
  mez::testing::TempDir dir_;
};

TEST_F(PlayLocalRecordingTest, SessionIdsAreNotLocal) {
  EXPECT_FALSE(IsLocalRecording("2f1c9d0e-aaaa-bbbb-cccc-000000000001"));
  EXPECT_FALSE(IsLocalRecording("s1"));
  EXPECT_FALSE(IsLocalRecording("session.castle"));
}

TEST_F(PlayLocalRecordingTest, FilesPathsAndCastNamesAreLocal) {
  // A cast name or a path is local even when missing (reported as such).
  EXPECT_TRUE(IsLocalRecording("missing.cast"));
  EXPECT_TRUE(IsLocalRecording("missing.cast.gz"));
  EXPECT_TRUE(IsLocalRecording("./s1"));
  EXPECT_TRUE(IsLocalRecording(dir_.File("nothing-here")));
  // An existing regular file, whatever its name (relative to the cwd).
  std::string cwd_file = "play_local_recording_test_s2";
  mez::testing::WriteFileOrDie(cwd_file, Cast("x", std::nullopt));
  EXPECT_TRUE(IsLocalRecording(cwd_file));
  std::remove(cwd_file.c_str());
  EXPECT_FALSE(IsLocalRecording(cwd_file));
  // A directory by a plain name is not a recording file.
  ASSERT_EQ(mkdir(cwd_file.c_str(), 0700), 0);
  EXPECT_FALSE(IsLocalRecording(cwd_file));
  rmdir(cwd_file.c_str());
}

TEST_F(PlayLocalRecordingTest, PlainFileOpensWithoutKey) {
  std::string f = dir_.File("a.cast");
  mez::testing::WriteFileOrDie(f, Cast("hello", std::nullopt));
  auto src = OpenLocalRecording(f, &FakeGetenv);
  ASSERT_TRUE(src.ok()) << src.status().message();
  EXPECT_TRUE((*src)->size().has_value());
}

TEST_F(PlayLocalRecordingTest, EncryptedFileTakesTheKeyFromTheEnvironment) {
  std::string key(record::kKeySize, '\x42');
  std::string f = dir_.File("e.cast");
  mez::testing::WriteFileOrDie(f, Cast("secret", key));

  auto without = OpenLocalRecording(f, &FakeGetenv);
  ASSERT_FALSE(without.ok());
  EXPECT_THAT(without.status().message(),
              HasSubstr("MEZITE_RECORDING_ENC_KEY"));

  std::string hex;
  for (size_t i = 0; i < record::kKeySize; ++i) hex += "42";
  g_env["MEZITE_RECORDING_ENC_KEY"] = hex;
  auto with = OpenLocalRecording(f, &FakeGetenv);
  EXPECT_TRUE(with.ok()) << with.status().message();

  g_env["MEZITE_RECORDING_ENC_KEY"] = std::string(64, '0');
  EXPECT_FALSE(OpenLocalRecording(f, &FakeGetenv).ok());
}

TEST_F(PlayLocalRecordingTest, MalformedKeyNamesTheVariableNotTheKey) {
  std::string f = dir_.File("a.cast");
  mez::testing::WriteFileOrDie(f, Cast("hello", std::nullopt));
  g_env["MEZITE_RECORDING_ENC_KEY"] = "abcd-not-hex";
  auto src = OpenLocalRecording(f, &FakeGetenv);
  ASSERT_FALSE(src.ok());
  EXPECT_EQ(src.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(src.status().message(), HasSubstr("MEZITE_RECORDING_ENC_KEY: "));
  EXPECT_THAT(src.status().message(), Not(HasSubstr("abcd-not-hex")));
  // Empty is unset.
  g_env["MEZITE_RECORDING_ENC_KEY"] = "";
  EXPECT_TRUE(OpenLocalRecording(f, &FakeGetenv).ok());
}

TEST_F(PlayLocalRecordingTest, MissingFileIsNamed) {
  auto src = OpenLocalRecording(dir_.File("gone.cast"), &FakeGetenv);
  ASSERT_FALSE(src.ok());
  EXPECT_THAT(src.status().message(), HasSubstr("gone.cast"));
}

// mezrecd's local storage keeps `<session>.cast.seek` beside a recording:
// playing the file straight from there uses it; a damaged one, or one
// sealed for another session, is an error (the player then indexes by
// itself), never a silent wrong index.
TEST_F(PlayLocalRecordingTest, TheSeekIndexBesideTheFileIsUsed) {
  std::string f = dir_.File("s1.cast");
  mez::testing::WriteFileOrDie(f, Cast("hello\r\n", std::nullopt));
  auto src = OpenLocalRecording(f, &FakeGetenv);
  ASSERT_TRUE(src.ok()) << src.status().message();
  auto none = (*src)->StoredSeekIndex();
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_FALSE(none->has_value());

  auto index =
      BuildSeekIndex(src->get(), StoredSeekIndexOptions(), std::nullopt);
  ASSERT_TRUE(index.ok()) << index.status().message();
  std::string body = SerializeSeekIndex(*index);
  auto plain = EncodeSeekIndexFile(body, std::nullopt, "s1");
  ASSERT_TRUE(plain.ok());
  mez::testing::WriteFileOrDie(f + ".seek", *plain);
  auto got = (*src)->StoredSeekIndex();
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, body);

  mez::testing::WriteFileOrDie(f + ".seek", "mezite-seek but not really");
  auto bad = (*src)->StoredSeekIndex();
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("s1.cast.seek"));
}

TEST_F(PlayLocalRecordingTest, ASealedSeekIndexIsBoundToTheFilesSession) {
  std::string key(record::kKeySize, '\x42');
  std::string hex;
  for (size_t i = 0; i < record::kKeySize; ++i) hex += "42";
  g_env["MEZITE_RECORDING_ENC_KEY"] = hex;
  std::string f = dir_.File("s1.cast");
  mez::testing::WriteFileOrDie(f, Cast("secret\r\n", key));
  auto src = OpenLocalRecording(f, &FakeGetenv);
  ASSERT_TRUE(src.ok()) << src.status().message();
  auto index =
      BuildSeekIndex(src->get(), StoredSeekIndexOptions(), std::nullopt);
  ASSERT_TRUE(index.ok()) << index.status().message();
  std::string body = SerializeSeekIndex(*index);

  auto sealed = EncodeSeekIndexFile(body, key, "s1");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->find("secret"), std::string::npos);
  mez::testing::WriteFileOrDie(f + ".seek", *sealed);
  auto got = (*src)->StoredSeekIndex();
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, body);

  // Another session's index copied beside this recording.
  auto other = EncodeSeekIndexFile(body, key, "s2");
  ASSERT_TRUE(other.ok());
  mez::testing::WriteFileOrDie(f + ".seek", *other);
  EXPECT_FALSE((*src)->StoredSeekIndex().ok());
  // A plain index beside an encrypted recording is refused too.
  auto unsealed = EncodeSeekIndexFile(body, std::nullopt, "s1");
  ASSERT_TRUE(unsealed.ok());
  mez::testing::WriteFileOrDie(f + ".seek", *unsealed);
  EXPECT_FALSE((*src)->StoredSeekIndex().ok());
}

}  // namespace
}  // namespace mez::play
