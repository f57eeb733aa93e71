#include "libmez/proxy/proxy.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>

#include "libmez/agent/recorders.h"
#include "libmez/auth/identity.h"
#include "libmez/auth/keys.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/auth/token.h"
#include "libmez/rpc/cluster_service.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/ssh/upstream.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"
#include "libmez/util/log.h"

namespace mez::proxy {
namespace {

// The node name audit events of the proxy itself carry.
constexpr const char* kProxyNode = "proxy";

// "host:port" or "[v6]:port" -> parts; kInvalidArgument otherwise.
Status SplitAddress(const std::string& addr, std::string* host,
                    uint16_t* port) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr.size()) {
    return InvalidArgument("'" + addr + "' is not HOST:PORT");
  }
  std::string h = addr.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  std::string p = addr.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535) {
    return InvalidArgument("'" + addr + "' has a bad port");
  }
  *host = h;
  *port = static_cast<uint16_t>(std::stoi(p));
  return Status::Ok();
}

void Audit(catalog::Catalog* catalog, Clock* clock, const std::string& type,
           const std::string& user, const std::string& node,
           const nlohmann::json& details) {
  catalog::AuditEvent e;
  e.time_us = clock->WallMicros();
  e.type = type;
  e.user = user;
  e.node = node;
  // Names come from the client and need not be UTF-8: replace, never
  // throw.
  e.details =
      details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto r = catalog->AppendAudit(e);
  if (!r.ok()) {
    MEZ_LOG(kError) << "proxy: audit " << type << ": " << r.status().ToString();
  }
}

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
  // The name is the client's: what reaches the audit log is short
  // printable ASCII (node names are plain identifiers anyway).
  std::string name = info.dst_host.substr(0, 255);
  for (char& ch : name) {
    if (ch < 0x21 || ch > 0x7e) ch = '?';
  }
  auto refuse = [&](Code code, const std::string& why) {
    nlohmann::json d = {{"remote", info.remote},
                        {"login", info.login},
                        {"dst_host", name},
                        {"dst_port", info.dst_port},
                        {"reason", why}};
    Audit(o.catalog, o.clock, "proxy.refused", info.key_id, name, d);
    return Status(code, why);
  };
  auto user = o.catalog->GetUser(info.key_id);
  if (!user.ok()) {
    if (user.status().code() != Code::kNotFound) return user.status();
    return refuse(Code::kPermissionDenied,
                  "user '" + info.key_id + "' does not exist");
  }
  if (user->logins.empty()) {
    return refuse(Code::kPermissionDenied,
                  "user '" + user->name + "' has no login on any node");
  }
  auto node = o.catalog->GetNode(info.dst_host);
  if (!node.ok()) {
    if (node.status().code() != Code::kNotFound) return node.status();
    return refuse(Code::kNotFound, "node '" + name + "' is not registered");
  }
  if (node->openssh) {
    if (o.user_ca_private_pem.empty() || !o.channel) {
      return refuse(Code::kFailedPrecondition,
                    "node '" + node->name +
                        "' is an agentless (OpenSSH) node, and this proxy "
                        "cannot sign certificates or record for it");
    }
    if (node->host_key.empty()) {
      return refuse(Code::kFailedPrecondition,
                    "agentless node '" + node->name +
                        "' has no pinned host key; register it with "
                        "mezctl nodes add --openssh --host-key");
    }
    MEZ_LOG(kInfo) << "proxy: " << info.remote << " (user " << info.key_id
                   << ") to agentless node " << node->name << " at "
                   << node->addr << ", bridged and recorded here";
    // Never connected: the opener hands the channel to the terminator.
    return ssh::TcpipDestination{node->name, 22};
  }
  ssh::TcpipDestination dest;
  Status split = SplitAddress(node->addr, &dest.host, &dest.port);
  if (!split.ok()) {
    return refuse(Code::kFailedPrecondition,
                  "node '" + node->name + "' address: " + split.message());
  }
  MEZ_LOG(kInfo) << "proxy: " << info.remote << " (user " << info.key_id
                 << ") to node " << node->name << " at " << node->addr;
  return dest;
}

// The agentless node a terminated connection is for, with its sshd's
// address and pinned host key.
struct Target {
  ssh::UpstreamOptions upstream;  // host, port and host key only
  std::string name;
};

Result<Target> AgentlessTarget(const ProxyOptions& o, const std::string& name) {
  auto node = o.catalog->GetNode(name);
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
  MEZ_RETURN_IF_ERROR(SplitAddress(addr, &t.upstream.host, &t.upstream.port));
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
  MEZ_ASSIGN_OR_RETURN(
      UpstreamCredentials c,
      IssueUpstreamCredentials(o.user_ca_private_pem, info.key_id, info.login,
                               o.clock));
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
                      {"kind", std::string(ssh::ChannelKindName(info.kind))},
                      {"reason", why.message()}};
  Audit(o.catalog, o.clock, "proxy.refused", info.key_id, info.target, d);
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
  auth::SshCertRequest r;
  r.public_key_blob = key.second;
  r.type = auth::kSshUserCert;
  r.key_id = user;
  r.principals = {login};
  r.valid_after = now - 60;
  r.valid_before = now + kUpstreamCertSeconds;
  r.extensions = {{"permit-pty", ""}, {"permit-port-forwarding", ""}};
  UpstreamCredentials c;
  MEZ_ASSIGN_OR_RETURN(c.cert_blob, auth::SignSshCert(user_ca_private_pem, r));
  c.key_openssh = std::move(key.first);
  return c;
}

Result<std::unique_ptr<Proxy>> Proxy::Start(ProxyOptions options) {
  if (options.catalog == nullptr) {
    return InvalidArgument("proxy: no catalog");
  }
  if (options.clock == nullptr) options.clock = RealClock();
  std::string host;
  uint16_t port = 0;
  Status split = SplitAddress(options.listen, &host, &port);
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
  so.jump_host_only = true;
  so.allow_tcpip_forwarding = true;
  so.clock = o->clock;
  so.on_refusal = [o](const ssh::AuthRefusal& r) {
    nlohmann::json d = {
        {"remote", r.remote}, {"login", r.login}, {"reason", r.reason}};
    Audit(o->catalog, o->clock, "auth.refused", r.key_id, kProxyNode, d);
  };
  so.resolve_tcpip = [o](const ssh::ChannelInfo& info) {
    return ResolveNode(*o, info);
  };
  if (!o->user_ca_private_pem.empty() && o->channel) {
    std::string spool = o->data_dir + "/proxy-spool";
    if (mkdir(spool.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("proxy: create " + spool, errno);
    }
    agent::RecordersOptions ro;
    ro.channel = o->channel;
    ro.token = o->token;
    ro.spool_dir = spool;
    ro.mode_override = o->mode_override;
    ro.clock = o->clock;
    MEZ_ASSIGN_OR_RETURN(proxy->recorders_,
                         agent::Recorders::Start(std::move(ro)));
    agent::Recorders* rec = proxy->recorders_.get();
    ssh::SshServerOptions to;
    to.accept_connections = false;
    to.host_key_openssh = so.host_key_openssh;
    to.trusted_user_ca_blob = so.trusted_user_ca_blob;
    to.required_cert_extensions = {std::string(auth::kMeziteTokenExtension)};
    to.clock = o->clock;
    to.on_refusal = [o](const ssh::AuthRefusal& r) {
      nlohmann::json d = {
          {"remote", r.remote}, {"login", r.login}, {"reason", r.reason}};
      Audit(o->catalog, o->clock, "auth.refused", r.key_id, r.target, d);
    };
    to.launch_program = [o](const ssh::ChannelInfo& info,
                            const std::vector<std::string>& env) {
      return LaunchOnNode(*o, info, env);
    };
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
      auto node = o->catalog->GetNode(info.dst_host);
      if (!node.ok() || !node->openssh) return ssh::OpenedStream{};
      int fds[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        return ErrnoStatus("proxy: socketpair", errno);
      }
      Status adopted = terminator->Adopt(fds[1], info.remote, node->name);
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
}

Result<std::shared_ptr<void>> StartForMezrecd(const rpc::RoleContext& rc) {
  constexpr int64_t kProxyTokenTtl = 365LL * 24 * 3600;
  MEZ_ASSIGN_OR_RETURN(
      std::string token,
      auth::IssueToken(*rc.signer, rc.keys->cluster_name, auth::Role::kProxy,
                       "proxy", {}, kProxyTokenTtl, rc.clock));
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (rc.tls_ca_pem.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = rc.tls_ca_pem;
    creds = grpc::SslCredentials(ssl);
  }
  ProxyOptions po;
  po.listen = rc.config->proxy_listen;
  po.data_dir = rc.config->data_dir;
  po.user_ca_public = rc.keys->user_ca_public;
  po.user_ca_private_pem = rc.keys->user_ca_private_pem;
  po.catalog = rc.catalog;
  po.channel = grpc::CreateChannel(rc.grpc_addr, creds);
  po.token = std::move(token);
  if (const char* m = getenv("MEZITE_RECORDING_MODE"); m != nullptr && *m) {
    MEZ_ASSIGN_OR_RETURN(po.mode_override, agent::ParseRecordingMode(m));
  }
  po.clock = rc.clock;
  MEZ_ASSIGN_OR_RETURN(std::unique_ptr<Proxy> proxy,
                       Proxy::Start(std::move(po)));
  // msh learns where the proxy is, and which host key to expect, from
  // ResolveNode.
  std::string key_line = std::string(auth::kSshEd25519) + " " +
                         Base64Encode(proxy->server_host_key_blob()) +
                         " mezite-proxy";
  MEZ_RETURN_IF_ERROR(
      rc.catalog->SetConfig(std::string(rpc::kProxyAddrKey), proxy->address()));
  MEZ_RETURN_IF_ERROR(
      rc.catalog->SetConfig(std::string(rpc::kProxyHostKeyKey), key_line));
  // Users added from the admin identity inherit the proxy address, so
  // that their msh ssh goes through the proxy.
  std::string admin = rc.config->data_dir + "/admin.identity";
  if (auto id = auth::ReadIdentityFile(admin);
      id.ok() && id->proxy_addr != proxy->address()) {
    id->proxy_addr = proxy->address();
    MEZ_RETURN_IF_ERROR(auth::WriteIdentityFile(admin, *id));
  }
  std::fprintf(stderr, "mezrecd: proxy serving SSH on %s\n",
               proxy->address().c_str());
  return std::shared_ptr<void>(std::move(proxy));
}

}  // namespace mez::proxy
