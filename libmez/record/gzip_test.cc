#include "libmez/record/gzip.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace mez::record {
namespace {

std::string ReadAll(ByteSource* src) {
  std::string out;
  char buf[997];
  for (;;) {
    auto n = src->Read(buf, sizeof(buf));
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok() || *n == 0) break;
    out.append(buf, *n);
  }
  return out;
}

std::string Text(size_t n) {
  std::mt19937 rng(7);
  std::string s;
  while (s.size() < n) {
    s += "\x1b[32mline " + std::to_string(rng() % 100000) + "\x1b[0m ok\r\n";
  }
  s.resize(n);
  return s;
}

TEST(GzipTest, RoundTripThroughSinkAndSource) {
  std::string text = Text(300000);
  auto gz = GzipBytes(text);
  ASSERT_TRUE(gz.ok());
  EXPECT_LT(gz->size(), text.size() / 3);
  auto src = OpenRecordingBytes(*gz);
  EXPECT_EQ(ReadAll(src.get()), text);
  // Plain bytes pass through the same opener untouched.
  EXPECT_EQ(ReadAll(OpenRecordingBytes(text).get()), text);
}

TEST(GzipTest, FlushesAfterTheIntervalSoAPrefixDecompresses) {
  FakeClock clock;
  auto below = std::make_unique<StringSink>();
  StringSink* raw = below.get();
  GzipOptions opt;
  opt.clock = &clock;
  auto gz = GzipSink::Create(std::move(below), opt);
  ASSERT_TRUE(gz.ok());
  ASSERT_TRUE((*gz)->Append("first part\n").ok());
  // Nothing is forced out before the interval.
  std::string early = raw->data();
  clock.Advance(999'999);
  ASSERT_TRUE((*gz)->Tick().ok());
  EXPECT_EQ(raw->data(), early);
  clock.Advance(1);
  ASSERT_TRUE((*gz)->Tick().ok());
  // The bytes so far (the process could die now) decompress: each flush
  // ends a complete gzip member.
  GunzipSource src(std::make_unique<StringSource>(raw->data()));
  EXPECT_EQ(ReadAll(&src), "first part\n");
  EXPECT_FALSE(src.truncated());
  // Append also flushes once the interval has passed.
  ASSERT_TRUE((*gz)->Append("second ").ok());
  clock.Advance(1'500'000);
  ASSERT_TRUE((*gz)->Append("part\n").ok());
  GunzipSource src2(std::make_unique<StringSource>(raw->data()));
  EXPECT_EQ(ReadAll(&src2), "first part\nsecond part\n");
  ASSERT_TRUE((*gz)->Close().ok());
  auto whole = GunzipBytes(raw->data());
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(*whole, "first part\nsecond part\n");
}

TEST(GzipTest, CutAtEveryByteYieldsAPrefix) {
  std::string text = Text(20000);
  auto below = std::make_unique<StringSink>();
  StringSink* raw = below.get();
  auto gz = GzipSink::Create(std::move(below));
  ASSERT_TRUE(gz.ok());
  std::set<size_t> member_ends;  // File offsets where a member ends.
  for (size_t i = 0; i < text.size(); i += 1000) {
    ASSERT_TRUE((*gz)->Append(text.substr(i, 1000)).ok());
    ASSERT_TRUE((*gz)->Flush().ok());
    member_ends.insert(raw->data().size());
  }
  ASSERT_TRUE((*gz)->Close().ok());
  const std::string& file = raw->data();
  size_t last = 0;
  for (size_t cut = 0; cut <= file.size(); ++cut) {
    GunzipSource src(std::make_unique<StringSource>(file.substr(0, cut)));
    std::string got = ReadAll(&src);
    ASSERT_EQ(got, text.substr(0, got.size())) << "cut " << cut;
    ASSERT_GE(got.size(), last) << "cut " << cut;
    last = got.size();
    // Cut inside a member: flagged truncated; at a member's end: clean.
    EXPECT_EQ(src.truncated(), member_ends.count(cut) == 0) << "cut " << cut;
  }
  EXPECT_EQ(last, text.size());
}

TEST(GzipTest, ConcatenatedMembersAndCorruption) {
  std::string a = *GzipBytes("alpha ");
  std::string b = *GzipBytes("beta");
  auto both = GunzipBytes(a + b);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(*both, "alpha beta");
  std::string bad = a;
  bad[bad.size() / 2] ^= 0x55;
  bad[bad.size() / 2 + 1] ^= 0x55;
  EXPECT_FALSE(GunzipBytes(bad).ok());
}

}  // namespace
}  // namespace mez::record
