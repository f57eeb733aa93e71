#include "libmez/util/thread_name.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "libmez/util/thread_pool.h"

namespace mez {
namespace {

// What top -H and ps -L show for a thread of this process.
std::string Comm(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

pid_t ThisTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

TEST(ThreadNameTest, NameShowsInProc) {
  std::string comm, read;
  std::thread t([&] {
    NameThisThread("mez-ssh");
    comm = Comm(ThisTid());
    read = ThisThreadName();
  });
  t.join();
  EXPECT_EQ(comm, "mez-ssh");
  EXPECT_EQ(read, "mez-ssh");
}

TEST(ThreadNameTest, LongNameIsCutToFifteenBytes) {
  std::string comm;
  std::thread t([&] {
    NameThisThread("mez-a-name-of-twenty-six");
    comm = Comm(ThisTid());
  });
  t.join();
  EXPECT_EQ(comm, "mez-a-name-of-t");
}

TEST(ThreadNameTest, PoolThreadsCarryThePoolsName) {
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::string> names;
  int done = 0;
  {
    ThreadPool pool(2, "mez-ingest");
    for (int i = 0; i < 2; ++i) {
      pool.Submit([&] {
        std::lock_guard<std::mutex> lock(mu);
        names.insert(ThisThreadName());
        ++done;
        cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == 2; });
  }
  EXPECT_EQ(names, std::set<std::string>{"mez-ingest"});
}

}  // namespace
}  // namespace mez
