// Helpers for tests of forwarded TCP connections: a one-shot TCP
// destination, a full-duplex exchange, a background command, and reading
// a pcap's first TCP stream back with tshark.
#ifndef MEZ_TESTS_FORWARD_UTIL_H_
#define MEZ_TESTS_FORWARD_UTIL_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace mez::testing {

// How long an exchange or a destination waits at most.
inline constexpr auto kForwardDeadline = std::chrono::seconds(30);

// n pseudo-random bytes from `seed`.
std::string RandomBytes(size_t n, uint32_t seed);

// Sends `out` on the connected socket `fd`, then half-closes, while reading
// until the peer's EOF; both at once, so neither side can stall the other.
// The bytes read; *ok is false on an error or when the deadline passes.
std::string Exchange(int fd, const std::string& out, bool* ok);

// A TCP destination on 127.0.0.1: accepts one connection, sends `reply`
// and keeps what the client sent.
class Destination {
 public:
  explicit Destination(std::string reply);
  ~Destination();
  uint16_t port() const { return port_; }
  // Waits for the connection to end; false when the exchange failed.
  bool Finish();
  const std::string& received() const { return received_; }

 private:
  void Serve();

  std::string reply_;
  int fd_ = -1;
  uint16_t port_ = 0;
  bool ok_ = false;
  std::string received_;
  std::thread thread_;
};

// Whether some socket listens on 127.0.0.1:`port` (from /proc/net/tcp, so
// that checking opens no forwarded connection).
bool ListensOnLoopback(uint16_t port);

// A connected socket to 127.0.0.1:`port`, or -1.
int ConnectLoopback(uint16_t port);

// A shell command in its own process group (stdin /dev/null, output to
// `log`), killed with it when this object dies.
class Background {
 public:
  Background(const std::string& command, const std::string& log);
  ~Background() { Stop(); }
  bool running();
  // SIGTERM to the group, then SIGKILL if it lingers past 10 s.
  void Stop();

 private:
  pid_t pid_ = -1;
  int status_ = 0;
};

struct Followed {
  std::string to_node1;  // From the client (node 0).
  std::string to_node0;
};

// `tshark -q -z follow,tcp,raw,0` of the pcap at `path`.
Followed FollowStream0(const std::string& path);

// Conversations in `tshark -q -z conv,tcp`.
int TcpConversations(const std::string& path);

}  // namespace mez::testing

#endif  // MEZ_TESTS_FORWARD_UTIL_H_
