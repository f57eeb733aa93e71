// One accepted SSH connection, served on its own thread: key exchange,
// certificate authentication (the login decided by the server's
// LoginPolicy) and the event loop over its channels. Internal to
// libmez/ssh. The channels' own work is in session_channel.cc (shell and
// exec) and tcpip_channel.cc (direct-tcpip).
#ifndef MEZ_SSH_CONNECTION_H_
#define MEZ_SSH_CONNECTION_H_

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libmez/ssh/login_policy.h"
#include "libmez/ssh/ssh_server.h"

namespace mez::ssh {

// Fixed for the server's lifetime; shared read-only by all connections.
struct ServerContext {
  const SshServerOptions* options = nullptr;  // login_policy is set
  Clock* clock = nullptr;
  const std::atomic<bool>* stopping = nullptr;
};

struct Channel;

class Connection {
 public:
  // Takes ownership of `session` (accepted, key exchange not yet done).
  // `target`: ChannelInfo::target of its channels (SshServer::Adopt).
  Connection(const ServerContext* ctx, ssh_session session, std::string remote,
             std::string target = "");
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Serves the connection until the client leaves or the server stops.
  void Run();

 private:
  friend struct ConnectionCallbacks;
  friend struct ChannelCallbacks;
  friend struct SessionCallbacks;

  // connection.cc: authentication and the loop.
  int OnAuthPubkey(const char* user, ssh_key pubkey, char signature_state);
  // Returns 1 for libssh's default reply (a refusal), 0 when handled.
  int OnMessage(ssh_message message);
  void Refuse(const std::string& login, const std::string& key_id,
              const std::string& reason);
  // Sends `text` to the client as a userauth banner (best effort).
  void TellClient(const std::string& text);
  void Pump(Channel& ch);
  void PullLeftover(Channel& ch);
  void Unregister(Channel& ch);
  bool NeedsQuickPoll() const;
  // Work that no fd will announce is waiting: client bytes that arrived
  // while a Pump pass was writing, or a window that opened then.
  bool ReadyNow() const;

  // session_channel.cc: shell and exec channels.
  ssh_channel OnChannelOpen();
  bool StartProgram(Channel& ch, ChannelKind kind, const std::string& command);
  ChannelInfo SessionInfo(const Channel& ch, ChannelKind kind,
                          const std::string& command) const;
  // Ends a session channel before any program ran, with `message` on the
  // user's stderr (written by Pump).
  bool EndBeforeStart(Channel& ch, const std::string& message);
  void PumpSession(Channel& ch);
  void DrainOutput(Channel& ch, bool is_err);
  void Finish(Channel& ch);

  // tcpip_channel.cc: direct-tcpip channels.
  int OnDirectTcpip(ssh_message message);
  void PumpTcpip(Channel& ch);
  // Closes a direct-tcpip channel whose tap wants the channel to end.
  void EndTcpipForTap(Channel& ch);
  void SetSocketPoll(Channel& ch, short events);
  void CloseTcpip(Channel& ch, bool reached);

  const ServerContext* ctx_;
  ssh_session session_;
  ssh_event event_ = nullptr;
  std::string remote_;
  std::string target_;
  ssh_server_callbacks_struct server_callbacks_{};
  std::string connection_id_;  // 32 lowercase hex, random
  bool authenticated_ = false;
  // Set by the data callback; cleared before each Pump pass.
  bool input_arrived_ = false;
  // What DrainOutput, PullLeftover and PumpTcpip read into: kReadChunk
  // bytes, not zeroed, so that an idle session touches few of them.
  std::unique_ptr<char[]> read_buf_;
  std::string login_;
  std::unique_ptr<Login> admitted_;  // what login_'s sessions run
  std::string key_id_;
  std::map<std::string, std::string> cert_extensions_;
  std::vector<std::unique_ptr<Channel>> channels_;
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_CONNECTION_H_
