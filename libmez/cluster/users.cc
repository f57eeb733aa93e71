// Users and proxies: added with a token, listed, removed (revoked).
#include <nlohmann/json.hpp>

#include "libmez/cluster/cluster.h"

namespace mez::cluster {

using auth::Role;

Result<AddedUser> Cluster::AddUser(const auth::Claims& caller,
                                   const NewUser& req) {
  MEZ_RETURN_IF_ERROR(Require(caller, "AddUser", {Role::kAdmin}));
  catalog::User u;
  u.id = catalog::NewIdentityId();
  u.name = req.name;
  u.logins = req.logins;
  u.role = req.role.empty() ? "user" : req.role;
  u.created_us = opt_.clock->WallMicros();
  int64_t ttl = req.ttl_seconds > 0 ? req.ttl_seconds : kDefaultUserTtl;
  if (u.role != "user" && u.role != "admin" && u.role != "proxy") {
    return InvalidArgument("role must be user, admin or proxy (got '" + u.role +
                           "')");
  }
  if (u.role == "proxy" && !u.logins.empty()) {
    return InvalidArgument("a proxy has no logins; drop --logins");
  }
  if (std::string_view(u.name).starts_with(kReservedNamePrefix)) {
    return InvalidArgument("user names starting with '" +
                           std::string(kReservedNamePrefix) +
                           "' are reserved for mezrecd's own identities; pick "
                           "another name");
  }
  // A proxy is a principal like a user: listed by ListUsers, removed by
  // RemoveUser, which revokes its token.
  MEZ_RETURN_IF_ERROR(opt_.catalog->CreateUser(u));
  MEZ_ASSIGN_OR_RETURN(auth::Role role, auth::ParseRole(u.role));
  auth::Claims claims;
  claims.subject = u.name;
  claims.role = role;
  claims.logins = u.logins;
  claims.uid = u.id;
  AddedUser added;
  MEZ_ASSIGN_OR_RETURN(added.token,
                       auth::IssueToken(*opt_.signer, opt_.keys->cluster_name,
                                        std::move(claims), ttl, opt_.clock));
  if (u.role == "proxy") {
    nlohmann::json d = {{"name", u.name}, {"id", u.id}, {"ttl_seconds", ttl}};
    Audit("proxy.create", caller.subject, "", d.dump());
  } else {
    nlohmann::json d = {
        {"name", u.name}, {"id", u.id}, {"role", u.role}, {"logins", u.logins}};
    Audit("user.create", caller.subject, "", d.dump());
  }
  added.user = std::move(u);
  return added;
}

Result<std::vector<catalog::User>> Cluster::ListUsers(
    const auth::Claims& caller) {
  MEZ_RETURN_IF_ERROR(Require(caller, "ListUsers", {Role::kAdmin}));
  return opt_.catalog->ListUsers();
}

Status Cluster::RemoveUser(const auth::Claims& caller,
                           const std::string& name) {
  MEZ_RETURN_IF_ERROR(Require(caller, "RemoveUser", {Role::kAdmin}));
  if (name == caller.subject) {
    return FailedPrecondition("you cannot remove yourself");
  }
  // Read first only to name what was removed in the audit event; the
  // catalog records the revocation itself.
  auto gone = opt_.catalog->GetUser(name);
  MEZ_RETURN_IF_ERROR(opt_.catalog->DeleteUser(name));
  nlohmann::json d = {{"name", name}};
  if (gone.ok()) {
    d["id"] = gone->id;
    d["role"] = gone->role;
  }
  Audit("user.delete", caller.subject, "", d.dump());
  return Status::Ok();
}

Result<AddedUser> Cluster::ReissueUser(const auth::Claims& caller,
                                       const std::string& name,
                                       int64_t ttl_seconds) {
  MEZ_RETURN_IF_ERROR(Require(caller, "ReissueUser", {Role::kAdmin}));
  if (std::string_view(name).starts_with(kReservedNamePrefix)) {
    return InvalidArgument("'" + name +
                           "' is one of mezrecd's own identities; it has no "
                           "token to reissue");
  }
  auto u = opt_.catalog->GetUser(name);
  if (!u.ok()) {
    if (u.status().code() != Code::kNotFound) return u.status();
    return NotFound("no user '" + name +
                    "' (mezctl users ls lists them; mezctl users add creates "
                    "one)");
  }
  MEZ_ASSIGN_OR_RETURN(auth::Role role, auth::ParseRole(u->role));
  int64_t ttl = ttl_seconds > 0        ? ttl_seconds
                : role == Role::kProxy ? kDefaultProxyReissueTtl
                                       : kDefaultUserTtl;
  auth::Claims claims;
  claims.subject = u->name;
  claims.role = role;
  claims.logins = u->logins;
  claims.uid = u->id;
  AddedUser out;
  MEZ_ASSIGN_OR_RETURN(out.token,
                       auth::IssueToken(*opt_.signer, opt_.keys->cluster_name,
                                        std::move(claims), ttl, opt_.clock));
  nlohmann::json d = {{"name", u->name},
                      {"id", u->id},
                      {"role", u->role},
                      {"ttl_seconds", ttl}};
  Audit("user.reissue", caller.subject, "", d.dump());
  out.user = std::move(*u);
  return out;
}

}  // namespace mez::cluster
