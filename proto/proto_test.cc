#include <gtest/gtest.h>

#include "mezite/v1/recording.pb.h"

namespace {

// The frame oneof round-trips through the wire format, so the generated
// target is linked and usable.
TEST(ProtoTest, RecordFrameRoundTrip) {
  mezite::v1::RecordFrame frame;
  auto* chunk = frame.mutable_chunk();
  chunk->set_offset_us(1234);
  chunk->set_direction(mezite::v1::DIRECTION_OUT);
  chunk->set_data(std::string("\x00\xff", 2));
  std::string wire;
  ASSERT_TRUE(frame.SerializeToString(&wire));
  mezite::v1::RecordFrame back;
  ASSERT_TRUE(back.ParseFromString(wire));
  ASSERT_EQ(back.frame_case(), mezite::v1::RecordFrame::kChunk);
  EXPECT_EQ(back.chunk().offset_us(), 1234);
  EXPECT_EQ(back.chunk().data(), std::string("\x00\xff", 2));
  EXPECT_FALSE(back.ParseFromString("\xff\xff\xff"));
}

}  // namespace
