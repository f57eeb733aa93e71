// One accepted SSH connection, served on its own thread: key exchange,
// certificate authentication, session channels and direct-tcpip channels.
// Internal to libmez/ssh.
#ifndef MEZ_SSH_CONNECTION_H_
#define MEZ_SSH_CONNECTION_H_

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libmez/ssh/ssh_server.h"

namespace mez::ssh {

// Fixed for the server's lifetime; shared read-only by all connections.
struct ServerContext {
  const SshServerOptions* options = nullptr;
  Clock* clock = nullptr;
  const std::atomic<bool>* stopping = nullptr;
  std::string user;  // the user the server runs as
  // Root may start sessions for any login in the passwd database; anyone
  // else only for `user`.
  bool is_root = false;
};

// A login's passwd entry, as the session's program gets it.
struct LoginUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
  std::string shell;
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

  int OnAuthPubkey(const char* user, ssh_key pubkey, char signature_state);
  ssh_channel OnChannelOpen();
  // Returns 1 for libssh's default reply (a refusal), 0 when handled.
  int OnMessage(ssh_message message);
  int OnDirectTcpip(ssh_message message);
  bool StartProgram(Channel& ch, ChannelKind kind, const std::string& command);
  ChannelInfo SessionInfo(const Channel& ch, ChannelKind kind,
                          const std::string& command) const;
  // Ends a session channel before any program ran, with `message` on the
  // user's stderr (written by Pump).
  bool EndBeforeStart(Channel& ch, const std::string& message);
  void Refuse(const std::string& login, const std::string& key_id,
              const std::string& reason);
  void Pump(Channel& ch);
  void PumpTcpip(Channel& ch);
  void PullLeftover(Channel& ch);
  void SetSocketPoll(Channel& ch, short events);
  void CloseTcpip(Channel& ch, bool reached);
  void DrainOutput(Channel& ch, bool is_err);
  void Unregister(Channel& ch);
  void Finish(Channel& ch);
  bool NeedsQuickPoll() const;
  // Work that no fd will announce is waiting: client bytes that arrived
  // while a Pump pass was writing, or a window that opened then.
  bool ReadyNow() const;

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
  LoginUser user_;  // login_'s passwd entry
  std::string key_id_;
  std::map<std::string, std::string> cert_extensions_;
  std::vector<std::unique_ptr<Channel>> channels_;
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_CONNECTION_H_
