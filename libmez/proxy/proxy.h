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
// Refused, and audited as "proxy.refused": names that are not registered
// nodes, users that no longer exist or have no login, and agentless
// (--openssh) nodes, which this version does not serve yet. Refused
// authentications are audited as "auth.refused" with node "proxy".
//
// The host key is kept in DATA_DIR/proxy_host_key (made on first start).
#ifndef MEZ_RPC_PROXY_H_
#define MEZ_RPC_PROXY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "libmez/catalog/catalog.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::ssh {
class SshServer;
}

namespace mez::rpc {

struct ProxyOptions {
  std::string listen = "127.0.0.1:3023";  // HOST:PORT, IP literal; port 0
  std::string data_dir;                   // where proxy_host_key lives
  // The cluster's user CA, "ssh-ed25519 AAAA... comment".
  std::string user_ca_public;
  catalog::Catalog* catalog = nullptr;  // must outlive the proxy
  Clock* clock = nullptr;               // nullptr: RealClock()
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
  // Hangs up every connection and joins the threads. Idempotent.
  void Stop();

 private:
  Proxy() = default;

  ProxyOptions options_;
  std::string address_;
  std::unique_ptr<ssh::SshServer> server_;
};

}  // namespace mez::rpc

#endif  // MEZ_RPC_PROXY_H_
