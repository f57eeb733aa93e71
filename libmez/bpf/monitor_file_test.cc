// File events against the running kernel (root, kernel BTF; skipped with
// the reason otherwise): opens that succeed and fail, relative names,
// directory fds, symlinks, renames, unlinks.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "libmez/bpf/monitor.h"
#include "libmez/bpf/monitor_test_util.h"

namespace mez::bpf {
namespace {

bool HasFlag(const Event& e, const std::string& name) {
  return std::find(e.flag_names.begin(), e.flag_names.end(), name) !=
         e.flag_names.end();
}

TEST(BpfMonitorTest, FileEventsHaveAbsolutePathsFlagsAndResults) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  char tmpl[] = "/tmp/mez-bpf-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = RealPath(tmpl);
  std::filesystem::create_directory(dir + "/sub");
  std::filesystem::create_symlink("target", dir + "/link");
  { std::ofstream(dir + "/target") << "x"; }

  PausedChild child([&] {
    if (chdir(dir.c_str()) != 0) _exit(122);
    int fd = open("created", O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
    if (fd < 0) _exit(123);
    close(fd);
    if (open("missing/x", O_RDONLY) >= 0) _exit(124);
    int sub = open("sub", O_RDONLY | O_DIRECTORY);
    if (sub < 0) _exit(125);
    fd = openat(sub, "inner", O_CREAT | O_RDWR | O_EXCL, 0600);
    if (fd < 0) _exit(126);
    close(fd);
    fd = open("link", O_RDONLY);
    if (fd < 0) _exit(127);
    close(fd);
    if (rename("created", "renamed") != 0) _exit(128);
    if (unlink("renamed") != 0) _exit(129);
    if (unlinkat(sub, "inner", 0) != 0) _exit(130);
    if (unlinkat(AT_FDCWD, "sub", AT_REMOVEDIR) != 0) _exit(131);
    if (unlink("never-there") == 0) _exit(132);
    _exit(0);
  });
  PausedChild outside([&] {
    int fd = open((dir + "/outside").c_str(), O_CREAT | O_WRONLY, 0600);
    _exit(fd >= 0 ? 0 : 1);
  });
  ASSERT_TRUE(m->Track(child.pid(), 101).ok());
  outside.Release();
  EXPECT_EQ(outside.Wait(), 0);
  child.Release();
  EXPECT_EQ(child.Wait(), 0);
  Collector c(m.get());
  auto find = [&](const std::string& op, const std::string& path) {
    for (const auto& e : c.events) {
      if (e.kind == EventKind::kFile && e.file_op == op && e.path == path) {
        return &e;
      }
    }
    return static_cast<const Event*>(nullptr);
  };
  ASSERT_TRUE(c.PollUntil(
      [&] { return find("unlink", dir + "/never-there") != nullptr; }));
  c.Drain();

  const Event* e = find("open", dir + "/created");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->cookie, 101u);
  EXPECT_EQ(e->pid, child.pid());
  EXPECT_EQ(e->flag_names,
            (std::vector<std::string>{"O_WRONLY", "O_CREAT", "O_CLOEXEC"}));
  EXPECT_EQ(e->mode, 0640u);
  EXPECT_GE(e->fd, 0);
  EXPECT_EQ(e->error, 0);

  e = find("open", dir + "/missing/x");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->error, ENOENT);
  EXPECT_EQ(e->fd, -1);
  EXPECT_NE(ToJsonLine(*e).find("\"error\":\"ENOENT\""), std::string::npos);

  e = find("open", dir + "/sub");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(HasFlag(*e, "O_DIRECTORY"));

  e = find("open", dir + "/sub/inner");  // relative to a directory fd
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(HasFlag(*e, "O_RDWR"));
  EXPECT_TRUE(HasFlag(*e, "O_EXCL"));

  // Through a symlink: the file's real path.
  EXPECT_NE(find("open", dir + "/target"), nullptr);
  EXPECT_EQ(find("open", dir + "/link"), nullptr);

  e = find("rename", dir + "/created");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->new_path, dir + "/renamed");
  EXPECT_EQ(e->error, 0);
  EXPECT_NE(find("unlink", dir + "/renamed"), nullptr);
  EXPECT_NE(find("unlink", dir + "/sub/inner"), nullptr);
  EXPECT_NE(find("rmdir", dir + "/sub"), nullptr);
  EXPECT_EQ(find("unlink", dir + "/never-there")->error, ENOENT);

  // The same user's process outside the session is not reported.
  EXPECT_EQ(find("open", dir + "/outside"), nullptr);
  for (const auto& ev : c.events) EXPECT_EQ(ev.cookie, 101u);
  ExpectSeqAccountedFor(c, m.get(), 101);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mez::bpf
