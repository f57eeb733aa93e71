#include "tests/forward_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "libmez/util/encoding.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = kForwardDeadline;

CommandResult Sh(const std::string& command) { return Run(command); }

}  // namespace

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string Exchange(int fd, const std::string& out, bool* ok) {
  *ok = false;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string in;
  size_t sent = 0;
  bool wrote_all = false, eof = false;
  auto deadline = Clock::now() + kDeadline;
  while (!eof) {
    if (!wrote_all && sent == out.size()) {
      if (shutdown(fd, SHUT_WR) != 0) return in;
      wrote_all = true;
    }
    pollfd p = {fd, static_cast<short>(POLLIN | (wrote_all ? 0 : POLLOUT)), 0};
    if (Clock::now() > deadline) return in;
    if (poll(&p, 1, 100) < 0) return in;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno != EAGAIN) return in;
      if (n == 0) eof = true;
      if (n > 0) in.append(buf, static_cast<size_t>(n));
    }
    if (!wrote_all && (p.revents & POLLOUT)) {
      // MSG_NOSIGNAL: a peer that hung up is an error here, not a SIGPIPE
      // that ends the test binary.
      ssize_t n =
          send(fd, out.data() + sent,
               std::min<size_t>(out.size() - sent, 65536), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) return in;
      if (n > 0) sent += static_cast<size_t>(n);
    }
  }
  *ok = wrote_all;
  return in;
}

Destination::Destination(std::string reply) : reply_(std::move(reply)) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      listen(fd_, 4) == 0 &&
      getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port_ = ntohs(a.sin_port);
  }
  thread_ = std::thread([this] { Serve(); });
}

Destination::~Destination() {
  shutdown(fd_, SHUT_RDWR);  // Wakes a poll that never got a client.
  if (thread_.joinable()) thread_.join();
  close(fd_);
}

bool Destination::Finish() {
  if (thread_.joinable()) thread_.join();
  return ok_;
}

void Destination::Serve() {
  pollfd p = {fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(kDeadline.count() * 1000)) != 1) return;
  int c = accept(fd_, nullptr, nullptr);
  if (c < 0) return;
  received_ = Exchange(c, reply_, &ok_);
  close(c);
}

bool ListensOnLoopback(uint16_t port) {
  std::ifstream f("/proc/net/tcp");
  char want[32];
  std::snprintf(want, sizeof(want), "0100007F:%04X", port);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string slot, local, remote, state;
    in >> slot >> local >> remote >> state;
    if (local == want && state == "0A") return true;
  }
  return false;
}

int ConnectLoopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

Background::Background(const std::string& command, const std::string& log) {
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c",
          (command + " </dev/null >" + ShellQuote(log) + " 2>&1").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  if (pid_ > 0) setpgid(pid_, pid_);
}

bool Background::running() {
  return pid_ > 0 && waitpid(pid_, &status_, WNOHANG) == 0;
}

void Background::Stop() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGTERM);
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (waitpid(pid_, &status_, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
}

Followed FollowStream0(const std::string& path) {
  std::istringstream in(
      Sh("tshark -r " + ShellQuote(path) + " -q -z follow,tcp,raw,0 2>&1").out);
  Followed f;
  bool data = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Node 1: ", 0) == 0) {
      data = true;
      continue;
    }
    if (!data || line.empty()) continue;
    if (line[0] == '=') break;
    const bool from1 = line[0] == '\t';
    auto bytes = HexDecode(from1 ? line.substr(1) : line);
    EXPECT_TRUE(bytes.ok()) << line.substr(0, 80);
    if (bytes.ok()) (from1 ? f.to_node0 : f.to_node1) += *bytes;
  }
  return f;
}

int TcpConversations(const std::string& path) {
  std::istringstream in(
      Sh("tshark -r " + ShellQuote(path) + " -q -z conv,tcp 2>&1").out);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    n += line.find("<->") != std::string::npos;
  }
  return n;
}

}  // namespace mez::testing
