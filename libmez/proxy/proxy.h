// mezrecd's proxy role (DESIGN.md "Proxy and agentless nodes"): an SSH jump
// host. Users authenticate with their cluster user certificate (the SSH
// user name is their Mezite user name or one of their logins) and open
// direct-tcpip channels to a node by its catalog name, so that the stock
// client works with `ssh -J alice@proxy login@node`.
//
// Agent nodes: the channel is relayed to the node's catalog address
// untouched. The SSH session inside it runs end to end between the client
// and the agent; the proxy never sees its plaintext, records nothing and
// opens no Record stream (the agent records, as without a proxy).
//
// Agentless (--openssh) nodes: the proxy terminates the SSH session inside
// the channel itself (host key: the proxy's own, see below), checks the
// user's certificate (the login must be one of its principals), and logs
// in to the node's sshd with a fresh certificate for that login from the
// user CA (valid kUpstreamCertSeconds), checking the host key pinned at
// `mezctl nodes add --host-key`. Shell, exec, pty, window changes, env,
// exit status and direct-tcpip are bridged, and recorded through the same
// recorders and modes as on an agent (libmez/agent/recorders.h), over
// gRPC to mezrecd with a proxy token.
//
// Refused, and audited as "proxy.refused": names that are not registered
// nodes, users that no longer exist or have no login, agentless nodes
// without a pinned host key, and agentless sessions the node's sshd did
// not let in (wrong host key, refused certificate). Refused
// authentications are audited as "auth.refused" with the node the
// connection was for ("proxy" for the jump host itself).
//
// The host key is kept in DATA_DIR/proxy_host_key (made on first start)
// and presented both by the jump host and for agentless nodes: libssh 0.10
// cannot present host certificates, so clients pin it (msh ssh does).
// node mode spools agentless recordings in DATA_DIR/proxy-spool.
#ifndef MEZ_PROXY_PROXY_H_
#define MEZ_PROXY_PROXY_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "libmez/agent/frames.h"
#include "libmez/catalog/catalog.h"
#include "libmez/rpc/server.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::ssh {
class SshServer;
}
namespace mez::agent {
class Recorders;
}

namespace mez::proxy {

struct ProxyOptions {
  std::string listen = "127.0.0.1:3023";  // HOST:PORT, IP literal; port 0
  std::string data_dir;  // proxy_host_key and proxy-spool/ live here
  // The cluster's user CA, "ssh-ed25519 AAAA... comment".
  std::string user_ca_public;
  // Its private key (PKCS#8 PEM), for the certificates the proxy logs in
  // to agentless nodes with. Empty: agentless nodes are refused.
  std::string user_ca_private_pem;
  catalog::Catalog* catalog = nullptr;  // must outlive the proxy
  // Recording agentless sessions: mezrecd's gRPC and a proxy token for it.
  std::shared_ptr<grpc::Channel> channel;
  std::string token;
  std::optional<agent::RecordingMode> mode_override;
  Clock* clock = nullptr;  // nullptr: RealClock()
};

// A fresh key pair and a user certificate for it: key id `user`, the one
// principal `login`, valid for kUpstreamCertSeconds (backdated a minute
// for clock skew), permit-pty and permit-port-forwarding, signed by the
// user CA (PKCS#8 PEM). What the proxy logs in to an agentless node's sshd
// with, on the user's behalf.
inline constexpr int64_t kUpstreamCertSeconds = 300;
struct UpstreamCredentials {
  std::string key_openssh;  // unencrypted OpenSSH private key
  std::string cert_blob;    // certificate, SSH wire format
};
Result<UpstreamCredentials> IssueUpstreamCredentials(
    const std::string& user_ca_private_pem, const std::string& user,
    const std::string& login, Clock* clock);

class Proxy {
 public:
  // Loads or makes the host key and starts serving. kInvalidArgument for a
  // bad address or CA; kUnavailable when the address cannot be bound.
  static Result<std::unique_ptr<Proxy>> Start(ProxyOptions options);
  ~Proxy();  // Stop()
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // "HOST:PORT" with the bound port.
  const std::string& address() const { return address_; }
  // The host key's public blob (SSH wire format).
  const std::string& server_host_key_blob() const;
  // Hangs up every connection and joins the threads. Idempotent.
  void Stop();

 private:
  Proxy() = default;

  ProxyOptions options_;
  std::string address_;
  std::unique_ptr<agent::Recorders> recorders_;
  // Agentless sessions, handed over by server_ (stopped first).
  std::unique_ptr<ssh::SshServer> terminator_;
  std::unique_ptr<ssh::SshServer> server_;
};

// rpc::RunMezrecd's hook for the proxy role: a proxy for this mezrecd,
// recording agentless sessions with a proxy token it signs itself.
// Prints "mezrecd: proxy serving SSH on ADDR".
Result<std::shared_ptr<void>> StartForMezrecd(const rpc::RoleContext& context);

}  // namespace mez::proxy

#endif  // MEZ_PROXY_PROXY_H_
