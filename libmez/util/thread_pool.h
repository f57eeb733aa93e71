// A fixed-size pool of worker threads running submitted tasks in FIFO
// order. Used to keep blocking work (disk writes) off gRPC's reaction
// threads.
#ifndef MEZ_UTIL_THREAD_POOL_H_
#define MEZ_UTIL_THREAD_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mez {

class ThreadPool {
 public:
  // `name` names the threads (see thread_name.h).
  explicit ThreadPool(int threads, std::string name = "mez-pool");
  // Runs every task already submitted, then joins the threads.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Thread-safe. Tasks submitted after destruction began are dropped.
  void Submit(std::function<void()> task);

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace mez

#endif  // MEZ_UTIL_THREAD_POOL_H_
