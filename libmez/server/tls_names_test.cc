#include "libmez/server/tls_names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mez::server {
namespace {

using ::testing::ElementsAre;

const HostFacts kHost{"auth1.example", {"10.0.0.5", "2001:db8::5"}};

TEST(ServerCertNamesTest, AListenHostIsNamedAndTheMachineIsNot) {
  EXPECT_THAT(ServerCertNames("10.0.0.5:3025", {}, kHost),
              ElementsAre("10.0.0.5"));
  EXPECT_THAT(ServerCertNames("[::1]:3025", {"auth.example"}, kHost),
              ElementsAre("::1", "auth.example"));
}

TEST(ServerCertNamesTest, AWildcardListenNamesTheMachine) {
  // A node told --auth auth1.example:3025 or 10.0.0.5:3025 checks the
  // certificate against that host: both must be in it.
  EXPECT_THAT(ServerCertNames("0.0.0.0:3025", {}, kHost),
              ElementsAre("auth1.example", "10.0.0.5", "2001:db8::5"));
  EXPECT_THAT(ServerCertNames("[::]:3025", {"lb.example", "10.0.0.5"}, kHost),
              ElementsAre("lb.example", "10.0.0.5", "auth1.example",
                          "2001:db8::5"));
}

TEST(ServerCertNamesTest, AHostNameACertificateCannotHoldIsLeftOut) {
  HostFacts odd{"my host,DNS:evil", {}};
  EXPECT_THAT(ServerCertNames("0.0.0.0:3025", {}, odd), ElementsAre());
}

TEST(ServerCertNamesTest, ThisHostListsNoLoopbackAddress) {
  HostFacts me = ThisHost();
  for (const std::string& a : me.addresses) {
    EXPECT_NE(a, "127.0.0.1");
    EXPECT_NE(a, "::1");
    EXPECT_NE(a.rfind("fe80:", 0), 0u) << a;
  }
}

}  // namespace
}  // namespace mez::server
