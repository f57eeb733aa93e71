#include "libmez/util/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

namespace mez {
namespace {

TEST(FileTest, AtomicWriteReplacesContentAndSetsMode) {
  char tmpl[] = "/tmp/mez_file_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string path = dir + "/key";
  ASSERT_TRUE(AtomicWriteFile(path, "first", 0600).ok());
  ASSERT_TRUE(AtomicWriteFile(path, "second", 0600).ok());
  auto content = ReadFile(path);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "second");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temporary files are left behind.
  std::string cmd = "test $(ls -A '" + dir + "' | wc -l) -eq 1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);

  ASSERT_EQ(symlink("/etc/hostname", (dir + "/link").c_str()), 0);
  Status s = AtomicWriteFile(dir + "/link", "x");
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(FileTest, ReadMissingFileNamesThePath) {
  auto r = ReadFile("/nonexistent/mez/file");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/mez/file"),
            std::string::npos);
}

}  // namespace
}  // namespace mez
