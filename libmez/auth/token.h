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

// kUser, kAdmin, kProxy and kNode speak for an identity in the catalog (a
// person, a proxy-only mezrecd, a node agent). kJoin is a node's one-time
// join token, good only for exchanging it for a node credential. kSession
// is a recording grant: it rides in an SSH certificate, names the user and
// the node (aud), and is good only as the user_token of that user's
// recordings on that node, never as a bearer token. See docs/security.md.
enum class Role { kUser, kAdmin, kNode, kProxy, kJoin, kSession };
// "user", "admin", "node", "proxy", "join", "session"
std::string_view RoleName(Role role);
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
  // uid: the catalog id of the identity the token speaks for (a user,
  // proxy or node row; for kSession the user, for kJoin the node).
  // mezrecd honours a token only while the identity named `subject` still
  // has this id, so removing a name revokes every token issued for it and
  // adding the name again does not bring them back. Empty: none (refused
  // wherever an identity is required).
  std::string uid;
  // aud: kSession only: the node whose recordings the grant covers.
  std::string audience;
  // cah: kJoin only: SHA-256 (lowercase hex) of the cluster's TLS CA
  // certificate (DER), which the joining node pins.
  std::string ca_hash;
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

// The claims of `token` WITHOUT checking its signature, issuer or times:
// only for a token whose integrity is vouched for otherwise (a grant inside
// an SSH certificate the cluster's CA signed) or that the reader will show
// to the cluster anyway (mezd reads the CA pin of its join token before it
// can talk to mezrecd). Form checks and bounds as Verify; kInvalidArgument
// when the token is not one.
Result<Claims> ReadClaimsUnverified(std::string_view token);

// Issues a token for `subject` with `role`, valid for `ttl_seconds` from
// clock's wall time, with a random jti.
Result<std::string> IssueToken(const TokenSigner& signer,
                               std::string_view issuer, Role role,
                               std::string_view subject,
                               std::vector<std::string> logins,
                               int64_t ttl_seconds, Clock* clock);

// Issues a token with `claims` as given, except: issuer, iat (clock's wall
// time), exp (iat + ttl_seconds) and a random jti are filled in.
Result<std::string> IssueToken(const TokenSigner& signer,
                               std::string_view issuer, Claims claims,
                               int64_t ttl_seconds, Clock* clock);

// Generates a new Ed25519 private key as PKCS#8 PEM.
Result<std::string> GenerateEd25519Pem();

// A node's join token (kJoin, from `mezctl nodes add`) lives this long and
// is good for one JoinNode, which exchanges it for a node credential
// (kNode) living kNodeCredentialTtl, renewed by JoinNode once a third of
// it passed. See docs/security.md.
inline constexpr int64_t kJoinTokenTtl = 30 * 60;
inline constexpr int64_t kNodeCredentialTtl = 7 * 24 * 3600;
// Before join tokens existed, `nodes add` issued a 365-day kNode token that
// mezd used as its credential. A kNode token that lives longer than
// kNodeCredentialTtl (plus an hour of slack) is such a token: it is
// honoured as the node's credential only until a current mezd exchanges it
// (JoinNode with stores_credential), as it would a join token. Returns true
// for one.
bool IsLegacyJoinToken(const Claims& claims);

// Tokens longer than this are refused before any parsing.
inline constexpr size_t kMaxTokenSize = 8192;

// Base64url without padding (RFC 4648 section 5), as JWS uses it.
std::string Base64UrlEncode(std::string_view data);
// Strict: no padding, no whitespace, only [A-Za-z0-9_-], and the unused
// low bits of the last character must be zero (one encoding per value).
Result<std::string> Base64UrlDecode(std::string_view text);

}  // namespace mez::auth

#endif  // MEZ_AUTH_TOKEN_H_
