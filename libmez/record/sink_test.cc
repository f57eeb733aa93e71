#include "libmez/record/sink.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdlib>
#include <ios>
#include <string>
#include <vector>

#include "libmez/util/file.h"

namespace mez::record {
namespace {

TEST(SinkTest, FileSinkCreatesExclusivelyAndRefusesSymlinks) {
  char tmpl[] = "/tmp/mez_sink_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto sink = FileSink::Create(dir + "/a.cast");
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  std::string big(200000, 'x');
  ASSERT_TRUE((*sink)->Append("hello ").ok());
  ASSERT_TRUE((*sink)->Append(big).ok());
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ((*sink)->bytes_written(), 6 + big.size());
  EXPECT_EQ(*ReadFile(dir + "/a.cast"), "hello " + big);
  EXPECT_FALSE((*sink)->Append("late").ok());

  auto again = FileSink::Create(dir + "/a.cast");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);

  ASSERT_EQ(symlink("/tmp/elsewhere", (dir + "/l.cast").c_str()), 0);
  EXPECT_FALSE(FileSink::Create(dir + "/l.cast").ok());
  EXPECT_FALSE(FileSink::OpenAppend(dir + "/l.cast").ok());

  auto app = FileSink::OpenAppend(dir + "/a.cast");
  ASSERT_TRUE(app.ok());
  EXPECT_EQ((*app)->bytes_written(), 6 + big.size());
  ASSERT_TRUE((*app)->Append("!").ok());
  ASSERT_TRUE((*app)->Close().ok());
  EXPECT_EQ(ReadFile(dir + "/a.cast")->back(), '!');
  ASSERT_EQ(std::system(("rm -rf " + dir).c_str()), 0);
}

// How many of the first `len` bytes' pages of `path` are in the page cache.
size_t ResidentPages(const std::string& path, size_t len) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SIZE_MAX;
  void* map = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return SIZE_MAX;
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((len + page - 1) / page);
  size_t resident = SIZE_MAX;
  if (mincore(map, len, vec.data()) == 0) {
    resident = 0;
    for (unsigned char v : vec) resident += v & 1;
  }
  munmap(map, len);
  return resident;
}

TEST(SinkTest, FileSinkKeepsALargeRecordingOutOfThePageCache) {
  char tmpl[] = "/tmp/mez_sink_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string path = dir + "/big.cast";
  auto sink = FileSink::Create(path);
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  // 20 MiB in the shapes the writers use: small lines and large blocks.
  const size_t kTotal = 2 * FileSink::kWriteBehind + 4 * 1024 * 1024;
  std::string want;
  want.reserve(kTotal);
  for (size_t i = 0; want.size() < kTotal; ++i) {
    std::string piece =
        i % 3 == 0
            ? std::string(100000, static_cast<char>('a' + i % 26))
            : std::string("[") + std::to_string(i) + ", \"o\", \"line\"]\n";
    ASSERT_TRUE((*sink)->Append(piece).ok());
    want += piece;
  }
  // The first window was written and dropped while the third was filling.
  struct statfs fs;
  ASSERT_EQ(statfs(dir.c_str(), &fs), 0);
  size_t resident = ResidentPages(path, FileSink::kWriteBehind);
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ((*sink)->bytes_written(), want.size());
  EXPECT_TRUE(*ReadFile(path) == want) << "the content changed";
  ASSERT_EQ(std::system(("rm -rf " + dir).c_str()), 0);
  // Dropping written pages is what block file systems do; tmpfs has no
  // disk to write to, and a stacked one (overlayfs) may keep them.
  const bool block_fs = fs.f_type == EXT4_SUPER_MAGIC ||
                        fs.f_type == XFS_SUPER_MAGIC ||
                        fs.f_type == BTRFS_SUPER_MAGIC;
  if (!block_fs) {
    GTEST_SKIP() << "/tmp is not ext4, xfs or btrfs (f_type 0x" << std::hex
                 << fs.f_type << "): page-cache residency not checked";
  }
  EXPECT_EQ(resident, 0u) << "pages of the first 8 MiB still cached";
}

TEST(SinkTest, LineReaderReportsCutLastLine) {
  StringSource src("one\ntwo\nthr");
  LineReader lines(&src);
  std::string line;
  bool complete = false;
  ASSERT_TRUE(*lines.Next(&line, &complete));
  EXPECT_EQ(line, "one");
  EXPECT_TRUE(complete);
  ASSERT_TRUE(*lines.Next(&line, &complete));
  EXPECT_EQ(line, "two");
  ASSERT_TRUE(*lines.Next(&line, &complete));
  EXPECT_EQ(line, "thr");
  EXPECT_FALSE(complete);
  EXPECT_EQ(lines.line_number(), 3u);
  EXPECT_FALSE(*lines.Next(&line, &complete));
}

TEST(SinkTest, LineReaderRefusesEndlessLines) {
  StringSource src(std::string(5000, 'a'));
  LineReader lines(&src);
  std::string line;
  bool complete;
  auto r = lines.Next(&line, &complete, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 1"), std::string::npos);
}

}  // namespace
}  // namespace mez::record
