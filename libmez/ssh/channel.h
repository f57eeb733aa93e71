// A channel of one SSH connection (session or direct-tcpip) as the
// connection's thread keeps it, and the limits its pumps share. Internal to
// libmez/ssh: connection.cc runs the loop, session_channel.cc and
// tcpip_channel.cc move the bytes.
#ifndef MEZ_SSH_CHANNEL_H_
#define MEZ_SSH_CHANNEL_H_

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "libmez/ssh/byte_queue.h"
#include "libmez/ssh/channel_tap.h"
#include "libmez/ssh/connection.h"
#include "libmez/ssh/program.h"

namespace mez::ssh {

// Channels per connection, and client bytes buffered for a program that is
// slow to read (beyond it the client's window is not replenished).
constexpr size_t kMaxChannels = 16;
constexpr size_t kMaxPendingInput = 1 << 20;
// Bytes taken from one program stream per poll round, for fairness.
constexpr size_t kMaxReadPerRound = 256 * 1024;
// One write to the client from a program or a destination, gathered from
// as many reads as it takes: libssh cuts it into packets, then flushes,
// and with output still queued polls, on every channel write, so bulk
// output costs few system calls only in large writes.
constexpr size_t kReadChunk = 256 * 1024;

using SteadyTime = std::chrono::steady_clock::time_point;

struct Channel {
  Connection* conn = nullptr;
  ssh_channel channel = nullptr;
  ssh_channel_callbacks_struct callbacks{};
  bool started = false;
  bool pty = false;
  std::string term;
  int width = 80;
  int height = 24;
  std::vector<std::string> env;
  std::unique_ptr<Program> child;
  std::unique_ptr<ChannelTap> tap;
  ByteQueue pending_in;
  // Set before a program ran: Pump writes it to the user's stderr and
  // closes the channel with exit status 255.
  std::string end_message;
  bool client_eof = false;
  bool client_closed = false;
  // Registration of the program's fds in the connection's ssh_event.
  bool out_registered = false;
  bool err_registered = false;
  bool pid_registered = false;
  bool out_eof = false;
  bool err_eof = false;
  bool exited = false;
  int exit_status = 0;
  bool close_sent = false;

  // direct-tcpip only.
  bool tcpip = false;
  std::string destination;  // "host:port", for logs
  int sock = -1;
  short sock_events = 0;  // registered in the event; 0: not registered
  int polled_sock = -1;   // the fd registered with sock_events
  std::shared_ptr<void> stream_keeper;  // OpenedStream::keeper
  bool connecting = false;
  bool connected = false;
  std::vector<std::pair<sockaddr_storage, socklen_t>> addrs;
  size_t next_addr = 0;
  int connect_errno = 0;
  SteadyTime connect_deadline;
  bool lingering = false;  // flushing to the destination after the close
  SteadyTime linger_deadline;
  bool leftover = false;  // libssh may hold client bytes we did not take
  bool in_done = false;   // client -> destination ended (SHUT_WR sent)
  bool sock_eof = false;  // destination -> client ended
};

// libssh's channel callbacks that every kind of channel has (data, EOF,
// close), forwarding to the Channel in `userdata`. Defined in
// connection.cc.
struct ChannelCallbacks {
  static int Data(ssh_session, ssh_channel, void* data, uint32_t len,
                  int is_stderr, void* userdata);
  static void Eof(ssh_session, ssh_channel, void* userdata);
  static void Close(ssh_session, ssh_channel, void* userdata);
};

// For fds in the connection's event: the event only has to wake the poll;
// the work happens in Pump, outside libssh's poll loop (a libssh call from
// an fd callback re-enters it).
inline int WakeOnly(socket_t, int, void*) { return 0; }

inline int64_t NowMicros(const ServerContext* ctx) {
  return ctx->clock->MonotonicMicros();
}

}  // namespace mez::ssh

#endif  // MEZ_SSH_CHANNEL_H_
