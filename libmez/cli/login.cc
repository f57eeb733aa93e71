// msh login: stores an identity file and greets with who it names.
#include <cstdio>

#include "libmez/auth/identity.h"
#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"
#include "libmez/cli/output.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;

}  // namespace

Status Login(const std::string& identity_file) {
  MEZ_ASSIGN_OR_RETURN(std::string path, rpc::StoreLogin(identity_file));
  MEZ_ASSIGN_OR_RETURN(auto id, auth::ReadIdentityFile(path));
  MEZ_ASSIGN_OR_RETURN(auto client, rpc::ClusterClient::Connect(id));
  pb::WhoAmIResponse me;
  MEZ_RETURN_IF_ERROR(client->WhoAmI(pb::WhoAmIRequest(), &me));
  std::string logins;
  for (const auto& l : me.logins()) logins += (logins.empty() ? "" : ",") + l;
  std::printf("Logged in to %s as %s (%s%s%s), valid until %s.\n",
              id.auth_addr.c_str(), me.name().c_str(), me.role().c_str(),
              logins.empty() ? "" : ", logins: ", logins.c_str(),
              IsoUtc(me.expires_at() * 1'000'000).c_str());
  std::printf("Identity stored in %s\n", path.c_str());
  return Status::Ok();
}

}  // namespace mez::cli
