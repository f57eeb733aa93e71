#include "libmez/agent/credential.h"

#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "libmez/auth/token.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"

namespace mez::agent {
namespace {

// The credential file is mezd's own, but a corrupt one must not make it
// allocate without bound either.
constexpr size_t kMaxCredentialFile = 64 * 1024;

std::string Sha256Hex(const std::string& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), sizeof(md)));
}

struct Stored {
  std::string token;
  std::string join_sha256;
};

// The stored credential; kNotFound when there is none.
Result<Stored> ReadStored(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  auto corrupt = [&] {
    return DataLoss(path +
                    " is not a mezd credential file; remove it and start "
                    "mezd with a new join token (mezctl nodes add NAME)");
  };
  if (text->size() > kMaxCredentialFile) return corrupt();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("token") || !j["token"].is_string() ||
      !j.contains("join_token_sha256") || !j["join_token_sha256"].is_string()) {
    return corrupt();
  }
  Stored s{j["token"].get<std::string>(),
           j["join_token_sha256"].get<std::string>()};
  if (s.token.empty()) return corrupt();
  return s;
}

}  // namespace

Status CheckDataDir(const std::string& data_dir) {
  struct stat st;
  if (lstat(data_dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("data dir " + data_dir, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return FailedPrecondition("data dir " + data_dir +
                              " is not a directory (a symlink is refused "
                              "too); give --data-dir a real directory");
  }
  if (st.st_uid != geteuid()) {
    return FailedPrecondition(
        "data dir " + data_dir + " belongs to uid " +
        std::to_string(st.st_uid) + ", not to mezd's uid " +
        std::to_string(geteuid()) +
        ": whoever owns it can replace the CA and credential mezd trusts; "
        "chown it to mezd's user");
  }
  if ((st.st_mode & 022) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o",
                  static_cast<unsigned>(st.st_mode & 07777));
    return FailedPrecondition(
        "data dir " + data_dir + " (mode " + mode +
        ") is writable by group or others, who could replace the CA and "
        "credential mezd trusts: chmod 700 " +
        data_dir);
  }
  return Status::Ok();
}

Result<StartCredential> LoadStartCredential(const std::string& data_dir,
                                            const std::string& given) {
  const std::string path = data_dir + "/" + kCredentialFile;
  auto stored = ReadStored(path);
  if (!stored.ok() && stored.status().code() != Code::kNotFound) {
    return stored.status();
  }
  StartCredential start;
  if (given.empty()) {
    if (!stored.ok()) {
      return InvalidArgument(
          "this node has no credential yet (none in " + path +
          "): give --token with the join token from: mezctl nodes add NAME");
    }
    start.token = std::make_shared<rpc::BearerToken>(stored->token);
    start.join_sha256 = stored->join_sha256;
    return start;
  }
  auto claims = auth::ReadClaimsUnverified(given);
  if (!claims.ok()) {
    return InvalidArgument("--token is not a Mezite token (" +
                           claims.status().message() +
                           "); give the join token mezctl nodes add printed");
  }
  bool join =
      claims->role == auth::Role::kJoin || auth::IsLegacyJoinToken(*claims);
  if (!join && claims->role != auth::Role::kNode) {
    return InvalidArgument(
        "--token is a " + std::string(auth::RoleName(claims->role)) +
        " token; mezd needs the join token mezctl nodes add printed");
  }
  start.join_sha256 = Sha256Hex(given);
  if (stored.ok() && stored->join_sha256 == start.join_sha256) {
    // Restarted with the token it already exchanged: the stored (maybe
    // renewed) credential is the one to use.
    start.token = std::make_shared<rpc::BearerToken>(stored->token);
    return start;
  }
  start.token = std::make_shared<rpc::BearerToken>(given);
  start.join = join;
  if (claims->role == auth::Role::kJoin) start.ca_sha256 = claims->ca_hash;
  return start;
}

Status StoreCredential(const std::string& data_dir, StartCredential& start,
                       const std::string& node_token, int64_t expires_at) {
  nlohmann::json j = {{"token", node_token},
                      {"expires_at", expires_at},
                      {"join_token_sha256", start.join_sha256}};
  start.token->Set(node_token);
  start.join = false;
  return AtomicWriteFile(data_dir + "/" + kCredentialFile, j.dump() + "\n",
                         0600);
}

}  // namespace mez::agent
