#include "libmez/settings/settings.h"

#include <gtest/gtest.h>

namespace mez::settings {
namespace {

TEST(SettingsTest, SessionRecordingAllowsTheThreeModesAndDefaultsToNodeSync) {
  const Setting* s = Find(kSessionRecording);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->default_value, "node-sync");
  EXPECT_EQ(AllowedList(*s), "node-sync, node, off");
  EXPECT_FALSE(s->help.empty());
  for (const char* v : {"node-sync", "node", "off"}) {
    EXPECT_TRUE(Validate(kSessionRecording, v).ok()) << v;
  }
  EXPECT_EQ(DefaultValue(kSessionRecording), "node-sync");
}

TEST(SettingsTest, BadValueNamesTheChoices) {
  Status s = Validate("session_recording", "sometimes");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "session_recording must be one of node-sync, node, off (got "
            "'sometimes')");
  EXPECT_FALSE(Validate("session_recording", "").ok());
  EXPECT_FALSE(Validate("session_recording", "Node").ok());
}

TEST(SettingsTest, UnknownKeyNamesTheKnownOnes) {
  Status s = Validate("proxy.addr", "127.0.0.1:1");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "unknown setting 'proxy.addr' (known: session_recording)");
  EXPECT_EQ(CheckKey("nope").code(), Code::kInvalidArgument);
  EXPECT_TRUE(CheckKey("session_recording").ok());
  EXPECT_EQ(Find("nope"), nullptr);
  EXPECT_EQ(DefaultValue("nope"), std::nullopt);
}

TEST(SettingsTest, ClientCheckLeavesUnknownKeysToTheServer) {
  EXPECT_TRUE(CheckValueIfKnown("future_setting", "x").ok());
  EXPECT_TRUE(CheckValueIfKnown("session_recording", "off").ok());
  EXPECT_EQ(CheckValueIfKnown("session_recording", "x").code(),
            Code::kInvalidArgument);
}

TEST(SettingsTest, EveryDefaultIsAllowed) {
  ASSERT_FALSE(All().empty());
  for (const Setting& s : All()) {
    EXPECT_TRUE(Validate(s.key, s.default_value).ok()) << s.key;
    EXPECT_EQ(Find(s.key), &s);
  }
}

}  // namespace
}  // namespace mez::settings
