#include "libmez/rpc/proxy.h"

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <utility>

#include "libmez/auth/ssh_cert.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/util/file.h"
#include "libmez/util/log.h"

namespace mez::rpc {
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
    return refuse(Code::kFailedPrecondition,
                  "node '" + node->name +
                      "' is an agentless (OpenSSH) node, which this proxy "
                      "does not serve yet");
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
  MEZ_ASSIGN_OR_RETURN(proxy->server_, ssh::SshServer::Start(std::move(so)));
  std::string shown =
      host.find(':') != std::string::npos ? "[" + host + "]" : host;
  proxy->address_ = shown + ":" + std::to_string(proxy->server_->port());
  return proxy;
}

Proxy::~Proxy() { Stop(); }

void Proxy::Stop() {
  if (server_) server_->Stop();
}

}  // namespace mez::rpc
