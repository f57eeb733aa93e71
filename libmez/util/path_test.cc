#include "libmez/util/path.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace mez {
namespace {

class PathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mez_path_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string dir_;
};

TEST_F(PathTest, JoinsPlainRelativePaths) {
  auto r = SafeJoin(dir_, "alice/shell/s1.cast");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, dir_ + "/alice/shell/s1.cast");
}

TEST_F(PathTest, RefusesEscapes) {
  const char* bad[] = {"..",   "../x",     "a/../../x", "/etc/passwd",
                       "a//b", "a/./b",    "a/",        "",
                       "./a",  "alice/..", "a/.."};
  for (const char* rel : bad) {
    auto r = SafeJoin(dir_, rel);
    EXPECT_FALSE(r.ok()) << "accepted '" << rel << "'";
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << rel;
  }
}

TEST_F(PathTest, RefusesNulAndOverlongComponents) {
  std::string nul("a\0b", 3);
  EXPECT_FALSE(SafeJoin(dir_, nul).ok());
  std::string longname(256, 'a');
  auto r = SafeJoin(dir_, longname);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("255"), std::string::npos);
  EXPECT_TRUE(SafeJoin(dir_, std::string(255, 'a')).ok());
}

TEST_F(PathTest, RefusesSymlinkEscape) {
  ASSERT_EQ(mkdir((dir_ + "/alice").c_str(), 0750), 0);
  ASSERT_EQ(symlink("/tmp", (dir_ + "/alice/shell").c_str()), 0);
  auto r = SafeJoin(dir_, "alice/shell/s1.cast");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("symlink"), std::string::npos);
  // A symlink as the final component is refused as well.
  ASSERT_EQ(symlink("/etc/passwd", (dir_ + "/alice/x.cast").c_str()), 0);
  EXPECT_FALSE(SafeJoin(dir_, "alice/x.cast").ok());
  EXPECT_FALSE(SafeMakeDirs(dir_, "alice/shell").ok());
}

TEST_F(PathTest, MakeDirsCreatesTheTree) {
  auto r = SafeMakeDirs(dir_, "bob/tcpip");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/bob/tcpip").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(SafeMakeDirs(dir_, "bob/tcpip").ok());  // Idempotent.
}

TEST(IdentifierTest, AcceptsOnlyPlainIdentifiers) {
  EXPECT_TRUE(IsPlainIdentifier("alice"));
  EXPECT_TRUE(IsPlainIdentifier("3f2a-9c_01.x"));
  EXPECT_FALSE(IsPlainIdentifier(""));
  EXPECT_FALSE(IsPlainIdentifier(".."));
  EXPECT_FALSE(IsPlainIdentifier(".hidden"));
  EXPECT_FALSE(IsPlainIdentifier("-rf"));
  EXPECT_FALSE(IsPlainIdentifier("a/b"));
  EXPECT_FALSE(IsPlainIdentifier("a b"));
  EXPECT_FALSE(IsPlainIdentifier(std::string("a\0b", 3)));
  EXPECT_FALSE(IsPlainIdentifier(std::string(129, 'a')));
  EXPECT_TRUE(IsPlainIdentifier(std::string(128, 'a')));
}

}  // namespace
}  // namespace mez
