// Who a caller is: identity checks against the catalog, join tokens, the
// role check and the audit of refusals.
#include <openssl/sha.h>

#include <nlohmann/json.hpp>

#include "libmez/cluster/cluster.h"
#include "libmez/util/encoding.h"
#include "libmez/util/log.h"

namespace mez::cluster {

using auth::Role;

std::string JoinTokenHash(const std::string& token) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         md);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), sizeof(md)));
}

Result<auth::Role> CheckIdentity(catalog::Catalog* catalog, auth::Role role,
                                 const std::string& subject,
                                 const std::string& uid,
                                 const std::string& legacy_join_hash) {
  auto refuse = [](const std::string& why) {
    return Status(Code::kUnauthenticated, why);
  };
  if (role == Role::kJoin) {
    return refuse(
        "a join token is good only for mezd's first JoinNode, which "
        "exchanges it for the node's credential; start mezd with it");
  }
  if (role == Role::kSession) {
    return refuse(
        "a session token is not a bearer credential; call with the "
        "identity's own token");
  }
  const std::string what =
      (role == Role::kNode ? "node '"
                           : std::string(auth::RoleName(role)) + " '") +
      subject + "'";
  if (uid.empty()) {
    return refuse("the token of " + what +
                  " carries no identity id (issued before ids existed); an "
                  "admin issues a new one (mezctl " +
                  (role == Role::kNode ? "nodes rm and nodes add"
                                       : "users rm and users add") +
                  ")");
  }
  std::string row_id;
  Role current = role;
  if (role == Role::kNode) {
    auto n = catalog->GetNode(subject);
    if (!n.ok()) {
      if (n.status().code() != Code::kNotFound) return n.status();
      return refuse("node '" + subject + "' is not registered");
    }
    row_id = n->id;
    if (!legacy_join_hash.empty() && n->id == uid &&
        n->join_token_hash != legacy_join_hash) {
      return refuse(
          "this node token of an older release was exchanged for a node "
          "credential, which mezd keeps in its data dir (node_credential); "
          "the old token no longer works");
    }
  } else {
    auto u = catalog->GetUser(subject);
    if (!u.ok()) {
      if (u.status().code() != Code::kNotFound) return u.status();
      return refuse(what + " no longer exists");
    }
    row_id = u->id;
    bool is_proxy_row = u->role == "proxy";
    if (is_proxy_row != (role == Role::kProxy)) {
      return refuse("the token of " + what + " does not match the " + u->role +
                    " of that name; use the token issued for it");
    }
    // The role in the catalog wins over the one in an older token.
    auto parsed = auth::ParseRole(u->role);
    if (!parsed.ok()) return parsed.status();
    current = *parsed;
  }
  if (row_id != uid) {
    return refuse("the token of " + what +
                  " was revoked: that name was removed and added again; use "
                  "the token issued when it was last added");
  }
  return current;
}

Result<auth::Claims> CheckJoinToken(catalog::Catalog* catalog,
                                    auth::Claims claims,
                                    const std::string& token,
                                    std::string* join_hash) {
  join_hash->clear();
  // The node the token was issued for, still under the same id.
  MEZ_RETURN_IF_ERROR(
      CheckIdentity(catalog, Role::kNode, claims.subject, claims.uid).status());
  std::string hash = JoinTokenHash(token);
  // Refused early when already used; JoinNode uses it up atomically.
  MEZ_ASSIGN_OR_RETURN(catalog::Node node, catalog->GetNode(claims.subject));
  if (node.join_token_hash != hash) {
    return Status(Code::kUnauthenticated,
                  "the join token of node '" + claims.subject +
                      "' was already used (a join token is good once); "
                      "start mezd with the data dir that holds its "
                      "credential, or have an admin run: mezctl nodes rm " +
                      claims.subject + " && mezctl nodes add " +
                      claims.subject);
  }
  *join_hash = std::move(hash);
  claims.role = Role::kNode;
  return claims;
}

Result<catalog::Node> AuthorizeProxyHop(catalog::Catalog* catalog, Clock* clock,
                                        const std::string& proxy,
                                        const std::string& user,
                                        const std::string& name,
                                        const std::string& remote,
                                        const std::string& login) {
  // Names come from the client: what reaches the audit log is short
  // printable ASCII (node names are plain identifiers anyway).
  std::string shown = name.substr(0, 255);
  for (char& ch : shown) {
    if (ch < 0x21 || ch > 0x7e) ch = '?';
  }
  auto refuse = [&](Code code, const std::string& why) {
    catalog::AuditEvent e;
    e.time_us = clock->WallMicros();
    e.type = "proxy.refused";
    e.user = user.substr(0, 255);
    e.node = shown;
    e.details =
        nlohmann::json({{"remote", remote},
                        {"login", login},
                        {"dst_host", shown},
                        {"proxy", proxy},
                        {"reason", why}})
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto r = catalog->AppendAudit(e);
    if (!r.ok()) {
      MEZ_LOG(kError) << "audit proxy.refused: " << r.status().ToString();
    }
    return Status(code, why);
  };
  auto u = catalog->GetUser(user);
  if (!u.ok()) {
    if (u.status().code() != Code::kNotFound) return u.status();
    return refuse(Code::kPermissionDenied,
                  "user '" + user + "' does not exist");
  }
  if (u->logins.empty()) {
    return refuse(Code::kPermissionDenied,
                  "user '" + u->name + "' has no login on any node");
  }
  auto node = catalog->GetNode(name);
  if (!node.ok()) {
    if (node.status().code() != Code::kNotFound) return node.status();
    return refuse(Code::kNotFound, "node '" + shown + "' is not registered");
  }
  return node;
}

Cluster::Cluster(ClusterOptions options) : opt_(std::move(options)) {
  if (opt_.clock == nullptr) opt_.clock = RealClock();
  if (!opt_.audit) {
    catalog::Catalog* catalog = opt_.catalog;
    opt_.audit = [catalog](const catalog::AuditEvent& e) {
      auto r = catalog->AppendAudit(e);
      if (!r.ok()) {
        MEZ_LOG(kError) << "audit " << e.type << ": " << r.status().ToString();
      }
    };
  }
}

void Cluster::Audit(const std::string& type, const std::string& user,
                    const std::string& session_id, const std::string& details) {
  catalog::AuditEvent e;
  e.time_us = opt_.clock->WallMicros();
  e.type = type;
  e.user = user;
  e.session_id = session_id;
  e.details = details;
  opt_.audit(e);
}

void Cluster::AuditDenied(const auth::Claims* who, std::string_view method,
                          const Status& why) {
  nlohmann::json d = {{"method", std::string(method)},
                      {"code", std::string(CodeName(why.code()))},
                      {"reason", why.message()}};
  if (who) d["role"] = std::string(auth::RoleName(who->role));
  Audit("access.denied", who ? who->subject : "", "", d.dump());
}

Status Cluster::Require(const auth::Claims& caller, std::string_view method,
                        std::initializer_list<auth::Role> roles) {
  for (Role r : roles) {
    if (caller.role == r) return Status::Ok();
  }
  std::string names;
  for (Role r : roles) {
    if (!names.empty()) names += " or ";
    names += auth::RoleName(r);
  }
  // The one place a role refusal is worded: it names the identity that
  // would do and how the CLIs take one.
  std::string article = names[0] == 'a' ? "an " : "a ";
  std::string who = names == "admin" ? "an admin's" : "such an";
  Status denied = PermissionDenied(
      std::string(method) + " needs " + article + names +
      " credential; you are " + caller.subject + " (" +
      std::string(auth::RoleName(caller.role)) + "): run it with " + who +
      " identity (--identity FILE or MEZ_IDENTITY)");
  AuditDenied(&caller, method, denied);
  return denied;
}

Status Cluster::WhoAmI(const auth::Claims& caller) {
  return Require(caller, "WhoAmI",
                 {Role::kUser, Role::kAdmin, Role::kNode, Role::kProxy});
}

}  // namespace mez::cluster
