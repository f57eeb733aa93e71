// ChildSpec::before_start: the child waits after fork until the parent's
// hook returned, and runs nothing when the hook refuses.
#include "libmez/ssh/child_process.h"

#include <gtest/gtest.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/test_util.h"

namespace mez::ssh {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string Exe(pid_t pid) {
  char buf[PATH_MAX] = {};
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

ChildSpec TouchSpec(const std::string& file) {
  ChildSpec spec;
  spec.shell = "/bin/sh";
  spec.command = "touch " + file;
  spec.home = "/";
  spec.env = {"PATH=/usr/bin:/bin"};
  return spec;
}

// Reaps `child`, waiting up to 30 s.
bool ReapWithin30s(ChildProcess& child, int* status) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!child.Reap(status)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TEST(ChildProcessTest, ChildWaitsUntilBeforeStartReturned) {
  for (bool pty : {false, true}) {
    mez::testing::TempDir dir;
    std::string file = dir.File("ran");
    ChildSpec spec = TouchSpec(file);
    spec.pty = pty;
    pid_t seen = -1;
    std::string exe_then;
    bool ran_early = false;
    spec.before_start = [&](pid_t pid) {
      seen = pid;
      // Given time to run, a child not held back would have exec'd the
      // shell and made the file.
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (std::chrono::steady_clock::now() < until && !ran_early) {
        ran_early = Exists(file);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      exe_then = Exe(pid);
      return Status::Ok();
    };
    auto child = ChildProcess::Spawn(spec);
    ASSERT_TRUE(child.ok()) << child.status().message();
    EXPECT_GT(seen, 0);
    EXPECT_FALSE(ran_early) << "the child ran before before_start returned";
    EXPECT_EQ(exe_then, Exe(getpid())) << "the child had already exec'd";
    int status = -1;
    ASSERT_TRUE(ReapWithin30s(**child, &status)) << "pty " << pty;
    EXPECT_EQ(status, 0) << "pty " << pty;
    EXPECT_TRUE(Exists(file)) << "the child did not run after the go";
  }
}

TEST(ChildProcessTest, RefusedBeforeStartRunsNothing) {
  for (bool pty : {false, true}) {
    mez::testing::TempDir dir;
    std::string file = dir.File("ran");
    ChildSpec spec = TouchSpec(file);
    spec.pty = pty;
    pid_t seen = -1;
    spec.before_start = [&](pid_t pid) {
      seen = pid;
      return Status(Code::kFailedPrecondition, "not followed");
    };
    auto child = ChildProcess::Spawn(spec);
    ASSERT_FALSE(child.ok()) << "pty " << pty;
    EXPECT_EQ(child.status().code(), Code::kFailedPrecondition);
    EXPECT_EQ(child.status().message(), "not followed");
    ASSERT_GT(seen, 0);
    // Spawn reaped the child before it returned: it is gone for good.
    EXPECT_NE(kill(seen, 0), 0) << "pty " << pty;
    EXPECT_FALSE(Exists(file)) << "the refused child ran (pty " << pty << ")";
  }
}

}  // namespace
}  // namespace mez::ssh
