// msh status and msh logout: which identity the CLIs use, and forgetting it.
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "libmez/auth/identity.h"
#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"
#include "libmez/cli/output.h"
#include "libmez/rpc/identity.h"
#include "libmez/util/duration.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;

// The identity file the CLIs would use and where that choice came from,
// in ResolveIdentity's order.
std::pair<std::string, std::string> ChosenIdentity(const std::string& flag) {
  if (!flag.empty()) return {flag, "--identity"};
  const char* env = std::getenv("MEZ_IDENTITY");
  if (env && *env) return {env, "MEZ_IDENTITY"};
  return {rpc::DefaultIdentityPath(), "msh login"};
}

}  // namespace

Status ShowStatus(const std::string& identity) {
  auto [path, from] = ChosenIdentity(identity);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (from == "msh login") {
      return FailedPrecondition(
          "not logged in: run 'msh login --identity FILE' with the identity "
          "file your administrator gave you (or pass --identity FILE)");
    }
    return FailedPrecondition("no identity file " + path + " (from " + from +
                              ")");
  }
  MEZ_ASSIGN_OR_RETURN(auto id, auth::ReadIdentityFile(path));
  MEZ_ASSIGN_OR_RETURN(auto info, rpc::PeekToken(id.token));
  std::printf("Identity: %s (from %s)\n", path.c_str(), from.c_str());
  std::printf("Cluster:  %s%s\n", id.auth_addr.c_str(),
              id.tls_ca_pem.empty() ? " (plaintext)" : "");
  std::printf("User:     %s (%s)\n", info.subject.c_str(), info.role.c_str());
  int64_t now = time(nullptr);
  if (info.expires_at != 0 && info.expires_at <= now) {
    std::printf("Expires:  %s (expired %s ago)\n",
                IsoUtc(info.expires_at * 1'000'000).c_str(),
                FormatDuration((now - info.expires_at) * 1'000'000).c_str());
    return FailedPrecondition(
        "your identity expired: ask an administrator "
        "for a new one ('mezctl users reissue " +
        info.subject +
        " --identity-out FILE') and run 'msh login "
        "--identity FILE'");
  }
  if (info.expires_at != 0) {
    std::printf("Expires:  %s (in %s)\n",
                IsoUtc(info.expires_at * 1'000'000).c_str(),
                FormatDuration((info.expires_at - now) * 1'000'000).c_str());
  }
  // The logins are the server's answer: they are what `msh ssh` may use.
  MEZ_ASSIGN_OR_RETURN(auto client, rpc::ClusterClient::Connect(id));
  pb::WhoAmIResponse me;
  MEZ_RETURN_IF_ERROR(client->WhoAmI(pb::WhoAmIRequest(), &me));
  std::string logins;
  for (const auto& l : me.logins()) logins += (logins.empty() ? "" : ",") + l;
  std::printf("Logins:   %s\n", logins.empty() ? "(none)" : logins.c_str());
  return Status::Ok();
}

Status Logout() {
  std::string path = rpc::DefaultIdentityPath();
  if (unlink(path.c_str()) != 0) {
    if (errno != ENOENT) return ErrnoStatus("remove " + path, errno);
    std::printf("Not logged in (no %s).\n", path.c_str());
    return Status::Ok();
  }
  std::printf("Logged out: removed %s.\n", path.c_str());
  return Status::Ok();
}

}  // namespace mez::cli
