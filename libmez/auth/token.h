// Cluster tokens: JWTs signed with Ed25519 (JOSE "alg": "EdDSA", RFC 8037).
// mezrecd issues them to users, admins, nodes and proxies, and verifies them
// on every call. Only EdDSA is accepted: "none", HS256, RS256 and every
// other algorithm are refused, whatever the token says.
#ifndef MEZ_AUTH_TOKEN_H_
#define MEZ_AUTH_TOKEN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::auth {

enum class Role { kUser, kAdmin, kNode, kProxy };
std::string_view RoleName(Role role);  // "user", "admin", "node", "proxy"
Result<Role> ParseRole(std::string_view name);

// The claims Mezite puts in a token (JSON names in comments).
struct Claims {
  std::string issuer;               // iss: the cluster name
  std::string subject;              // sub: username or node name
  Role role = Role::kUser;          // role
  std::vector<std::string> logins;  // logins: allowed OS logins (users)
  int64_t issued_at = 0;            // iat: Unix seconds
  int64_t expires_at = 0;           // exp: Unix seconds
  std::string id;                   // jti: random, for audit and revocation
};

// Signs tokens. Thread-safe.
class TokenSigner {
 public:
  // `private_key_pem`: an Ed25519 private key, PKCS#8 PEM.
  static Result<std::unique_ptr<TokenSigner>> FromPem(
      std::string_view private_key_pem);
  ~TokenSigner();
  Result<std::string> Sign(const Claims& claims) const;
  // The matching public key, SubjectPublicKeyInfo PEM.
  std::string PublicKeyPem() const;

 private:
  struct Impl;
  explicit TokenSigner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Verifies tokens. Thread-safe.
class TokenVerifier {
 public:
  static Result<std::unique_ptr<TokenVerifier>> FromPublicPem(
      std::string_view public_key_pem, std::string issuer);
  ~TokenVerifier();
  // Checks the form (three base64url parts, JSON header and claims), the
  // header ("alg" must be "EdDSA"; "typ", if present, "JWT"), the
  // signature, "iss" == issuer, "exp" > now, "iat" not in the future by
  // more than 5 minutes, and that "sub" and "role" are present. Every
  // failure is kUnauthenticated with a message saying which check failed
  // (never echoing the token).
  Result<Claims> Verify(std::string_view token, int64_t now_unix) const;

 private:
  struct Impl;
  explicit TokenVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Issues a token for `subject` with `role`, valid for `ttl_seconds` from
// clock's wall time, with a random jti.
Result<std::string> IssueToken(const TokenSigner& signer,
                               std::string_view issuer, Role role,
                               std::string_view subject,
                               std::vector<std::string> logins,
                               int64_t ttl_seconds, Clock* clock);

// Generates a new Ed25519 private key as PKCS#8 PEM.
Result<std::string> GenerateEd25519Pem();

// Tokens longer than this are refused before any parsing.
inline constexpr size_t kMaxTokenSize = 8192;

// Base64url without padding (RFC 4648 section 5), as JWS uses it.
std::string Base64UrlEncode(std::string_view data);
// Strict: no padding, no whitespace, only [A-Za-z0-9_-], and the unused
// low bits of the last character must be zero (one encoding per value).
Result<std::string> Base64UrlDecode(std::string_view text);

}  // namespace mez::auth

#endif  // MEZ_AUTH_TOKEN_H_
