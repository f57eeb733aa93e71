// mezd never sends its credential in plaintext by accident: the real mezd
// binary, pointed at a plaintext listener, must refuse to start without
// --ca-file (or an explicit --insecure to loopback) before connecting.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "tests/test_util.h"

namespace mez::testing {
namespace {

using ::testing::HasSubstr;

// A TCP listener on 127.0.0.1 that counts the bytes anyone sends it.
class CountingListener {
 public:
  CountingListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~CountingListener() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }
  size_t bytes() const { return bytes_.load(); }

 private:
  void Loop() {
    std::vector<int> peers;
    while (!stop_) {
      std::vector<pollfd> fds{{fd_, POLLIN, 0}};
      for (int p : peers) fds.push_back({p, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          ++connections_;
          peers.push_back(c);
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        char buf[4096];
        ssize_t n = read(fds[i].fd, buf, sizeof(buf));
        if (n > 0) bytes_ += static_cast<size_t>(n);
      }
    }
    for (int p : peers) close(p);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<size_t> bytes_{0};
  std::thread thread_;
};

std::string Mezd(const std::string& args) {
  return "timeout 30 " + ShellQuote(MEZD_PATH) + " " + args + " 2>&1";
}

TEST(MezdTransportTest, RefusesPlaintextWithoutCaFileAndSendsNothing) {
  TempDir dir;
  CountingListener fake;
  ASSERT_NE(fake.port(), 0);
  CommandResult r =
      testing::Run(Mezd("--auth 127.0.0.1:" + std::to_string(fake.port()) +
                        " --token not-sent --listen 127.0.0.1:0 --data-dir " +
                        ShellQuote(dir.File("mezd"))));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--ca-file"));
  EXPECT_EQ(fake.connections(), 0) << r.out;
  EXPECT_EQ(fake.bytes(), 0u) << r.out;
}

TEST(MezdTransportTest, InsecureIsRefusedOffLoopback) {
  TempDir dir;
  // .invalid never resolves (RFC 2606): nothing leaves the machine even if
  // the check were missing.
  CommandResult r = testing::Run(
      Mezd("--insecure --auth auth.invalid:3025 --token not-sent --listen "
           "127.0.0.1:0 --data-dir " +
           ShellQuote(dir.File("mezd"))));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("loopback"));
}

TEST(MezdTransportTest, InsecureAndCaFileAreExclusive) {
  TempDir dir;
  WriteFileOrDie(dir.File("ca.pem"), "not a certificate\n");
  CommandResult r = testing::Run(
      Mezd("--insecure --ca-file " + ShellQuote(dir.File("ca.pem")) +
           " --auth 127.0.0.1:1 --token x --listen 127.0.0.1:0 --data-dir " +
           ShellQuote(dir.File("mezd"))));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("excludes"));
}

}  // namespace
}  // namespace mez::testing
