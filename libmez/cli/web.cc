// msh web and mezctl web: a sign-in link for the web UI.
#include <time.h>

#include <cstdio>

#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"

namespace mez::cli {
namespace {

// What mezrecd sends is checked before it reaches the terminal: a code is
// hex, the URL an https (or http) URL of printable ASCII without blanks.
bool PlainCode(const std::string& code) {
  if (code.empty() || code.size() > 128) return false;
  for (char c : code) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool PlainUrl(const std::string& url) {
  if (url.size() > 2048) return false;
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) {
    return false;
  }
  for (char c : url) {
    if (c <= 0x20 || c >= 0x7F) return false;
  }
  return true;
}

}  // namespace

Status WebSignIn(const std::string& identity, const char* program) {
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  mezite::v1::CreateSignInCodeResponse resp;
  MEZ_RETURN_IF_ERROR(
      client->CreateSignInCode(mezite::v1::CreateSignInCodeRequest(), &resp));
  if (!PlainCode(resp.code()) || !PlainUrl(resp.public_url())) {
    return Status(Code::kDataLoss,
                  "mezrecd answered with a sign-in link that is not a plain "
                  "URL and code; not shown");
  }
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
