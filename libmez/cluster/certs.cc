// Certificates: user certificates with their recording grant, upstream
// certificates for agentless nodes, host certificates, the CAs.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "libmez/auth/ssh_cert.h"
#include "libmez/cluster/cluster.h"
#include "libmez/util/path.h"

namespace mez::cluster {

using auth::Role;

Result<std::string> Cluster::SignHostCert(const std::string& node,
                                          const std::string& key_blob,
                                          const std::string& addr) {
  // For the node's name and address host, so that clients that trust the
  // host CA accept it.
  int64_t now = opt_.clock->WallMicros() / 1'000'000;
  auth::SshCertRequest r;
  r.public_key_blob = key_blob;
  r.type = auth::kSshHostCert;
  r.key_id = node;
  r.principals = {node};
  std::string host = addr.substr(0, addr.rfind(':'));
  if (host.size() >= 2 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  if (!host.empty() && host != node) r.principals.push_back(host);
  r.valid_after = now - kUserCertBackdate;
  r.valid_before = now + kHostCertTtl;
  MEZ_ASSIGN_OR_RETURN(std::string cert,
                       auth::SignSshCert(opt_.keys->host_ca_private_pem, r));
  return auth::SshCertLine(cert, node);
}

Result<UserCert> Cluster::SignUserCert(const auth::Claims& caller,
                                       const std::string& login,
                                       const std::string& node_name,
                                       const std::string& public_key_blob) {
  MEZ_RETURN_IF_ERROR(
      Require(caller, "SignUserCert", {Role::kUser, Role::kAdmin}));
  MEZ_ASSIGN_OR_RETURN(catalog::User u, opt_.catalog->GetUser(caller.subject));
  std::string allowed;
  bool found = false;
  for (const auto& l : u.logins) {
    allowed += (allowed.empty() ? "" : ", ") + l;
    found |= l == login;
  }
  if (!found) {
    Status d = PermissionDenied(
        "login '" + login + "' is not allowed for " + u.name +
        " (allowed: " + (allowed.empty() ? "none" : allowed) + ")");
    AuditDenied(&caller, "SignUserCert", d);
    return d;
  }
  // The certificate is for one node: it carries a recording grant for that
  // node only, never the caller's API token (which would reach every node
  // and outlive the certificate).
  if (node_name.empty()) {
    return InvalidArgument(
        "node is required: a certificate is signed for one node (update "
        "msh)");
  }
  if (!IsPlainIdentifier(node_name)) {
    return InvalidArgument("node must be a registered node's name");
  }
  auto node = opt_.catalog->GetNode(node_name);
  if (!node.ok()) {
    if (node.status().code() != Code::kNotFound) return node.status();
    Status d = NotFound("node '" + node_name +
                        "' is not registered (mezctl nodes ls lists them)");
    AuditDenied(&caller, "SignUserCert", d);
    return d;
  }
  int64_t now = opt_.clock->WallMicros() / 1'000'000;
  auth::SshCertRequest r;
  r.public_key_blob = public_key_blob;
  r.type = auth::kSshUserCert;
  r.key_id = u.name;
  r.principals = {login};
  r.valid_after = now - kUserCertBackdate;
  r.valid_before = now + kUserCertTtl;
  if (caller.expires_at > 0 && caller.expires_at < r.valid_before) {
    r.valid_before = caller.expires_at;
  }
  if (r.valid_before <= now) {
    return Status(Code::kUnauthenticated,
                  "your token has expired: ask an administrator for a new "
                  "one ('mezctl users reissue " +
                      u.name +
                      " --identity-out FILE') and run 'msh login "
                      "--identity FILE'");
  }
  auth::Claims grant;
  grant.subject = u.name;
  grant.role = Role::kSession;
  grant.uid = u.id;
  grant.audience = node->name;
  grant.logins = {login};
  // The certificate is checked once, when the SSH connection is
  // authenticated, but channels (an exec, a port forward) open as long as
  // the connection lives, and each is recorded with this grant: it lives
  // as long as the caller's login, at most kMaxGrantTtl, while the
  // certificate itself stays short.
  int64_t grant_until = now + kMaxGrantTtl;
  if (caller.expires_at > 0 && caller.expires_at < grant_until) {
    grant_until = caller.expires_at;
  }
  MEZ_ASSIGN_OR_RETURN(std::string token,
                       auth::IssueToken(*opt_.signer, opt_.keys->cluster_name,
                                        grant, grant_until - now, opt_.clock));
  r.extensions = {{"permit-pty", ""},
                  {"permit-port-forwarding", ""},
                  {std::string(auth::kMeziteTokenExtension), token}};
  MEZ_ASSIGN_OR_RETURN(std::string blob,
                       auth::SignSshCert(opt_.keys->user_ca_private_pem, r));
  UserCert cert;
  cert.certificate_line = auth::SshCertLine(blob, u.name);
  cert.valid_before = r.valid_before;
  nlohmann::json d = {{"login", login},
                      {"principals", r.principals},
                      {"node", node->name},
                      {"valid_before", r.valid_before}};
  Audit("cert.issue", caller.subject, "", d.dump());
  return cert;
}

Result<std::string> Cluster::SignUpstreamCert(
    const auth::Claims& caller, const std::string& user,
    const std::string& login, const std::string& public_key_blob) {
  MEZ_RETURN_IF_ERROR(Require(caller, "SignUpstreamCert", {Role::kProxy}));
  auto u = opt_.catalog->GetUser(user);
  if (!u.ok()) {
    if (u.status().code() != Code::kNotFound) return u.status();
    return PermissionDenied("user '" + user + "' does not exist");
  }
  if (std::find(u->logins.begin(), u->logins.end(), login) == u->logins.end()) {
    Status d =
        PermissionDenied("login '" + login + "' is not allowed for " + u->name);
    AuditDenied(&caller, "SignUpstreamCert", d);
    return d;
  }
  int64_t now = opt_.clock->WallMicros() / 1'000'000;
  auth::SshCertRequest r =
      auth::UpstreamCertRequest(public_key_blob, u->name, login, now);
  MEZ_ASSIGN_OR_RETURN(std::string blob,
                       auth::SignSshCert(opt_.keys->user_ca_private_pem, r));
  nlohmann::json d = {{"login", login},
                      {"upstream", true},
                      {"proxy", caller.subject},
                      {"valid_before", r.valid_before}};
  Audit("cert.issue", u->name, "", d.dump());
  return blob;
}

Result<std::string> Cluster::ExportCA(const auth::Claims& caller,
                                      const std::string& type) {
  MEZ_RETURN_IF_ERROR(
      Require(caller, "ExportCA",
              {Role::kUser, Role::kAdmin, Role::kNode, Role::kProxy}));
  if (type == "user") return opt_.keys->user_ca_public;
  if (type == "host") return opt_.keys->host_ca_public;
  return InvalidArgument("CA type must be user or host (got '" + type + "')");
}

}  // namespace mez::cluster
