#include "libmez/proxy/proxy.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>

#include "libmez/auth/identity.h"
#include "libmez/auth/keys.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/auth/token.h"
#include "libmez/cluster/cluster.h"
#include "libmez/recorder/recorders.h"
#include "libmez/recorder/sync_recorder.h"
#include "libmez/rpc/client.h"
#include "libmez/settings/settings.h"
#include "libmez/ssh/login_policy.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/ssh/upstream.h"
#include "libmez/util/file.h"
#include "libmez/util/host_port.h"
#include "libmez/util/log.h"
#include "mezite/v1/cluster.pb.h"

namespace mez::proxy {
namespace {

// The node name audit events of the proxy itself carry.
constexpr const char* kProxyNode = "proxy";

Result<std::string> LoadOrCreateHostKey(const std::string& data_dir) {
  std::string path = data_dir + "/proxy_host_key";
  if (access(path.c_str(), F_OK) == 0) return ReadFile(path);
  MEZ_ASSIGN_OR_RETURN(auto generated, auth::GenerateSshUserKey());
  MEZ_RETURN_IF_ERROR(AtomicWriteFile(path, generated.first, 0600));
  return generated.first;
}

// Where a direct-tcpip channel to a node name goes; every refusal is
// audited.
Result<ssh::TcpipDestination> ResolveNode(const ProxyOptions& o,
                                          const ssh::ChannelInfo& info) {
  MEZ_ASSIGN_OR_RETURN(catalog::Node node, o.backend->AuthorizeHop(info));
  auto refuse = [&](Code code, const std::string& why) {
    nlohmann::json d = {{"remote", info.remote},
                        {"login", info.login},
                        {"dst_host", node.name},
                        {"dst_port", info.dst_port},
                        {"reason", why}};
    o.backend->Audit("proxy.refused", info.key_id, node.name, d);
    return Status(code, why);
  };
  if (node.openssh) {
    if (!o.channel) {
      return refuse(Code::kFailedPrecondition,
                    "node '" + node.name +
                        "' is an agentless (OpenSSH) node, and this proxy "
                        "cannot record for it");
    }
    if (node.host_key.empty()) {
      return refuse(Code::kFailedPrecondition,
                    "agentless node '" + node.name +
                        "' has no pinned host key; register it with "
                        "mezctl nodes add --openssh --host-key");
    }
    MEZ_LOG(kInfo) << "proxy: " << info.remote << " (user " << info.key_id
                   << ") to agentless node " << node.name << " at " << node.addr
                   << ", bridged and recorded here";
    // Never connected: the opener hands the channel to the terminator.
    return ssh::TcpipDestination{node.name, 22};
  }
  ssh::TcpipDestination dest;
  Status split = SplitHostPort(node.addr, &dest.host, &dest.port);
  if (!split.ok()) {
    return refuse(Code::kFailedPrecondition,
                  "node '" + node.name + "' address: " + split.message());
  }
  MEZ_LOG(kInfo) << "proxy: " << info.remote << " (user " << info.key_id
                 << ") to node " << node.name << " at " << node.addr;
  return dest;
}

// The agentless node a terminated connection is for, with its sshd's
// address and pinned host key.
struct Target {
  ssh::UpstreamOptions upstream;  // host, port and host key only
  std::string name;
};

Result<Target> AgentlessTarget(const ProxyOptions& o, const std::string& name) {
  auto node = o.backend->GetNode(name);
  if (!node.ok()) return node.status();
  if (!node->openssh) {
    return FailedPrecondition("node '" + name + "' is not agentless");
  }
  Target t;
  t.name = node->name;
  std::string addr = node->addr;
  if (addr.rfind(':') == std::string::npos || addr.back() == ']') {
    addr += ":22";  // A host alone means sshd's port.
  }
  MEZ_RETURN_IF_ERROR(SplitHostPort(addr, &t.upstream.host, &t.upstream.port));
  auto blob = auth::Ed25519BlobFromPublicLine(node->host_key);
  if (!blob.ok()) {
    return FailedPrecondition(
        "the host key pinned for " + name +
        " is not an ssh-ed25519 key: " + blob.status().message());
  }
  t.upstream.pinned_host_key_blob = std::move(blob).value();
  return t;
}

// UpstreamOptions for `info`'s user and login on its target node.
Result<ssh::UpstreamOptions> UpstreamFor(const ProxyOptions& o,
                                         const ssh::ChannelInfo& info) {
  MEZ_ASSIGN_OR_RETURN(Target t, AgentlessTarget(o, info.target));
  MEZ_ASSIGN_OR_RETURN(UpstreamCredentials c,
                       o.backend->Credentials(info.key_id, info.login));
  ssh::UpstreamOptions u = std::move(t.upstream);
  u.login = info.login;
  u.user_key_openssh = std::move(c.key_openssh);
  u.user_cert_blob = std::move(c.cert_blob);
  return u;
}

// A session or forward the node could not give: audited, and the reason
// goes back to the user.
Status RefuseUpstream(const ProxyOptions& o, const ssh::ChannelInfo& info,
                      const Status& why) {
  nlohmann::json d = {{"remote", info.remote},
                      {"login", info.login},
                      {"kind", std::string(ChannelKindName(info.kind))},
                      {"reason", why.message()}};
  o.backend->Audit("proxy.refused", info.key_id, info.target, d);
  return Status(why.code(),
                "mezite proxy: " + info.target + ": " + why.message());
}

Result<std::unique_ptr<ssh::Program>> LaunchOnNode(
    const ProxyOptions& o, const ssh::ChannelInfo& info,
    const std::vector<std::string>& env) {
  Result<ssh::UpstreamOptions> u = UpstreamFor(o, info);
  if (!u.ok()) return RefuseUpstream(o, info, u.status());
  ssh::UpstreamSessionRequest r;
  r.command = info.command;
  r.pty = info.pty;
  r.term = info.term;
  r.width = info.width > 0 ? info.width : 80;
  r.height = info.height > 0 ? info.height : 24;
  r.env = env;
  auto program = ssh::OpenUpstreamSession(*u, r);
  if (!program.ok()) return RefuseUpstream(o, info, program.status());
  return program;
}

Result<ssh::OpenedStream> ForwardOnNode(const ProxyOptions& o,
                                        const ssh::ChannelInfo& info) {
  Result<ssh::UpstreamOptions> u = UpstreamFor(o, info);
  if (!u.ok()) return RefuseUpstream(o, info, u.status());
  auto stream = ssh::OpenUpstreamTcpip(*u, info.dst_host, info.dst_port,
                                       info.src_host, info.src_port);
  if (!stream.ok()) return RefuseUpstream(o, info, stream.status());
  return stream;
}

}  // namespace

Result<UpstreamCredentials> IssueUpstreamCredentials(
    const std::string& user_ca_private_pem, const std::string& user,
    const std::string& login, Clock* clock) {
  if (clock == nullptr) clock = RealClock();
  MEZ_ASSIGN_OR_RETURN(auto key, auth::GenerateSshUserKey());
  int64_t now = clock->WallMicros() / 1'000'000;
  auth::SshCertRequest r =
      auth::UpstreamCertRequest(key.second, user, login, now);
  UpstreamCredentials c;
  MEZ_ASSIGN_OR_RETURN(c.cert_blob, auth::SignSshCert(user_ca_private_pem, r));
  c.key_openssh = std::move(key.first);
  return c;
}

Result<std::unique_ptr<Proxy>> Proxy::Start(ProxyOptions options) {
  if (!options.backend) return InvalidArgument("proxy: no backend");
  if (options.clock == nullptr) options.clock = RealClock();
  std::string host;
  uint16_t port = 0;
  Status split = SplitHostPort(options.listen, &host, &port);
  if (!split.ok()) {
    return InvalidArgument("proxy listen address: " + split.message());
  }
  MEZ_ASSIGN_OR_RETURN(std::string ca_blob,
                       auth::Ed25519BlobFromPublicLine(options.user_ca_public));
  MEZ_ASSIGN_OR_RETURN(std::string host_key,
                       LoadOrCreateHostKey(options.data_dir));

  std::unique_ptr<Proxy> proxy(new Proxy());
  proxy->options_ = std::move(options);
  const ProxyOptions* o = &proxy->options_;
  ssh::SshServerOptions so;
  so.listen_address = host;
  so.port = port;
  so.host_key_openssh = std::move(host_key);
  so.trusted_user_ca_blob = std::move(ca_blob);
  so.login_policy = std::make_shared<ssh::JumpHostLoginPolicy>();
  so.allow_tcpip_forwarding = true;
  so.clock = o->clock;
  so.on_refusal = [o](const ssh::AuthRefusal& r) {
    nlohmann::json d = {
        {"remote", r.remote}, {"login", r.login}, {"reason", r.reason}};
    o->backend->Audit("auth.refused", r.key_id, kProxyNode, d);
  };
  so.resolve_tcpip = [o](const ssh::ChannelInfo& info) {
    return ResolveNode(*o, info);
  };
  if (o->channel) {
    std::string spool = o->data_dir + "/proxy-spool";
    if (mkdir(spool.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("proxy: create " + spool, errno);
    }
    recorder::RecordersOptions ro;
    ro.channel = o->channel;
    ro.token = std::make_shared<rpc::BearerToken>(o->token);
    ro.spool_dir = spool;
    ro.mode_override = o->mode_override;
    ro.setting_source = o->setting_source;
    if (!ro.setting_source) ro.setting_refresh_us = o->setting_refresh_us;
    ro.clock = o->clock;
    MEZ_ASSIGN_OR_RETURN(proxy->recorders_,
                         recorder::Recorders::Start(std::move(ro)));
    proxy->watcher_ = rpc::WatchChannel(o->channel);
    recorder::Recorders* rec = proxy->recorders_.get();
    ssh::SshServerOptions to;
    to.accept_connections = false;
    to.host_key_openssh = so.host_key_openssh;
    to.trusted_user_ca_blob = so.trusted_user_ca_blob;
    to.required_cert_extensions = {std::string(auth::kMeziteTokenExtension)};
    to.clock = o->clock;
    to.on_refusal = [o](const ssh::AuthRefusal& r) {
      nlohmann::json d = {
          {"remote", r.remote}, {"login", r.login}, {"reason", r.reason}};
      o->backend->Audit("auth.refused", r.key_id, r.target, d);
    };
    to.login_policy = std::make_shared<ssh::BridgeLoginPolicy>(
        [o](const ssh::ChannelInfo& info, const std::vector<std::string>& env) {
          return LaunchOnNode(*o, info, env);
        });
    to.open_tcpip = [o](const ssh::ChannelInfo& info) {
      return ForwardOnNode(*o, info);
    };
    to.tap_factory = [rec](const ssh::ChannelInfo& info) {
      return rec->NewTap(info, info.target);
    };
    to.on_connection_end = [rec](const std::string& id) {
      rec->ConnectionEnded(id);
    };
    MEZ_ASSIGN_OR_RETURN(proxy->terminator_,
                         ssh::SshServer::Start(std::move(to)));
    ssh::SshServer* terminator = proxy->terminator_.get();
    // Channels to agentless nodes go to the terminator through a socket
    // pair; others are connected as resolved.
    so.open_tcpip =
        [o, terminator](
            const ssh::ChannelInfo& info) -> Result<ssh::OpenedStream> {
      // Fails closed: a node that cannot be looked up again is refused,
      // never connected to directly (which would skip the recording).
      MEZ_ASSIGN_OR_RETURN(catalog::Node node,
                           o->backend->GetNode(info.dst_host));
      if (!node.openssh) return ssh::OpenedStream{};
      int fds[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        return ErrnoStatus("proxy: socketpair", errno);
      }
      Status adopted = terminator->Adopt(fds[1], info.remote, node.name);
      if (!adopted.ok()) {
        close(fds[0]);
        return adopted;
      }
      return ssh::OpenedStream{fds[0], nullptr};
    };
  }
  MEZ_ASSIGN_OR_RETURN(proxy->server_, ssh::SshServer::Start(std::move(so)));
  std::string shown =
      host.find(':') != std::string::npos ? "[" + host + "]" : host;
  proxy->address_ = shown + ":" + std::to_string(proxy->server_->port());
  return proxy;
}

Proxy::~Proxy() { Stop(); }

const std::string& Proxy::server_host_key_blob() const {
  return server_->host_public_key_blob();
}

void Proxy::Stop() {
  if (server_) server_->Stop();
  if (terminator_) terminator_->Stop();
  if (recorders_) recorders_->Stop();
  watcher_.reset();
}

namespace {

namespace pb = mezite::v1;

// An answer of the auth mezrecd (mapped by rpc::ClusterClient), saying
// where it came from.
Status FromAuth(const Status& s) {
  if (s.ok()) return s;
  return Status(s.code(), "auth mezrecd: " + s.message());
}

class LocalBackend : public ProxyBackend {
 public:
  LocalBackend(catalog::Catalog* catalog, std::string user_ca_private_pem,
               Clock* clock)
      : catalog_(catalog),
        pem_(std::move(user_ca_private_pem)),
        clock_(clock) {}

  Result<catalog::Node> AuthorizeHop(const ssh::ChannelInfo& info) override {
    return cluster::AuthorizeProxyHop(catalog_, clock_, kProxyNode, info.key_id,
                                      info.dst_host, info.remote, info.login);
  }
  Result<catalog::Node> GetNode(const std::string& name) override {
    return catalog_->GetNode(name);
  }
  Result<UpstreamCredentials> Credentials(const std::string& user,
                                          const std::string& login) override {
    MEZ_ASSIGN_OR_RETURN(catalog::User u, catalog_->GetUser(user));
    if (std::find(u.logins.begin(), u.logins.end(), login) == u.logins.end()) {
      return PermissionDenied("login '" + login + "' is not allowed for " +
                              user);
    }
    return IssueUpstreamCredentials(pem_, user, login, clock_);
  }
  void Audit(const std::string& type, const std::string& user,
             const std::string& node, const nlohmann::json& details) override {
    catalog::AuditEvent e;
    e.time_us = clock_->WallMicros();
    e.type = type;
    e.user = user;
    e.node = node;
    // Names come from the client and need not be UTF-8: replace, never
    // throw.
    e.details =
        details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto r = catalog_->AppendAudit(e);
    if (!r.ok()) {
      MEZ_LOG(kError) << "proxy: audit " << type << ": "
                      << r.status().ToString();
    }
  }

 private:
  catalog::Catalog* catalog_;
  std::string pem_;
  Clock* clock_;
};

class RemoteBackend : public ProxyBackend {
 public:
  RemoteBackend(std::shared_ptr<grpc::Channel> channel, std::string token,
                std::string server)
      : client_(std::move(channel),
                std::make_shared<rpc::BearerToken>(std::move(token)),
                std::move(server)) {}

  Result<catalog::Node> AuthorizeHop(const ssh::ChannelInfo& info) override {
    pb::ProxyHopRequest req;
    req.set_user(info.key_id);
    req.set_node(info.dst_host);
    req.set_remote(info.remote);
    req.set_login(info.login);
    pb::NodeInfo n;
    MEZ_RETURN_IF_ERROR(
        FromAuth(client_.AuthorizeProxyHop(req, &n, std::chrono::seconds(10))));
    return ToNode(n);
  }
  Result<catalog::Node> GetNode(const std::string& name) override {
    pb::ResolveNodeRequest req;
    req.set_name(name);
    pb::NodeInfo n;
    MEZ_RETURN_IF_ERROR(
        FromAuth(client_.ResolveNode(req, &n, std::chrono::seconds(10))));
    return ToNode(n);
  }
  Result<UpstreamCredentials> Credentials(const std::string& user,
                                          const std::string& login) override {
    MEZ_ASSIGN_OR_RETURN(auto key, auth::GenerateSshUserKey());
    pb::UpstreamCertRequest req;
    req.set_user(user);
    req.set_login(login);
    req.set_public_key_blob(key.second);
    pb::UpstreamCertResponse resp;
    MEZ_RETURN_IF_ERROR(FromAuth(
        client_.SignUpstreamCert(req, &resp, std::chrono::seconds(10))));
    UpstreamCredentials c;
    c.key_openssh = std::move(key.first);
    c.cert_blob = resp.certificate_blob();
    return c;
  }
  void Audit(const std::string& type, const std::string& user,
             const std::string& node, const nlohmann::json& details) override {
    pb::NodeAuditRequest req;
    req.set_type(type);
    req.set_user(user.substr(0, 256));
    req.set_node(node.substr(0, 255));
    req.set_details(
        details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    pb::NodeAuditResponse resp;
    Status g = client_.NodeAudit(req, &resp, std::chrono::seconds(5));
    if (!g.ok()) {
      MEZ_LOG(kError) << "proxy: audit " << type << " for " << node
                      << " not delivered: " << g.message();
    }
  }

 private:
  static catalog::Node ToNode(const pb::NodeInfo& n) {
    catalog::Node node;
    node.name = n.name();
    node.addr = n.addr();
    node.openssh = n.openssh();
    node.host_key = n.host_key();
    return node;
  }

  rpc::ClusterClient client_;
};

}  // namespace

std::unique_ptr<ProxyBackend> NewLocalBackend(catalog::Catalog* catalog,
                                              std::string user_ca_private_pem,
                                              Clock* clock) {
  return std::make_unique<LocalBackend>(catalog, std::move(user_ca_private_pem),
                                        clock != nullptr ? clock : RealClock());
}

std::unique_ptr<ProxyBackend> NewRemoteBackend(
    std::shared_ptr<grpc::Channel> channel, std::string token,
    std::string server) {
  return std::make_unique<RemoteBackend>(std::move(channel), std::move(token),
                                         std::move(server));
}

}  // namespace mez::proxy
