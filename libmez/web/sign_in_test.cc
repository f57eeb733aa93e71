#include "libmez/web/sign_in.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mez::web {
namespace {

constexpr int64_t kSecond = 1'000'000;

auth::Claims Alice(int64_t expires_at) {
  auth::Claims c;
  c.subject = "alice";
  c.role = auth::Role::kUser;
  c.uid = "0123456789abcdef0123456789abcdef";
  c.expires_at = expires_at;
  return c;
}

TEST(SignInStoreTest, CodeOpensOneSessionBoundToItsCaller) {
  FakeClock clock;
  SignInStore store(&clock, 60 * kSecond);
  int64_t now_s = clock.WallMicros() / kSecond;
  auto code = store.IssueCode(Alice(now_s + 3600));
  ASSERT_TRUE(code.ok()) << code.status().message();
  EXPECT_EQ(code->code.size(), 64u);
  EXPECT_EQ(code->expires_us, clock.WallMicros() + 60 * kSecond);

  auto got = store.Exchange(code->code);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->first.size(), 64u);
  EXPECT_EQ(got->second.caller.subject, "alice");
  EXPECT_EQ(got->second.csrf.size(), 64u);
  EXPECT_NE(got->second.csrf, got->first);
  // The session ends with the token (an hour), not the 12 h maximum.
  EXPECT_EQ(got->second.expires_us, (now_s + 3600) * kSecond);
  auto found = store.Find(got->first);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->caller.uid, Alice(0).uid);

  // Single use.
  auto again = store.Exchange(code->code);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kUnauthenticated);
  EXPECT_NE(again.status().message().find("already used"), std::string::npos);
}

TEST(SignInStoreTest, ExpiredAndUnknownCodesAreRefused) {
  FakeClock clock;
  SignInStore store(&clock, 60 * kSecond);
  auto code = store.IssueCode(Alice(0));
  ASSERT_TRUE(code.ok());
  clock.Advance(60 * kSecond);
  auto late = store.Exchange(code->code);
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.status().message().find("expired"), std::string::npos);

  auto unknown = store.Exchange(std::string(64, 'a'));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown"), std::string::npos);
  EXPECT_FALSE(store.Exchange("").ok());
}

TEST(SignInStoreTest, CodeJustBeforeItsExpiryWorks) {
  FakeClock clock;
  SignInStore store(&clock, 5 * kSecond);
  auto code = store.IssueCode(Alice(0));
  ASSERT_TRUE(code.ok());
  clock.Advance(5 * kSecond - 1);
  EXPECT_TRUE(store.Exchange(code->code).ok());
}

TEST(SignInStoreTest, SessionExpiresWithTheTokenAndEnds) {
  FakeClock clock;
  SignInStore store(&clock, 60 * kSecond);
  int64_t now_s = clock.WallMicros() / kSecond;
  auto code = store.IssueCode(Alice(now_s + 120));
  ASSERT_TRUE(code.ok());
  auto got = store.Exchange(code->code);
  ASSERT_TRUE(got.ok());
  clock.Advance(119 * kSecond);
  EXPECT_TRUE(store.Find(got->first).ok());
  clock.Advance(1 * kSecond);
  EXPECT_EQ(store.Find(got->first).status().code(), Code::kUnauthenticated);

  auto code2 = store.IssueCode(Alice(0));  // A token without expiry.
  ASSERT_TRUE(code2.ok());
  auto got2 = store.Exchange(code2->code);
  ASSERT_TRUE(got2.ok());
  EXPECT_EQ(got2->second.expires_us,
            clock.WallMicros() + SignInStore::kMaxSessionUs);
  store.End(got2->first);
  EXPECT_FALSE(store.Find(got2->first).ok());
}

TEST(SignInStoreTest, ExpiredTokenGetsNoCode) {
  FakeClock clock;
  SignInStore store(&clock, 60 * kSecond);
  auto code = store.IssueCode(Alice(clock.WallMicros() / kSecond - 1));
  EXPECT_FALSE(code.ok());
}

// One user signing in over and over (a script, an attacker with a user's
// identity) evicts only their own oldest codes and sessions: the store
// never fills up for everyone else.
TEST(SignInStoreTest, OneUserCannotFillTheStoreForOthers) {
  FakeClock clock;
  SignInStore store(&clock, 60 * kSecond);
  int64_t hour = clock.WallMicros() / kSecond + 3600;
  std::vector<std::string> codes, sessions;
  for (size_t i = 0; i < 3 * SignInStore::kMaxSessionsPerUser; ++i) {
    auto code = store.IssueCode(Alice(hour));
    ASSERT_TRUE(code.ok()) << code.status().message();
    codes.push_back(code->code);
  }
  // Only the newest kMaxCodesPerUser codes are good.
  size_t first_good = codes.size() - SignInStore::kMaxCodesPerUser;
  EXPECT_FALSE(store.Exchange(codes[first_good - 1]).ok());
  for (size_t i = first_good; i < codes.size(); ++i) {
    auto s = store.Exchange(codes[i]);
    ASSERT_TRUE(s.ok()) << i << ": " << s.status().message();
    sessions.push_back(s->first);
  }
  for (size_t i = 0; i < 3 * SignInStore::kMaxSessionsPerUser; ++i) {
    auto code = store.IssueCode(Alice(hour));
    ASSERT_TRUE(code.ok());
    auto s = store.Exchange(code->code);
    ASSERT_TRUE(s.ok()) << s.status().message();
    sessions.push_back(s->first);
  }
  // Alice's newest kMaxSessionsPerUser sessions live, older ones are gone.
  size_t live = 0;
  for (const std::string& id : sessions) live += store.Find(id).ok() ? 1 : 0;
  EXPECT_EQ(live, SignInStore::kMaxSessionsPerUser);
  EXPECT_TRUE(store.Find(sessions.back()).ok());
  EXPECT_FALSE(store.Find(sessions.front()).ok());
  // Bob is not affected.
  auth::Claims bob = Alice(hour);
  bob.subject = "bob";
  bob.uid = "fedcba9876543210fedcba9876543210";
  auto code = store.IssueCode(bob);
  ASSERT_TRUE(code.ok());
  auto s = store.Exchange(code->code);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->second.caller.subject, "bob");
}

}  // namespace
}  // namespace mez::web
