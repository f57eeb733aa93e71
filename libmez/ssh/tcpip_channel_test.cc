// direct-tcpip channels through SshServer (ssh -L with the stock client).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/ssh/ssh_server_test_util.h"
#include "libmez/util/file.h"
#include "tests/test_util.h"

namespace mez::ssh {
namespace {

using ::mez::testing::ShellQuote;
using ::mez::testing::TempDir;

// A TCP socket on 127.0.0.1 (or ::1) with a kernel-chosen port: listening,
// or (listen_too = false) bound only, so that connecting to it is refused.
int BindLoopback(bool listen_too, uint16_t* port, bool ipv6 = false) {
  int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage addr = {};
  socklen_t len = 0;
  if (ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*a);
  }
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      (listen_too && listen(fd, 16) != 0)) {
    if (fd >= 0) close(fd);
    return -1;
  }
  len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return fd;
}

// True when something listens on 127.0.0.1:port (from /proc/net/tcp, so
// that checking does not open a forwarded channel).
bool Listening(uint16_t port) {
  std::ifstream f("/proc/net/tcp");
  char want[32];
  snprintf(want, sizeof(want), "0100007F:%04X", port);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (local == want && state == "0A") return true;
  }
  return false;
}

// Sends `out` (then half-closes) while reading into *in until EOF, on one
// connected socket; gives up after 60 s. True when both completed.
// *progress, when given, follows the count of bytes sent.
bool Exchange(int fd, const std::string& out, std::string* in,
              std::atomic<size_t>* progress = nullptr) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  size_t sent = 0;
  bool out_done = false, in_done = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  char buf[65536];
  while (!(out_done && in_done)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (!out_done && sent == out.size()) {
      shutdown(fd, SHUT_WR);
      out_done = true;
    }
    pollfd p = {
        fd,
        static_cast<short>((in_done ? 0 : POLLIN) | (out_done ? 0 : POLLOUT)),
        0};
    if (poll(&p, 1, 100) <= 0) continue;
    if (!out_done && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      if (progress != nullptr) progress->store(sent);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    }
    if (!in_done && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n > 0) in->append(buf, static_cast<size_t>(n));
      if (n == 0) in_done = true;
      if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    }
  }
  return true;
}

// A destination for forwarded connections: accepts `count` connections,
// and on each (after `before`, when given) sends `reply` and reads until
// the peer's EOF, concurrently. `rcvbuf` > 0 shrinks its receive buffers.
class DestinationServer {
 public:
  DestinationServer(int count, std::string reply, int rcvbuf = 0,
                    std::function<void()> before = nullptr, bool ipv6 = false)
      : reply_(std::move(reply)),
        rcvbuf_(rcvbuf),
        before_(std::move(before)),
        received_(static_cast<size_t>(count)) {
    fd_ = BindLoopback(false, &port_, ipv6);
    if (fd_ >= 0 && rcvbuf > 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    if (fd_ >= 0 && listen(fd_, 16) != 0) {
      close(fd_);
      fd_ = -1;
      port_ = 0;
    }
    thread_ = std::thread([this, count] {
      std::vector<std::thread> handlers;
      auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(60);
      for (int i = 0; i < count; ++i) {
        int conn = -1;
        while (conn < 0 && std::chrono::steady_clock::now() < deadline) {
          pollfd p = {fd_, POLLIN, 0};
          if (poll(&p, 1, 100) > 0) conn = accept4(fd_, nullptr, nullptr, 0);
        }
        if (conn < 0) break;
        handlers.emplace_back([this, conn, i] {
          if (before_) before_();
          if (rcvbuf_ > 0) {  // Read at full speed from now on.
            int big = 1 << 20;
            setsockopt(conn, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
          }
          std::string in;
          bool ok = Exchange(conn, reply_, &in);
          close(conn);
          std::lock_guard<std::mutex> lock(mu_);
          received_[static_cast<size_t>(i)] = ok ? in : "(failed)";
          ++finished_;
        });
      }
      for (std::thread& t : handlers) t.join();
    });
  }
  ~DestinationServer() {
    thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }
  int finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }
  std::vector<std::string> received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }

 private:
  std::string reply_;
  int rcvbuf_ = 0;
  std::function<void()> before_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<std::string> received_;
  int finished_ = 0;
  std::thread thread_;
};

// Connects to 127.0.0.1:port; -1 on failure.
int ConnectLoopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A free loopback port for ssh -L (bound, read, released).
uint16_t FreePort() {
  uint16_t port = 0;
  int fd = BindLoopback(true, &port);
  if (fd >= 0) close(fd);
  return port;
}

// Runs `command` on a thread; the destructor creates `flag` (which the
// remote command waits for, so that ssh ends by itself) and joins.
class BackgroundCommand {
 public:
  BackgroundCommand(std::string command, std::string flag)
      : flag_(std::move(flag)), thread_([this, c = std::move(command)] {
          result_ = mez::testing::Run(c);
        }) {}
  ~BackgroundCommand() { Finish(); }
  const mez::testing::CommandResult& Finish() {
    if (thread_.joinable()) {
      mez::testing::WriteFileOrDie(flag_, "");
      thread_.join();
    }
    return result_;
  }

 private:
  std::string flag_;
  mez::testing::CommandResult result_;
  std::thread thread_;
};

// A remote command that ends once `flag` exists.
std::string WaitForFile(const std::string& flag) {
  return mez::testing::ShellQuote("while [ ! -e " +
                                  mez::testing::ShellQuote(flag) +
                                  " ]; do sleep 0.05; done; echo session-done");
}

// Reads until the peer closes (EOF or reset); what arrived, or "(timeout)".
std::string ReadUntilClosed(int fd) {
  std::string in;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      in.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      return in;
    }
  }
  return "(timeout)";
}

TEST_F(SshServerTest, ForwardsTcpBothWaysBesideASession) {
  // Two forwarded connections at once, each 1 MB each way, while a session
  // channel of the same connection stays open until they are done.
  const std::string reply = RandomBytes(1 << 20, 1);
  const std::string request[2] = {RandomBytes(1 << 20, 2),
                                  RandomBytes(1 << 20, 3)};
  DestinationServer destination(2, reply);
  ASSERT_NE(destination.port(), 0);
  uint16_t local_port = FreePort();
  ASSERT_NE(local_port, 0);
  std::string forward =
      "-o ExitOnForwardFailure=yes -L 127.0.0.1:" + std::to_string(local_port) +
      ":127.0.0.1:" + std::to_string(destination.port());
  std::string flag = dir_.File("forwards-done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  ASSERT_TRUE(WaitFor([&] { return Listening(local_port); }))
      << "ssh -L never listened";
  std::string got[2];
  bool ok[2] = {false, false};
  std::thread second([&] {
    int fd = ConnectLoopback(local_port);
    if (fd >= 0) ok[1] = Exchange(fd, request[1], &got[1]);
    if (fd >= 0) close(fd);
  });
  int fd = ConnectLoopback(local_port);
  if (fd >= 0) ok[0] = Exchange(fd, request[0], &got[0]);
  if (fd >= 0) close(fd);
  second.join();
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(ok[i]) << "connection " << i;
    EXPECT_TRUE(got[i] == reply)
        << "connection " << i << " got " << got[i].size() << " bytes";
  }
  ASSERT_TRUE(WaitFor([&] { return destination.finished() == 2; }));
  std::vector<std::string> received = destination.received();
  for (const std::string& r : received) {
    EXPECT_TRUE(r == request[0] || r == request[1])
        << "the destination got " << r.size() << " bytes";
  }
  EXPECT_NE(received[0], received[1]);
  // Both forwarded channels report their exit while the session is open.
  ASSERT_TRUE(WaitFor([&] {
    int exits = 0;
    for (const TapRecord& r : Taps()) {
      if (r.info.kind == ChannelKind::kTcpip) exits += !r.exits.empty();
    }
    return exits == 2;
  }));
  const mez::testing::CommandResult& result = client.Finish();
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out, "session-done\n");

  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 3u);
  std::string id = taps[0].info.connection_id;
  EXPECT_TRUE(IsLowerHex32(id)) << id;
  int tcpip = 0;
  for (const TapRecord& r : taps) {
    EXPECT_EQ(r.info.connection_id, id);
    EXPECT_EQ(r.misuse, "");
    if (r.info.kind != ChannelKind::kTcpip) {
      EXPECT_EQ(r.info.kind, ChannelKind::kExec);
      continue;
    }
    ++tcpip;
    EXPECT_EQ(r.info.dst_host, "127.0.0.1");
    EXPECT_EQ(r.info.dst_port, destination.port());
    EXPECT_EQ(r.info.src_host, "127.0.0.1");
    EXPECT_NE(r.info.src_port, 0);
    EXPECT_EQ(r.info.login, CurrentUser());
    EXPECT_EQ(r.info.key_id, "alice");
    EXPECT_EQ(r.info.cert_extensions.count("permit-port-forwarding"), 1u);
    EXPECT_TRUE(r.in_ended);
    EXPECT_TRUE(r.out_ended);
    EXPECT_EQ(r.exits, std::vector<int>{0});
    EXPECT_TRUE(r.destroyed);
    EXPECT_TRUE(r.out == reply) << r.out.size() << " bytes out";
    EXPECT_TRUE(r.in == request[0] || r.in == request[1])
        << r.in.size() << " bytes in";
  }
  EXPECT_EQ(tcpip, 2);
  EXPECT_NE(taps[1].in, taps[2].in);
  server_->Stop();
  EXPECT_EQ(ConnectionEnds(), std::vector<std::string>{id});
}

TEST_F(SshServerTest, ForwardingAppliesBackpressure) {
  // The destination does not read until the client is stuck: the server
  // must hold the client back rather than buffer everything, and lose
  // nothing when the destination catches up.
  const std::string request = RandomBytes(64 << 20, 4);
  std::atomic<size_t> sent{0};
  std::atomic<size_t> sent_when_stuck{0};
  auto wait_until_stuck = [&] {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    size_t last = sent.load();
    auto last_change = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() < deadline &&
           std::chrono::steady_clock::now() - last_change <
               std::chrono::milliseconds(500)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (sent.load() != last) {
        last = sent.load();
        last_change = std::chrono::steady_clock::now();
      }
    }
    sent_when_stuck.store(last);
  };
  DestinationServer destination(1, "", 4096, wait_until_stuck);
  ASSERT_NE(destination.port(), 0);
  uint16_t local_port = FreePort();
  std::string forward =
      "-o ExitOnForwardFailure=yes -L 127.0.0.1:" + std::to_string(local_port) +
      ":127.0.0.1:" + std::to_string(destination.port());
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  ASSERT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  ASSERT_GE(fd, 0);
  std::string got;
  EXPECT_TRUE(Exchange(fd, request, &got, &sent));
  close(fd);
  EXPECT_EQ(got, "");
  ASSERT_TRUE(WaitFor([&] { return destination.finished() == 1; }, 60));
  EXPECT_LT(sent_when_stuck.load(), request.size());
  EXPECT_TRUE(destination.received()[0] == request)
      << destination.received()[0].size() << " bytes arrived";
  ASSERT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 2 && !taps[1].exits.empty();
  }));
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  std::vector<TapRecord> taps = Taps();
  EXPECT_TRUE(taps[1].in == request) << taps[1].in.size() << " bytes in";
  EXPECT_TRUE(taps[1].in_ended);
  EXPECT_TRUE(taps[1].out_ended);
  EXPECT_EQ(taps[1].exits, std::vector<int>{0});
  EXPECT_EQ(taps[1].misuse, "");
}

TEST_F(SshServerTest, ForwardsToAHostName) {
  // "localhost" may resolve to ::1 first, where nothing listens: the
  // server moves on to 127.0.0.1. The tap keeps the name as sent.
  DestinationServer destination(1, "pong");
  uint16_t local_port = FreePort();
  std::string forward =
      "-o ExitOnForwardFailure=yes -L 127.0.0.1:" + std::to_string(local_port) +
      ":localhost:" + std::to_string(destination.port());
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  ASSERT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  ASSERT_GE(fd, 0);
  std::string got;
  EXPECT_TRUE(Exchange(fd, "ping", &got));
  close(fd);
  EXPECT_EQ(got, "pong");
  ASSERT_TRUE(WaitFor([&] { return destination.finished() == 1; }));
  EXPECT_EQ(destination.received()[0], "ping");
  ASSERT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 2 && !taps[1].exits.empty();
  }));
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  std::vector<TapRecord> taps = Taps();
  EXPECT_EQ(taps[1].info.dst_host, "localhost");
  EXPECT_EQ(taps[1].in, "ping");
  EXPECT_EQ(taps[1].out, "pong");
  EXPECT_EQ(taps[1].exits, std::vector<int>{0});
}

TEST_F(SshServerTest, ForwardsToIpv6) {
  DestinationServer destination(1, "pong6", 0, nullptr, /*ipv6=*/true);
  if (destination.port() == 0) GTEST_SKIP() << "no IPv6 loopback here";
  uint16_t local_port = FreePort();
  std::string forward =
      "-o ExitOnForwardFailure=yes -L 127.0.0.1:" + std::to_string(local_port) +
      ":[::1]:" + std::to_string(destination.port());
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  ASSERT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  ASSERT_GE(fd, 0);
  std::string got;
  EXPECT_TRUE(Exchange(fd, "ping6", &got));
  close(fd);
  EXPECT_EQ(got, "pong6");
  ASSERT_TRUE(WaitFor([&] { return destination.finished() == 1; }));
  EXPECT_EQ(destination.received()[0], "ping6");
  ASSERT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 2 && !taps[1].exits.empty();
  }));
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  std::vector<TapRecord> taps = Taps();
  EXPECT_EQ(taps[1].info.dst_host, "::1");
  EXPECT_EQ(taps[1].exits, std::vector<int>{0});
}

TEST_F(SshServerTest, StopEndsForwardedConnections) {
  // A forwarded connection still open when the server stops: its tap
  // sees both directions end and OnExit(0), then the connection's end.
  DestinationServer destination(1, "");
  uint16_t local_port = FreePort();
  std::string forward = "-o ExitOnForwardFailure=yes -N -L 127.0.0.1:" +
                        std::to_string(local_port) +
                        ":127.0.0.1:" + std::to_string(destination.port());
  BackgroundCommand client(Ssh(ForwardingKey(), forward), dir_.File("unused"));
  ASSERT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, "abc", 3, MSG_NOSIGNAL), 3);
  ASSERT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 1 && taps[0].in == "abc";
  }));
  server_->Stop();                     // ssh -N ends when the server hangs up.
  EXPECT_EQ(ReadUntilClosed(fd), "");  // Closes the destination too.
  close(fd);
  client.Finish();
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 1u);
  EXPECT_TRUE(taps[0].in_ended);
  EXPECT_TRUE(taps[0].out_ended);
  EXPECT_EQ(taps[0].exits, std::vector<int>{0});
  EXPECT_TRUE(taps[0].destroyed);
  EXPECT_EQ(taps[0].misuse, "");
  EXPECT_EQ(ConnectionEnds(),
            std::vector<std::string>{taps[0].info.connection_id});
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_FALSE(ended_with_live_tap_);
}

TEST_F(SshServerTest, ForwardToAClosedPortFailsTheOpen) {
  uint16_t closed_port = 0;
  int bound = BindLoopback(false, &closed_port);  // Bound, not listening.
  ASSERT_GE(bound, 0);
  uint16_t local_port = FreePort();
  std::string forward = "-L 127.0.0.1:" + std::to_string(local_port) +
                        ":127.0.0.1:" + std::to_string(closed_port);
  log_level_ = "INFO";  // ssh reports a failed open at INFO
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  EXPECT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  EXPECT_GE(fd, 0);
  if (fd >= 0) {
    EXPECT_EQ(ReadUntilClosed(fd), "");  // ssh closes it.
    close(fd);
  }
  EXPECT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 2 && !taps[1].exits.empty();
  }));
  EXPECT_TRUE(WaitFor([&] {
    return Stderr().find("open failed") != std::string::npos;
  })) << Stderr();
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  close(bound);
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 2u);
  const TapRecord& r = taps[1];
  EXPECT_EQ(r.info.kind, ChannelKind::kTcpip);
  EXPECT_EQ(r.info.dst_port, closed_port);
  EXPECT_EQ(r.exits, std::vector<int>{1});
  EXPECT_EQ(r.in, "");
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(r.in_ended);
  EXPECT_FALSE(r.out_ended);
  EXPECT_EQ(r.misuse, "");
}

TEST_F(SshServerTest, ForwardingNeedsTheCertExtension) {
  DestinationServer destination(0, "");
  uint16_t local_port = FreePort();
  std::string forward = "-L 127.0.0.1:" + std::to_string(local_port) +
                        ":127.0.0.1:" + std::to_string(destination.port());
  log_level_ = "INFO";
  std::string flag = dir_.File("done");
  BackgroundCommand client(Ssh(GoodKey(), forward + " " + WaitForFile(flag)),
                           flag);  // GoodKey: permit-pty only
  EXPECT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  EXPECT_GE(fd, 0);
  if (fd >= 0) {
    EXPECT_EQ(ReadUntilClosed(fd), "");
    close(fd);
  }
  EXPECT_TRUE(WaitFor([&] {
    return Stderr().find("open failed") != std::string::npos;
  })) << Stderr();
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 1u);  // the session only: no tcpip tap
  EXPECT_EQ(taps[0].info.kind, ChannelKind::kExec);
}

TEST_F(SshServerTest, ForwardingCanBeDisabled) {
  StartServer([](SshServerOptions& o) { o.allow_tcpip_forwarding = false; });
  DestinationServer destination(0, "");
  uint16_t local_port = FreePort();
  std::string forward = "-L 127.0.0.1:" + std::to_string(local_port) +
                        ":127.0.0.1:" + std::to_string(destination.port());
  log_level_ = "INFO";
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  EXPECT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  EXPECT_GE(fd, 0);
  if (fd >= 0) {
    EXPECT_EQ(ReadUntilClosed(fd), "");
    close(fd);
  }
  EXPECT_TRUE(WaitFor([&] {
    return Stderr().find("open failed") != std::string::npos;
  })) << Stderr();
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  EXPECT_EQ(Taps().size(), 1u);  // the session only
}

TEST_F(SshServerTest, SlowDestinationTimesOutAfterTheOpen) {
  // A listener whose accept queue is full drops new SYNs: the connect
  // neither succeeds nor fails until connect_timeout_ms. The open is
  // answered before that (the connection's thread is not held), and the
  // timeout then closes the channel with OnExit(1) and no data.
  StartServer([](SshServerOptions& o) { o.connect_timeout_ms = 1500; });
  uint16_t slow_port = 0;
  int listener = BindLoopback(false, &slow_port);
  ASSERT_GE(listener, 0);
  ASSERT_EQ(listen(listener, 0), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 2; ++i) {
    int f = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(slow_port);
    connect(f, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    fillers.push_back(f);
  }
  uint16_t local_port = FreePort();
  std::string forward = "-L 127.0.0.1:" + std::to_string(local_port) +
                        ":127.0.0.1:" + std::to_string(slow_port);
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  EXPECT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  EXPECT_GE(fd, 0);
  if (fd >= 0) {
    EXPECT_EQ(send(fd, "lost", 4, MSG_NOSIGNAL), 4);
    EXPECT_EQ(ReadUntilClosed(fd), "");
    close(fd);
  }
  EXPECT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 2 && !taps[1].exits.empty();
  }));
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  for (int f : fillers) close(f);
  close(listener);
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 2u);
  EXPECT_EQ(taps[1].exits, std::vector<int>{1});
  EXPECT_EQ(taps[1].in, "");  // never delivered, so never reported
  EXPECT_EQ(taps[1].out, "");
  EXPECT_FALSE(taps[1].in_ended);
  EXPECT_EQ(taps[1].misuse, "");
}

}  // namespace
}  // namespace mez::ssh
