#include "libmez/util/stream.h"

#include <gtest/gtest.h>

namespace mez {
namespace {

TEST(StreamTest, KindNamesRoundTrip) {
  for (ChannelKind k :
       {ChannelKind::kShell, ChannelKind::kExec, ChannelKind::kTcpip}) {
    EXPECT_EQ(ParseChannelKind(ChannelKindName(k)), k);
  }
  EXPECT_EQ(ChannelKindName(ChannelKind::kTcpip), "tcpip");
  EXPECT_EQ(ParseChannelKind("Shell"), std::nullopt);
  EXPECT_EQ(ParseChannelKind(""), std::nullopt);
  EXPECT_EQ(ParseChannelKind("?"), std::nullopt);
}

TEST(StreamTest, DirectionNames) {
  EXPECT_EQ(DirectionName(Direction::kIn), "in");
  EXPECT_EQ(DirectionName(Direction::kOut), "out");
  EXPECT_EQ(DirectionName(Direction::kErr), "err");
}

}  // namespace
}  // namespace mez
