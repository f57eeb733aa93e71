#include "libmez/util/byte_size.h"

#include <gtest/gtest.h>

namespace mez {
namespace {

TEST(ByteSizeTest, ParsesOperatorForms) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("512K"), 512u << 10);
  EXPECT_EQ(*ParseByteSize("100M"), 100u << 20);
  EXPECT_EQ(*ParseByteSize("1G"), 1ULL << 30);
  EXPECT_EQ(*ParseByteSize("1GiB"), 1ULL << 30);
  EXPECT_EQ(*ParseByteSize("2TB"), 2ULL << 40);
  EXPECT_EQ(*ParseByteSize("0"), 0u);
}

TEST(ByteSizeTest, RefusesEverythingElse) {
  for (const char* bad : {"", "G", "-1", "1.5G", "1X", "1Gb ", "1GiBB",
                          "99999999999999999999", "20000000000T"}) {
    auto r = ParseByteSize(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("512K"), std::string::npos);
    }
  }
}

TEST(ByteSizeTest, FormatsTheLargestExactUnit) {
  EXPECT_EQ(FormatByteSize(1ULL << 30), "1G");
  EXPECT_EQ(FormatByteSize(3ULL << 20), "3M");
  EXPECT_EQ(FormatByteSize(1536), "1536");
  EXPECT_EQ(FormatByteSize(0), "0");
}

}  // namespace
}  // namespace mez
