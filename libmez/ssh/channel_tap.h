// The seam between the SSH server and the recorder: the server reports
// what flows through each session channel, and the recorder (later) turns
// it into asciicast frames or a live recording stream.
#ifndef MEZ_SSH_CHANNEL_TAP_H_
#define MEZ_SSH_CHANNEL_TAP_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/util/status.h"
#include "libmez/util/stream.h"

namespace mez::ssh {

// What is known when a shell, exec or direct-tcpip channel starts.
struct ChannelInfo {
  ChannelKind kind = ChannelKind::kShell;
  // Random per SSH connection (32 lowercase hex), shared by its channels.
  std::string connection_id;
  std::string login;    // the SSH user name, as granted by the cert
  std::string key_id;   // the certificate's key id (the Mezite user)
  std::string remote;   // "address:port" of the client
  std::string command;  // exec only
  bool pty = false;
  std::string term;  // pty only
  int width = 0;     // pty only, in columns
  int height = 0;    // pty only, in rows
  // tcpip only: the originator the client reported and the destination it
  // asked for (a host name or an address literal, as sent).
  std::string src_host;
  uint16_t src_port = 0;
  std::string dst_host;
  uint16_t dst_port = 0;
  int64_t start_micros = 0;  // Clock::MonotonicMicros() at the start
  // The node a connection handed over with SshServer::Adopt serves (the
  // proxy's agentless node name); empty for connections it accepted.
  std::string target;
  // The certificate's extensions (name -> value), e.g. the user's JWT
  // under auth::kMeziteTokenExtension.
  std::map<std::string, std::string> cert_extensions;
};

// One tap per channel, created by the server's TapFactory when the program
// starts (tcpip: when the destination is being connected) and destroyed
// after OnExit (or after the connection ended without an exit).
//
// tcpip channels: OnData(kIn) carries client -> destination bytes and
// OnData(kOut) destination -> client; an empty OnData marks the end of
// that direction (half close). OnExit(0) when the channel closes after
// the destination connection was made; OnExit(1) with no data before it
// when the destination could not be reached. Calls come from the connection's
// thread, never concurrently for one tap, in the order the bytes moved. Times
// are Clock::MonotonicMicros(). A tap must not block for long: it runs on the
// thread that pumps the channel.
class ChannelTap {
 public:
  virtual ~ChannelTap() = default;
  virtual void OnData(Direction direction, std::string_view bytes,
                      int64_t micros) = 0;
  virtual void OnResize(int width, int height, int64_t micros) = 0;
  // `exit_status` is the exit code, or 128 + signal number when the program
  // was killed by a signal (as shells report it).
  virtual void OnExit(int exit_status, int64_t micros) = 0;
  // Polled by the connection at least every 200 ms: non-empty means the
  // session must end now; the server writes this one-line message to the
  // user's terminal, hangs up on the program and closes the channel.
  virtual std::string EndReason() { return ""; }
  // Shell and exec channels of a local program: called with the channel's
  // first process after fork and before it runs anything of the user's
  // (it waits until this returns). The tap makes the process followed
  // (enhanced recording: Monitor::Track). Non-OK: the process never runs
  // the user's program and the channel ends with the message.
  virtual Status TrackProcess(pid_t pid) {
    (void)pid;
    return Status::Ok();
  }
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_CHANNEL_TAP_H_
