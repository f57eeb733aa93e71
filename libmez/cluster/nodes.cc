// Nodes: registration, join and heartbeat (credentials, host key pin,
// revocations), resolution, the proxy's hello and hops.
#include <nlohmann/json.hpp>

#include "libmez/auth/ssh_cert.h"
#include "libmez/cluster/cluster.h"
#include "libmez/settings/settings.h"
#include "libmez/util/encoding.h"
#include "libmez/util/log.h"

namespace mez::cluster {
namespace {

using auth::Role;

// The ids of users and admins removed at or after now_us -
// kRevokedUserWindow: their certificates may still be valid, and mezd
// refuses them. The catalog's error when it cannot list them (the node
// then keeps the list it had: a partial one would forget revocations).
Result<std::vector<std::string>> RevokedUserIds(catalog::Catalog* catalog,
                                                int64_t now_us) {
  MEZ_ASSIGN_OR_RETURN(
      std::vector<catalog::Revocation> revs,
      catalog->ListRevocations(now_us - kRevokedUserWindow * 1'000'000));
  std::vector<std::string> ids;
  for (const catalog::Revocation& r : revs) {
    if (r.kind == "user" || r.kind == "admin") ids.push_back(r.id);
  }
  return ids;
}

std::string AlreadyUsedMessage(const std::string& node) {
  return "the join token of node '" + node +
         "' was already used (a join token is good once); start mezd with "
         "the data dir that holds its credential, or have an admin run: "
         "mezctl nodes rm " +
         node + " && mezctl nodes add " + node;
}

}  // namespace

Result<AddedNode> Cluster::AddNode(const auth::Claims& caller,
                                   const NewNode& req) {
  MEZ_RETURN_IF_ERROR(Require(caller, "AddNode", {Role::kAdmin}));
  AddedNode added;
  catalog::Node& n = added.node;
  n.name = req.name;
  n.addr = req.addr;
  n.openssh = req.openssh;
  n.login_hint = req.login_hint;
  n.host_key = req.host_key;
  n.created_us = opt_.clock->WallMicros();
  n.id = catalog::NewIdentityId();
  if (!n.openssh) {
    // Single use, short-lived, and pinning the TLS CA mezd is to trust:
    // JoinNode exchanges it for the node's credential.
    auth::Claims claims;
    claims.subject = n.name;
    claims.role = Role::kJoin;
    claims.uid = n.id;
    claims.ca_hash = opt_.tls_ca_sha256;
    MEZ_ASSIGN_OR_RETURN(
        added.join_token,
        auth::IssueToken(*opt_.signer, opt_.keys->cluster_name,
                         std::move(claims), auth::kJoinTokenTtl, opt_.clock));
    n.join_token_hash = JoinTokenHash(added.join_token);
  }
  MEZ_RETURN_IF_ERROR(opt_.catalog->CreateNode(n));
  if (!added.join_token.empty()) {
    added.join_token_expires_at =
        opt_.clock->WallMicros() / 1'000'000 + auth::kJoinTokenTtl;
  }
  nlohmann::json d = {
      {"name", n.name}, {"id", n.id}, {"addr", n.addr}, {"openssh", n.openssh}};
  Audit("node.create", caller.subject, "", d.dump());
  return added;
}

Result<std::vector<catalog::Node>> Cluster::ListNodes(
    const auth::Claims& caller) {
  MEZ_RETURN_IF_ERROR(Require(caller, "ListNodes", {Role::kAdmin}));
  return opt_.catalog->ListNodes();
}

Status Cluster::RemoveNode(const auth::Claims& caller,
                           const std::string& name) {
  MEZ_RETURN_IF_ERROR(Require(caller, "RemoveNode", {Role::kAdmin}));
  auto gone = opt_.catalog->GetNode(name);
  MEZ_RETURN_IF_ERROR(opt_.catalog->DeleteNode(name));
  nlohmann::json d = {{"name", name}};
  if (gone.ok()) d["id"] = gone->id;
  Audit("node.delete", caller.subject, "", d.dump());
  return Status::Ok();
}

Result<ResolvedNode> Cluster::ResolveNode(const auth::Claims& caller,
                                          const std::string& name) {
  MEZ_RETURN_IF_ERROR(Require(caller, "ResolveNode",
                              {Role::kUser, Role::kAdmin, Role::kProxy}));
  auto n = opt_.catalog->GetNode(name);
  if (!n.ok()) {
    if (n.status().code() == Code::kNotFound) {
      return NotFound("node '" + name + "' is not registered");
    }
    return n.status();
  }
  ResolvedNode r;
  r.node = std::move(n).value();
  // Published by the proxy role when it starts (libmez/proxy).
  auto paddr = opt_.catalog->GetConfig(std::string(kProxyAddrKey));
  auto pkey = opt_.catalog->GetConfig(std::string(kProxyHostKeyKey));
  if (paddr.ok() && paddr->has_value() && pkey.ok() && pkey->has_value()) {
    r.proxy_addr = **paddr;
    r.proxy_host_key = **pkey;
  }
  return r;
}

Result<JoinAnswer> Cluster::JoinNode(const auth::Claims& caller,
                                     const NodeReport& report,
                                     const std::string& join_hash) {
  MEZ_RETURN_IF_ERROR(Require(caller, "JoinNode", {Role::kNode}));
  const std::string& name = caller.subject;
  const bool exchange = !join_hash.empty();
  // Bounded before anything (the audit log included) sees it.
  if (report.addr.size() > 512 ||
      (!report.addr.empty() &&
       !catalog::ValidateNodeAddr(name, report.addr).ok())) {
    return InvalidArgument("addr must be HOST:PORT");
  }
  if (!report.recording_mode.empty()) {
    MEZ_RETURN_IF_ERROR(
        settings::Validate(settings::kSessionRecording, report.recording_mode));
  }
  JoinAnswer answer;
  std::string host_key_line;
  if (!report.host_key.empty()) {
    auto blob = auth::Ed25519BlobFromPublicLine(report.host_key);
    if (!blob.ok()) {
      return InvalidArgument("host_key: " + blob.status().message());
    }
    host_key_line = std::string(auth::kSshEd25519) + " " + Base64Encode(*blob);
    MEZ_ASSIGN_OR_RETURN(answer.host_certificate_line,
                         SignHostCert(name, *blob, report.addr));
  }
  // The host key is pinned by the first join (or by nodes add --host-key):
  // a different key later is refused, not re-pinned, since clients trust
  // the pinned one.
  MEZ_ASSIGN_OR_RETURN(catalog::Node node, opt_.catalog->GetNode(name));
  // The row read now is the one the caller was checked against (not a
  // node removed and added again in between).
  if (node.id != caller.uid) {
    return Status(Code::kUnauthenticated,
                  "node '" + name +
                      "' was removed and added again; this credential was "
                      "revoked");
  }
  if (!host_key_line.empty() && !node.host_key.empty() &&
      node.host_key != host_key_line) {
    nlohmann::json d = {{"node", name},
                        {"pinned", node.host_key},
                        {"offered", host_key_line},
                        {"addr", report.addr}};
    Audit("node.host_key_mismatch", "", "", d.dump());
    return FailedPrecondition(
        "node " + name +
        " offers a host key that differs from the pinned one; if the node "
        "was reinstalled, an admin runs: mezctl nodes rm " +
        name + " && mezctl nodes add " + name);
  }
  // Read-only parts of the answer first: once a join token is used up,
  // nothing but the answer may fail.
  MEZ_ASSIGN_OR_RETURN(answer.session_recording,
                       ReadSetting(opt_.catalog, settings::kSessionRecording));
  // Users removed lately, whose certificates mezd must refuse (issue 14
  // item 7).
  MEZ_ASSIGN_OR_RETURN(answer.revoked_user_ids,
                       RevokedUserIds(opt_.catalog, opt_.clock->WallMicros()));
  // The node's credential: new for a join token, renewed for a node
  // credential once a third of its life has passed.
  int64_t now_s = opt_.clock->WallMicros() / 1'000'000;
  bool renew = caller.expires_at - now_s <
               (caller.expires_at - caller.issued_at) * 2 / 3;
  if (exchange || renew) {
    auth::Claims nc;
    nc.subject = name;
    nc.role = Role::kNode;
    nc.uid = node.id;
    MEZ_ASSIGN_OR_RETURN(
        answer.node_token,
        auth::IssueToken(*opt_.signer, opt_.keys->cluster_name, std::move(nc),
                         auth::kNodeCredentialTtl, opt_.clock));
    answer.node_token_expires_at = now_s + auth::kNodeCredentialTtl;
  }
  // A join token is good once: used up here, before it changes anything,
  // in one catalog statement (one winner among replicas).
  if (exchange) {
    Status used = opt_.catalog->ConsumeJoinToken(name, join_hash);
    if (used.code() == Code::kNotFound) {
      Status refused(Code::kUnauthenticated, AlreadyUsedMessage(name));
      AuditDenied(&caller, "JoinNode", refused);
      return refused;
    }
    MEZ_RETURN_IF_ERROR(used);
  }
  if (exchange || renew) {
    nlohmann::json d = {{"name", name},
                        {"id", node.id},
                        {"addr", report.addr},
                        {"peer", report.peer},
                        {"expires_at", answer.node_token_expires_at}};
    Audit(exchange ? "node.join" : "node.credential_renew", "", "", d.dump());
  }
  Status touched = opt_.catalog->TouchNode(name, opt_.clock->WallMicros(),
                                           report.recording_mode, report.addr,
                                           host_key_line);
  if (!touched.ok()) {
    // The join token is used up: the answer must still go out (the next
    // heartbeat touches the node again).
    if (!exchange) return touched;
    MEZ_LOG(kWarning) << "JoinNode: " << touched.message();
  }
  answer.name = name;
  answer.user_ca_public = opt_.keys->user_ca_public;
  answer.host_ca_public = opt_.keys->host_ca_public;
  return answer;
}

Result<int64_t> Cluster::NodeAudit(const auth::Claims& caller,
                                   const NodeEvent& event) {
  MEZ_RETURN_IF_ERROR(
      Require(caller, "NodeAudit", {Role::kNode, Role::kProxy}));
  static const char* const kTypes[] = {"session.start",
                                       "session.end",
                                       "auth.refused",
                                       "recording.spool_full",
                                       "recording.upload_rejected",
                                       "proxy.refused"};
  bool known = false;
  for (const char* t : kTypes) known |= event.type == t;
  if (!known) {
    return InvalidArgument(
        "a node may report session.start, session.end, auth.refused, "
        "recording.spool_full, recording.upload_rejected or proxy.refused, "
        "not '" +
        event.type + "'");
  }
  if (event.session_id.size() > 128 || event.user.size() > 256 ||
      event.details.size() > 16 * 1024) {
    return InvalidArgument("audit event fields are too long");
  }
  nlohmann::json details = nlohmann::json::object();
  if (!event.details.empty()) {
    try {
      details = nlohmann::json::parse(event.details);
    } catch (const std::exception&) {
      return InvalidArgument("details must be a JSON object");
    }
    if (!details.is_object()) {
      return InvalidArgument("details must be a JSON object");
    }
  }
  catalog::AuditEvent e;
  e.time_us = opt_.clock->WallMicros();
  e.type = event.type;
  e.session_id = event.session_id;
  e.node = caller.subject;
  // A proxy reports for the agentless node it serves.
  if (caller.role == Role::kProxy && !event.node.empty()) {
    if (event.node.size() > 255) return InvalidArgument("node is too long");
    e.node = event.node;
  }
  if (!event.user_token.empty()) {
    auto claims = opt_.verifier->Verify(event.user_token,
                                        opt_.clock->WallMicros() / 1'000'000);
    if (claims.ok()) {
      // As for a recording: only the user's grant for this node.
      if (claims->role != Role::kSession) {
        return PermissionDenied(
            "user_token is a " + std::string(auth::RoleName(claims->role)) +
            " token; a node reports the user's recording grant from the SSH "
            "certificate, never an API token");
      }
      if (claims->audience != e.node) {
        return PermissionDenied("user_token is a grant for node '" +
                                claims->audience + "', not for '" + e.node +
                                "'");
      }
      e.user = claims->subject;
    } else if (claims.status().message().find("expired") != std::string::npos) {
      // The node was offline for longer than the token lived: keep the
      // event, marked as resting on an unverified name.
      details["token_expired"] = true;
      if (!event.user.empty()) details["claimed_user"] = event.user;
    } else {
      return Status(Code::kUnauthenticated,
                    "user_token: " + claims.status().message());
    }
  } else if (!event.user.empty()) {
    details["claimed_user"] = event.user;
  }
  details["reported_by"] = caller.subject;
  e.details = details.dump();
  return opt_.catalog->AppendAudit(e);
}

Result<ProxyWelcome> Cluster::ProxyHello(const auth::Claims& caller,
                                         const std::string& addr,
                                         const std::string& host_key) {
  MEZ_RETURN_IF_ERROR(Require(caller, "ProxyHello", {Role::kProxy}));
  // An empty addr only asks for the CA (before the proxy is bound).
  if (!addr.empty()) {
    auto blob = auth::Ed25519BlobFromPublicLine(host_key);
    if (!blob.ok()) {
      return InvalidArgument("host_key: " + blob.status().message());
    }
    std::string line = std::string(auth::kSshEd25519) + " " +
                       Base64Encode(*blob) + " mezite-proxy";
    MEZ_RETURN_IF_ERROR(
        opt_.catalog->SetConfig(std::string(kProxyAddrKey), addr));
    MEZ_RETURN_IF_ERROR(
        opt_.catalog->SetConfig(std::string(kProxyHostKeyKey), line));
    nlohmann::json d = {{"addr", addr}};
    Audit("proxy.hello", caller.subject, "", d.dump());
  }
  ProxyWelcome w;
  MEZ_ASSIGN_OR_RETURN(w.session_recording,
                       ReadSetting(opt_.catalog, settings::kSessionRecording));
  w.user_ca_public = opt_.keys->user_ca_public;
  return w;
}

Result<catalog::Node> Cluster::AuthorizeProxyHop(const auth::Claims& caller,
                                                 const std::string& user,
                                                 const std::string& node,
                                                 const std::string& remote,
                                                 const std::string& login) {
  MEZ_RETURN_IF_ERROR(Require(caller, "AuthorizeProxyHop", {Role::kProxy}));
  return cluster::AuthorizeProxyHop(opt_.catalog, opt_.clock, caller.subject,
                                    user, node, remote, login);
}

}  // namespace mez::cluster
