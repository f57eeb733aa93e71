// msh web and mezctl web: a sign-in link for the web UI.
#include <time.h>

#include <cstdio>

#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

Status WebSignIn(const std::string& identity, const char* program) {
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  mezite::v1::CreateSignInCodeResponse resp;
  MEZ_RETURN_IF_ERROR(
      client->CreateSignInCode(mezite::v1::CreateSignInCodeRequest(), &resp));
  int64_t left = resp.expires_at() - time(nullptr);
  std::printf("%s/login#%s\n", resp.public_url().c_str(), resp.code().c_str());
  std::fflush(stdout);
  std::fprintf(stderr,
               "%s: open this link in your browser within %lld s; it signs "
               "you in once, as %s\n",
               program, static_cast<long long>(left > 0 ? left : 0),
               client->identity().username.empty()
                   ? "you"
                   : client->identity().username.c_str());
  return Status::Ok();
}

}  // namespace mez::cli
