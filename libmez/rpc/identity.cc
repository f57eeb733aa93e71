#include "libmez/rpc/identity.h"

#include <sys/stat.h>
#include <time.h>

#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "libmez/auth/token.h"

namespace mez::rpc {
namespace {

std::string IsoTime(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Status Precondition(const std::string& m) { return FailedPrecondition(m); }

}  // namespace

std::string DefaultIdentityPath() {
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.mez/identity";
}

Result<TokenInfo> PeekToken(const std::string& token) {
  size_t a = token.find('.');
  size_t b = token.find('.', a + 1);
  if (a == std::string::npos || b == std::string::npos) {
    return InvalidArgument("the identity's token is not a JWT");
  }
  auto payload = auth::Base64UrlDecode(token.substr(a + 1, b - a - 1));
  if (!payload.ok())
    return InvalidArgument("the identity's token is malformed");
  try {
    auto j = nlohmann::json::parse(*payload);
    TokenInfo info;
    info.subject = j.value("sub", "");
    info.role = j.value("role", "");
    info.expires_at = j.value("exp", int64_t{0});
    return info;
  } catch (const nlohmann::json::exception&) {
    return InvalidArgument("the identity's token is malformed");
  }
}

Result<auth::Identity> ResolveIdentity(const std::string& flag) {
  std::string path = flag;
  std::string from = "--identity";
  if (path.empty()) {
    const char* env = std::getenv("MEZ_IDENTITY");
    if (env && *env) {
      path = env;
      from = "MEZ_IDENTITY";
    }
  }
  if (path.empty()) {
    path = DefaultIdentityPath();
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      return Precondition(
          "not logged in: run 'msh login --identity FILE' with the identity "
          "file your administrator gave you (or pass --identity FILE)");
    }
    from = "msh login";
  }
  auto id = auth::ReadIdentityFile(path);
  if (!id.ok()) {
    return Precondition("cannot use the identity from " + from + ": " +
                        id.status().message());
  }
  auto info = PeekToken(id->token);
  if (!info.ok()) return Precondition(path + ": " + info.status().message());
  time_t now = time(nullptr);
  if (info->expires_at != 0 && info->expires_at <= now) {
    return Precondition("your identity " + path + " expired at " +
                        IsoTime(info->expires_at) +
                        ": ask an administrator for a new one ('mezctl users "
                        "reissue " +
                        info->subject +
                        " --identity-out FILE') and run 'msh login "
                        "--identity FILE'");
  }
  return id;
}

Result<std::string> StoreLogin(const std::string& source) {
  MEZ_ASSIGN_OR_RETURN(auto id, auth::ReadIdentityFile(source));
  auto info = PeekToken(id.token);
  if (!info.ok()) return info.status();
  if (info->expires_at != 0 && info->expires_at <= time(nullptr)) {
    return Precondition("the identity in " + source + " expired at " +
                        IsoTime(info->expires_at) +
                        ": ask an administrator for a new one ('mezctl users "
                        "reissue " +
                        info->subject + " --identity-out FILE')");
  }
  std::string path = DefaultIdentityPath();
  std::string dir = path.substr(0, path.rfind('/'));
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("create " + dir, errno);
  }
  MEZ_RETURN_IF_ERROR(auth::WriteIdentityFile(path, id));
  return path;
}

}  // namespace mez::rpc
