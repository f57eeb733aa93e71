// One accepted SSH connection, served on its own thread: key exchange,
// certificate authentication, session channels. Internal to libmez/ssh.
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

#include "libmez/ssh/ssh_server.h"

namespace mez::ssh {

// Fixed for the server's lifetime; shared read-only by all connections.
struct ServerContext {
  const SshServerOptions* options = nullptr;
  Clock* clock = nullptr;
  const std::atomic<bool>* stopping = nullptr;
  std::string user;  // the user the server runs as, the only login allowed
  std::string home;
  std::string shell;
};

struct Channel;

class Connection {
 public:
  // Takes ownership of `session` (accepted, key exchange not yet done).
  Connection(const ServerContext* ctx, ssh_session session, std::string remote);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Serves the connection until the client leaves or the server stops.
  void Run();

 private:
  friend struct ConnectionCallbacks;

  int OnAuthPubkey(const char* user, ssh_key pubkey, char signature_state);
  ssh_channel OnChannelOpen();
  bool StartProgram(Channel& ch, ChannelKind kind, const std::string& command);
  void Refuse(const std::string& login, const std::string& key_id,
              const std::string& reason);
  void Pump(Channel& ch);
  void DrainOutput(Channel& ch, bool is_err);
  void Unregister(Channel& ch);
  void Finish(Channel& ch);
  bool NeedsQuickPoll() const;

  const ServerContext* ctx_;
  ssh_session session_;
  ssh_event event_ = nullptr;
  std::string remote_;
  ssh_server_callbacks_struct server_callbacks_{};
  bool authenticated_ = false;
  std::string login_;
  std::string key_id_;
  std::map<std::string, std::string> cert_extensions_;
  std::vector<std::unique_ptr<Channel>> channels_;
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_CONNECTION_H_
