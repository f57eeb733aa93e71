#include "libmez/agent/transport.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mez::agent {
namespace {

using ::testing::HasSubstr;

constexpr char kPem[] =
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END "
    "CERTIFICATE-----\n";

TEST(NodeChannelCredentialsTest, WithoutCaOrInsecureRefusesPlaintext) {
  for (const char* addr : {"127.0.0.1:3025", "auth.example:3025"}) {
    auto c = NodeChannelCredentials(addr, "", false);
    ASSERT_FALSE(c.ok()) << addr;
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(c.status().message(), HasSubstr("--ca-file"));
  }
}

TEST(NodeChannelCredentialsTest, InsecureOnlyToLoopback) {
  for (const char* addr :
       {"127.0.0.1:3025", "127.9.8.7:1", "[::1]:3025", "localhost:3025"}) {
    EXPECT_TRUE(NodeChannelCredentials(addr, "", true).ok()) << addr;
  }
  for (const char* addr : {"10.0.0.5:3025", "auth.example:3025",
                           "[2001:db8::1]:3025", "0.0.0.0:3025"}) {
    auto c = NodeChannelCredentials(addr, "", true);
    ASSERT_FALSE(c.ok()) << addr;
    EXPECT_THAT(c.status().message(), HasSubstr("loopback"));
  }
}

TEST(NodeChannelCredentialsTest, CaFileGivesTlsAndContradictsInsecure) {
  EXPECT_TRUE(NodeChannelCredentials("auth.example:3025", kPem, false).ok());
  auto both = NodeChannelCredentials("127.0.0.1:3025", kPem, true);
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(both.status().message(), HasSubstr("contradict"));
}

}  // namespace
}  // namespace mez::agent
