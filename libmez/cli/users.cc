// mezctl users add/reissue/ls/rm: the cluster's users and their identity
// files.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "libmez/auth/identity.h"
#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"
#include "libmez/cli/output.h"
#include "libmez/util/duration.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;
using nlohmann::ordered_json;

// Prints `id` as JSON when `out` is empty, else writes it there.
Status EmitIdentity(const auth::Identity& id, const std::string& out) {
  if (out.empty()) {
    std::printf("%s\n", ordered_json{{"auth_addr", id.auth_addr},
                                     {"proxy_addr", id.proxy_addr},
                                     {"tls_ca_pem", id.tls_ca_pem},
                                     {"token", id.token},
                                     {"username", id.username}}
                            .dump(2)
                            .c_str());
    return Status::Ok();
  }
  return auth::WriteIdentityFile(out, id);
}

}  // namespace

Status UsersAdd(const UsersAddOptions& o) {
  std::string ttl = o.ttl;
  if (ttl.empty()) ttl = o.role == "proxy" ? "8760h" : "12h";
  MEZ_ASSIGN_OR_RETURN(int64_t ttl_us, ParseDuration(ttl));
  if (ttl_us < 60'000'000) return InvalidArgument("--ttl must be at least 1m");
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::AddUserRequest req;
  req.set_name(o.name);
  for (const auto& l : o.logins) req.add_logins(l);
  req.set_role(o.role);
  req.set_ttl_seconds(ttl_us / 1'000'000);
  pb::AddUserResponse resp;
  MEZ_RETURN_IF_ERROR(client->AddUser(req, &resp));
  auth::Identity id = client->identity();
  id.token = resp.token();
  id.username = o.name;
  MEZ_RETURN_IF_ERROR(EmitIdentity(id, o.identity_out));
  if (o.identity_out.empty()) return Status::Ok();
  std::printf(
      "Added user %s (%s). Identity written to %s; give it to them "
      "for 'msh login --identity %s'.\n",
      o.name.c_str(), o.role.c_str(), o.identity_out.c_str(),
      o.identity_out.c_str());
  return Status::Ok();
}

Status UsersReissue(const UsersReissueOptions& o) {
  int64_t ttl_us = 0;
  if (!o.ttl.empty()) {
    MEZ_ASSIGN_OR_RETURN(ttl_us, ParseDuration(o.ttl));
    if (ttl_us < 60'000'000)
      return InvalidArgument("--ttl must be at least 1m");
  }
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::ReissueUserRequest req;
  req.set_name(o.name);
  req.set_ttl_seconds(ttl_us / 1'000'000);
  pb::ReissueUserResponse resp;
  MEZ_RETURN_IF_ERROR(client->ReissueUser(req, &resp));
  auth::Identity id = client->identity();
  id.token = resp.token();
  id.username = o.name;
  MEZ_RETURN_IF_ERROR(EmitIdentity(id, o.identity_out));
  if (o.identity_out.empty()) return Status::Ok();
  std::printf(
      "Reissued an identity for %s (%s). Written to %s; give it to them "
      "for 'msh login --identity %s'. Their earlier identities stay valid "
      "until they expire ('mezctl users rm' revokes them all).\n",
      o.name.c_str(), resp.user().role().c_str(), o.identity_out.c_str(),
      o.identity_out.c_str());
  return Status::Ok();
}

Status UsersLs(const std::string& identity, const std::string& format_s) {
  MEZ_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(format_s));
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::ListUsersResponse resp;
  MEZ_RETURN_IF_ERROR(client->ListUsers(pb::ListUsersRequest(), &resp));
  auto logins = [](const pb::UserInfo& u) {
    std::string s;
    for (const auto& l : u.logins()) s += (s.empty() ? "" : ",") + l;
    return s;
  };
  if (format != OutputFormat::kText) {
    std::vector<ordered_json> rows;
    for (const auto& u : resp.users()) {
      rows.push_back(ordered_json{{"name", u.name()},
                                  {"id", u.id()},
                                  {"role", u.role()},
                                  {"logins", u.logins()},
                                  {"created", IsoUtc(u.created_us())}});
    }
    PrintJson(rows, format);
    return Status::Ok();
  }
  Table t({"NAME", "ROLE", "LOGINS", "CREATED"});
  for (const auto& u : resp.users()) {
    t.AddRow({u.name(), u.role(), logins(u), IsoUtc(u.created_us())});
  }
  t.Print(stdout, StdoutIsTty(), TerminalWidth());
  return Status::Ok();
}

Status UsersRm(const std::string& identity, const std::string& name) {
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::RemoveUserRequest req;
  req.set_name(name);
  pb::RemoveUserResponse resp;
  MEZ_RETURN_IF_ERROR(client->RemoveUser(req, &resp));
  std::printf("Removed user %s; every token issued for it is revoked.\n",
              name.c_str());
  return Status::Ok();
}

}  // namespace mez::cli
