#include "libmez/util/host_port.h"

#include <gtest/gtest.h>

namespace mez {
namespace {

TEST(HostPortTest, SplitsHostAndPort) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(SplitHostPort("auth.example:3025", &host, &port).ok());
  EXPECT_EQ(host, "auth.example");
  EXPECT_EQ(port, 3025);
  ASSERT_TRUE(SplitHostPort("[::1]:0", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  for (const char* bad : {"", "host", ":22", "::1:22", "[::1]", "[]:22",
                          "h:65536", "h:22x", "h:", "h:123456"}) {
    Status s = SplitHostPort(bad, &host, &port);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
  }
}

TEST(HostPortTest, ListenAddresses) {
  for (const char* ok : {"127.0.0.1:3025", "0.0.0.0:0", "[::]:3025"}) {
    EXPECT_TRUE(ValidateListenAddress(ok).ok()) << ok;
  }
  for (const char* bad : {"127.0.0.1", "::1:3025", "h:70000", ""}) {
    Status s = ValidateListenAddress(bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("must be HOST:PORT"), std::string::npos)
        << s.message();
  }
}

TEST(HostPortTest, LoopbackHosts) {
  for (const char* yes : {"127.0.0.1:3025", "127.9.8.7:1", "[::1]:3025",
                          "localhost:3025", "localhost", "::1"}) {
    EXPECT_TRUE(IsLoopbackHost(yes)) << yes;
  }
  for (const char* no :
       {"10.0.0.5:3025", "auth.example:3025", "[2001:db8::1]:3025",
        "0.0.0.0:3025", "localhost.evil:1", "128.0.0.1:1"}) {
    EXPECT_FALSE(IsLoopbackHost(no)) << no;
  }
}

}  // namespace
}  // namespace mez
