#include "libmez/spool/frame_enums.h"

#include <gtest/gtest.h>

namespace mez::spool {
namespace {

namespace pb = mezite::v1;

TEST(FrameEnumsTest, DirectionsRoundTrip) {
  for (Direction d : {Direction::kIn, Direction::kOut, Direction::kErr}) {
    EXPECT_EQ(DirectionFromProto(DirectionToProto(d)), d);
  }
  EXPECT_EQ(DirectionToProto(Direction::kIn), pb::DIRECTION_IN);
  EXPECT_EQ(DirectionToProto(Direction::kErr), pb::DIRECTION_ERR);
  // Unset, or a value from a newer peer: output.
  EXPECT_EQ(DirectionFromProto(pb::DIRECTION_UNSPECIFIED), Direction::kOut);
  EXPECT_EQ(DirectionFromProto(static_cast<pb::Direction>(77)),
            Direction::kOut);
}

TEST(FrameEnumsTest, KindsRoundTripAndUnknownIsRefused) {
  for (ChannelKind k :
       {ChannelKind::kShell, ChannelKind::kExec, ChannelKind::kTcpip}) {
    EXPECT_EQ(KindFromProto(KindToProto(k)), k);
  }
  EXPECT_EQ(KindToProto(ChannelKind::kTcpip), pb::SESSION_KIND_TCPIP);
  EXPECT_EQ(KindFromProto(pb::SESSION_KIND_UNSPECIFIED), std::nullopt);
  EXPECT_EQ(KindFromProto(4), std::nullopt);
  EXPECT_EQ(KindFromProto(-1), std::nullopt);
}

}  // namespace
}  // namespace mez::spool
