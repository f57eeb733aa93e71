// TCP connect events against the running kernel (loopback only).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "libmez/bpf/monitor.h"
#include "libmez/bpf/monitor_test_util.h"

extern char** environ;

namespace mez::bpf {
namespace {

// A listening socket on loopback (IPv4 or IPv6) and a port nobody listens
// on; -1 ports when the family is not available here.
struct Ports {
  int listener = -1;
  uint16_t open = 0;
  uint16_t closed = 0;
};

Ports LoopbackPorts(bool v6) {
  Ports p;
  auto bound = [&](int* fd) -> uint16_t {
    *fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (*fd < 0) return 0;
    sockaddr_storage ss{};
    socklen_t len;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    }
    if (bind(*fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return 0;
    len = sizeof(ss);
    getsockname(*fd, reinterpret_cast<sockaddr*>(&ss), &len);
    return ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  };
  int closed_fd = -1;
  p.open = bound(&p.listener);
  p.closed = bound(&closed_fd);
  if (closed_fd >= 0) close(closed_fd);
  if (p.open == 0 || p.closed == 0 || listen(p.listener, 8) != 0) {
    if (p.listener >= 0) close(p.listener);
    p = Ports{};
  }
  return p;
}

// Connects to port on loopback; returns the local port (0 on failure).
// A non-blocking connect waits for its outcome with poll.
uint16_t ConnectLoopback(bool v6, uint16_t port, bool nonblocking = false) {
  int fd = socket(v6 ? AF_INET6 : AF_INET,
                  SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons(port);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(port);
    len = sizeof(*a);
  }
  uint16_t local = 0;
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t err_len = sizeof(err);
    if (poll(&p, 1, 30000) == 1 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0 && err == 0) {
      rc = 0;
    }
  }
  if (rc == 0) {
    len = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    local = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  close(fd);
  return local;
}

// TCP connects over IPv4 and IPv6 loopback, to a listener (blocking and
// non-blocking) and to a closed port: both endpoints, established or the
// errno. A process outside the
// session connecting to the same listener is not reported.
TEST(BpfMonitorTest, TcpConnectsWithBothEndpointsAndTheOutcome) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    Ports ports = LoopbackPorts(v6);
    if (ports.listener < 0) {
      ASSERT_TRUE(v6) << "no IPv4 loopback";
      continue;  // no ::1 here
    }
    int report[2];
    ASSERT_EQ(pipe(report), 0);
    const uint64_t cookie = v6 ? 92 : 91;
    PausedChild child([&] {
      uint16_t local = ConnectLoopback(v6, ports.open);
      ConnectLoopback(v6, ports.closed);
      uint16_t async_local = ConnectLoopback(v6, ports.open, true);
      uint16_t both[2] = {local, async_local};
      if (write(report[1], both, sizeof(both)) != sizeof(both)) _exit(1);
      _exit(0);
    });
    PausedChild outside([&] {
      ConnectLoopback(v6, ports.open);
      _exit(0);
    });
    close(report[1]);
    ASSERT_TRUE(m->Track(child.pid(), cookie).ok());
    outside.Release();
    EXPECT_EQ(outside.Wait(), 0);
    child.Release();
    uint16_t local[2] = {0, 0};
    ASSERT_EQ(read(report[0], local, sizeof(local)),
              static_cast<ssize_t>(sizeof(local)));
    close(report[0]);
    EXPECT_EQ(child.Wait(), 0);
    ASSERT_NE(local[0], 0);
    ASSERT_NE(local[1], 0);
    Collector c(m.get());
    ASSERT_TRUE(c.PollUntil(
        [&] { return c.Of(cookie, EventKind::kConnect).size() >= 3; }));
    c.Drain();
    auto connects = c.Of(cookie, EventKind::kConnect);
    ASSERT_EQ(connects.size(), 3u);
    const std::string loopback = v6 ? "::1" : "127.0.0.1";
    const Event* ok = nullptr;
    const Event* async_ok = nullptr;
    const Event* refused = nullptr;
    for (const auto& e : connects) {
      if (!e.established) {
        refused = &e;
      } else if (e.local_port == local[1]) {
        async_ok = &e;
      } else {
        ok = &e;
      }
    }
    ASSERT_NE(ok, nullptr);
    ASSERT_NE(async_ok, nullptr);
    ASSERT_NE(refused, nullptr);
    EXPECT_EQ(async_ok->remote_port, ports.open);
    EXPECT_EQ(async_ok->pid, child.pid());
    EXPECT_EQ(ok->pid, child.pid());
    EXPECT_EQ(ok->ipv6, v6);
    EXPECT_EQ(ok->remote_addr, loopback);
    EXPECT_EQ(ok->remote_port, ports.open);
    EXPECT_EQ(ok->local_addr, loopback);
    EXPECT_EQ(ok->local_port, local[0]);
    EXPECT_EQ(ok->error, 0);
    EXPECT_EQ(refused->pid, child.pid());
    EXPECT_EQ(refused->remote_port, ports.closed);
    EXPECT_EQ(refused->error, ECONNREFUSED);
    EXPECT_NE(ToJsonLine(*refused).find("\"error\":\"ECONNREFUSED\""),
              std::string::npos);
    for (const auto& e : c.events) EXPECT_EQ(e.cookie, cookie);
    close(ports.listener);
    ExpectSeqAccountedFor(c, m.get(), cookie);
  }
}

// listen() and accept() in the session, with the endpoints; the connecting
// side is this (untracked) test process and is not reported.
TEST(BpfMonitorTest, ListenAndAcceptWithEndpoints) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  PausedChild child([&] {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        listen(fd, 4) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      _exit(1);
    }
    uint16_t port = ntohs(a.sin_port);
    if (write(report[1], &port, sizeof(port)) != sizeof(port)) _exit(2);
    int conn = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    _exit(conn >= 0 ? 0 : 3);
  });
  close(report[1]);
  ASSERT_TRUE(m->Track(child.pid(), 95).ok());
  child.Release();
  uint16_t port = 0;
  ASSERT_EQ(read(report[0], &port, sizeof(port)),
            static_cast<ssize_t>(sizeof(port)));
  close(report[0]);
  uint16_t client_port = ConnectLoopback(false, port);
  ASSERT_NE(client_port, 0);
  EXPECT_EQ(child.Wait(), 0);
  Collector c(m.get());
  ASSERT_TRUE(c.PollUntil([&] {
    return !c.Of(95, EventKind::kListen).empty() &&
           !c.Of(95, EventKind::kAccept).empty();
  }));
  c.Drain();
  auto listens = c.Of(95, EventKind::kListen);
  ASSERT_EQ(listens.size(), 1u);
  EXPECT_EQ(listens[0].pid, child.pid());
  EXPECT_EQ(listens[0].local_addr, "127.0.0.1");
  EXPECT_EQ(listens[0].local_port, port);
  auto accepts = c.Of(95, EventKind::kAccept);
  ASSERT_EQ(accepts.size(), 1u);
  EXPECT_EQ(accepts[0].pid, child.pid());
  EXPECT_EQ(accepts[0].local_port, port);
  EXPECT_EQ(accepts[0].remote_addr, "127.0.0.1");
  EXPECT_EQ(accepts[0].remote_port, client_port);
  EXPECT_TRUE(c.Of(95, EventKind::kConnect).empty());
  auto j = ToJsonLine(accepts[0]);
  EXPECT_NE(j.find("\"type\":\"accept\""), std::string::npos);
  ExpectSeqAccountedFor(c, m.get(), 95);
}

// UDP: the session's first send to each destination, whichever call made
// it (sendto, sendmsg, send on a connected socket); repeats are not.
TEST(BpfMonitorTest, UdpSendsToNewDestinations) {
  MEZ_SKIP_WITHOUT_BPF();
  auto m = OpenMonitor();
  ASSERT_NE(m, nullptr);
  // Four receivers on loopback.
  int rx[4];
  uint16_t ports[4];
  for (int i = 0; i < 4; ++i) {
    rx[i] = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    ASSERT_EQ(bind(rx[i], reinterpret_cast<sockaddr*>(&a), len), 0);
    ASSERT_EQ(getsockname(rx[i], reinterpret_cast<sockaddr*>(&a), &len), 0);
    ports[i] = ntohs(a.sin_port);
  }
  auto to = [](uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
  };
  PausedChild child([&] {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a = to(ports[0]);
    for (int i = 0; i < 3; ++i) {  // three times to the same destination
      if (sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) !=
          1) {
        _exit(1);
      }
    }
    sockaddr_in b = to(ports[1]);
    if (sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&b), sizeof(b)) !=
        1) {
      _exit(2);
    }
    sockaddr_in c = to(ports[2]);
    char byte = 'x';
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_name = &c;
    msg.msg_namelen = sizeof(c);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (sendmsg(fd, &msg, 0) != 1) _exit(3);
    int connected = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in d = to(ports[3]);
    if (connect(connected, reinterpret_cast<sockaddr*>(&d), sizeof(d)) != 0 ||
        send(connected, "x", 1, 0) != 1 || send(connected, "x", 1, 0) != 1) {
      _exit(4);
    }
    _exit(0);
  });
  ASSERT_TRUE(m->Track(child.pid(), 96).ok());
  child.Release();
  EXPECT_EQ(child.Wait(), 0);
  Collector c(m.get());
  ASSERT_TRUE(
      c.PollUntil([&] { return c.Of(96, EventKind::kUdpSend).size() >= 4; }));
  c.Drain();
  auto sends = c.Of(96, EventKind::kUdpSend);
  ASSERT_EQ(sends.size(), 4u);
  std::set<uint16_t> seen;
  for (const auto& e : sends) {
    EXPECT_EQ(e.pid, child.pid());
    EXPECT_EQ(e.remote_addr, "127.0.0.1");
    EXPECT_NE(e.local_port, 0);
    seen.insert(e.remote_port);
  }
  EXPECT_EQ(seen, (std::set<uint16_t>{ports[0], ports[1], ports[2], ports[3]}));
  for (int fd : rx) close(fd);
  ExpectSeqAccountedFor(c, m.get(), 96);
}

}  // namespace
}  // namespace mez::bpf
