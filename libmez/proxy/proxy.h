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
// recorders and modes as on an agent (libmez/recorder/recorders.h), over
// gRPC to mezrecd with a proxy token.
//
// Refused, and audited as "proxy.refused": names that are not registered
// nodes, users that no longer exist or have no login, agentless nodes
// without a pinned host key, and agentless sessions the node's sshd did
// not let in (wrong host key, refused certificate). Refused
// authentications are audited as "auth.refused" with the node the
// connection was for ("proxy" for the jump host itself).
//
// The proxy runs inside an auth mezrecd (--roles auth,proxy: it reads the
// catalog and signs with the user CA itself), or alone (--roles proxy
// --identity FILE: a proxy-only mezrecd that asks the auth mezrecd named
// in the identity over gRPC, with a proxy token from
// `mezctl users add NAME --role=proxy`). ProxyBackend is that difference.
//
// The host key is kept in DATA_DIR/proxy_host_key (made on first start)
// and presented both by the jump host and for agentless nodes: libssh 0.10
// cannot present host certificates, so clients pin it (msh ssh does).
// node mode spools agentless recordings in DATA_DIR/proxy-spool.
#ifndef MEZ_PROXY_PROXY_H_
#define MEZ_PROXY_PROXY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "libmez/catalog/catalog.h"
#include "libmez/recorder/frames.h"
#include "libmez/rpc/channel.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::ssh {
class SshServer;
struct ChannelInfo;
}  // namespace mez::ssh
namespace mez::recorder {
class Recorders;
}

namespace mez::proxy {

// A fresh key pair and a user certificate for it
// (auth::UpstreamCertRequest), signed by the user CA (PKCS#8 PEM): what
// the proxy logs in to an agentless node's sshd with, on the user's
// behalf.
struct UpstreamCredentials {
  std::string key_openssh;  // unencrypted OpenSSH private key
  std::string cert_blob;    // certificate, SSH wire format
};
Result<UpstreamCredentials> IssueUpstreamCredentials(
    const std::string& user_ca_private_pem, const std::string& user,
    const std::string& login, Clock* clock);

// What the proxy asks of the cluster. Called from connection threads,
// possibly concurrently.
class ProxyBackend {
 public:
  virtual ~ProxyBackend() = default;
  // May info.key_id go to the node info.dst_host (rpc::AuthorizeProxyHop)?
  // Refusals are audited as proxy.refused.
  virtual Result<catalog::Node> AuthorizeHop(const ssh::ChannelInfo& info) = 0;
  // The node `name`, for a connection already let through.
  virtual Result<catalog::Node> GetNode(const std::string& name) = 0;
  // Credentials for `login` of `user` on an agentless node; refused
  // unless it is one of the user's logins.
  virtual Result<UpstreamCredentials> Credentials(const std::string& user,
                                                  const std::string& login) = 0;
  // An audit event about `node` (best effort: failures are logged).
  virtual void Audit(const std::string& type, const std::string& user,
                     const std::string& node,
                     const nlohmann::json& details) = 0;
};

// In-process: the catalog and the user CA's private key.
std::unique_ptr<ProxyBackend> NewLocalBackend(catalog::Catalog* catalog,
                                              std::string user_ca_private_pem,
                                              Clock* clock);
// Over gRPC to an auth mezrecd, with a proxy token (rpc::ClusterClient;
// `server` is the address its connection errors name).
std::unique_ptr<ProxyBackend> NewRemoteBackend(
    std::shared_ptr<grpc::Channel> channel, std::string token,
    std::string server = "");

struct ProxyOptions {
  std::string listen = "127.0.0.1:3023";  // HOST:PORT, IP literal; port 0
  std::string data_dir;  // proxy_host_key and proxy-spool/ live here
  // The cluster's user CA, "ssh-ed25519 AAAA... comment".
  std::string user_ca_public;
  std::shared_ptr<ProxyBackend> backend;  // required
  // Recording agentless sessions: mezrecd's gRPC and a proxy token for
  // it. Without a channel, agentless nodes are refused.
  std::shared_ptr<grpc::Channel> channel;
  std::string token;
  std::optional<recorder::RecordingMode> mode_override;
  // How new agentless sessions learn session_recording (recorders.h):
  // from setting_source when set (the in-process proxy reads the catalog),
  // else from a GetConfig over `channel` every setting_refresh_us.
  std::function<Result<std::string>()> setting_source;
  int64_t setting_refresh_us = 10'000'000;
  Clock* clock = nullptr;  // nullptr: RealClock()
};

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
  std::unique_ptr<recorder::Recorders> recorders_;
  // rpc::WatchChannel: a recording service that went away is noticed
  // within about 100 ms (node-sync sessions then end).
  std::shared_ptr<void> watcher_;
  // Agentless sessions, handed over by server_ (stopped first).
  std::unique_ptr<ssh::SshServer> terminator_;
  std::unique_ptr<ssh::SshServer> server_;
};

}  // namespace mez::proxy

#endif  // MEZ_PROXY_PROXY_H_
