#include "libmez/auth/token.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <array>
#include <cstring>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "libmez/auth/openssl_ptr.h"
#include "libmez/util/encoding.h"

namespace mez::auth {
namespace {

using internal::BioContents;
using internal::BioPtr;
using internal::LoadEd25519PrivateKey;
using internal::MdCtxPtr;
using internal::MemBio;
using internal::NoPassphrase;
using internal::PkeyPtr;

using nlohmann::json;

// The only header we ever write. Verification does not require this exact
// text, only the fields checked in CheckHeader.
constexpr std::string_view kHeader = R"({"alg":"EdDSA","typ":"JWT"})";
constexpr size_t kEd25519SignatureSize = 64;
constexpr int64_t kMaxIssuedAtSkew = 300;  // seconds

constexpr char kB64Url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> MakeB64UrlTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kB64Url[i])] = i;
  return t;
}
constexpr std::array<int8_t, 256> kB64UrlTable = MakeB64UrlTable();

Status Unauthenticated(std::string message) {
  return Status(Code::kUnauthenticated, std::move(message));
}

Result<std::string> PublicPemOf(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return Internal("cannot encode public key as PEM");
  }
  return BioContents(bio.get());
}

// "2023-11-14T22:13:20Z", or the raw number when it is out of gmtime's range.
std::string IsoTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  char buf[64];
  if (gmtime_r(&t, &tm) == nullptr ||
      std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    return std::to_string(unix_seconds) + " (Unix time)";
  }
  return buf;
}

// Parses a JSON object, refusing duplicate member names at any depth: two
// parsers that disagree on which duplicate wins are a classic token bypass.
Result<json> ParseJsonObject(std::string_view text, std::string_view what) {
  std::vector<std::set<std::string>> keys;
  bool duplicate = false;
  json value;
  try {
    value = json::parse(
        text.begin(), text.end(),
        [&](int, json::parse_event_t event, json& parsed) {
          switch (event) {
            case json::parse_event_t::object_start:
              keys.emplace_back();
              break;
            case json::parse_event_t::object_end:
              if (!keys.empty()) keys.pop_back();
              break;
            case json::parse_event_t::key:
              if (!keys.empty() &&
                  !keys.back().insert(parsed.get<std::string>()).second) {
                duplicate = true;
              }
              break;
            default:
              break;
          }
          return true;
        });
  } catch (const std::exception&) {
    return Unauthenticated("token " + std::string(what) + " is not valid JSON");
  }
  if (duplicate) {
    return Unauthenticated("token " + std::string(what) +
                           " has a duplicate member");
  }
  if (!value.is_object()) {
    return Unauthenticated("token " + std::string(what) +
                           " is not a JSON object");
  }
  return value;
}

// Quotes a token-supplied algorithm name for an error message only when it
// is short and plain, so no attacker-chosen bytes reach the logs verbatim.
std::string DescribeAlg(const json& header) {
  auto it = header.find("alg");
  if (it == header.end()) return "(missing)";
  if (!it->is_string()) return "(not a string)";
  const std::string& alg = it->get_ref<const std::string&>();
  if (alg.empty() || alg.size() > 16) return "(unrecognised)";
  for (char c : alg) {
    bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                 (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!plain) return "(unrecognised)";
  }
  return "\"" + alg + "\"";
}

Status CheckHeader(const json& header) {
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() ||
      alg->get_ref<const std::string&>() != "EdDSA") {
    return Unauthenticated("token algorithm " + DescribeAlg(header) +
                           " is not accepted; only EdDSA is");
  }
  auto typ = header.find("typ");
  if (typ != header.end() &&
      (!typ->is_string() || typ->get_ref<const std::string&>() != "JWT")) {
    return Unauthenticated("token header \"typ\" must be \"JWT\"");
  }
  // RFC 7515 4.1.11: a recipient that does not understand a "crit"
  // extension must reject the token; we understand none.
  if (header.contains("crit")) {
    return Unauthenticated("token header has unsupported \"crit\" extensions");
  }
  return Status::Ok();
}

// Reads an integer NumericDate claim that must fit in int64.
Result<int64_t> IntClaim(const json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) {
    return Unauthenticated(std::string("token has no \"") + name + "\" claim");
  }
  if (!it->is_number_integer() ||
      (it->is_number_unsigned() &&
       it->get<uint64_t>() >
           static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
    return Unauthenticated(std::string("token \"") + name +
                           "\" claim is not an integer");
  }
  return it->get<int64_t>();
}

Result<std::string> StringClaim(const json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) {
    return Unauthenticated(std::string("token has no \"") + name + "\" claim");
  }
  if (!it->is_string()) {
    return Unauthenticated(std::string("token \"") + name +
                           "\" claim is not a string");
  }
  return it->get<std::string>();
}

// Splits a compact JWS into its three dot-separated parts; false when it
// does not have exactly three.
bool SplitJws(std::string_view token, std::string_view* header,
              std::string_view* payload, std::string_view* signature) {
  size_t dot1 = token.find('.');
  size_t dot2 =
      dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos ||
      token.find('.', dot2 + 1) != std::string_view::npos) {
    return false;
  }
  *header = token.substr(0, dot1);
  *payload = token.substr(dot1 + 1, dot2 - dot1 - 1);
  *signature = token.substr(dot2 + 1);
  return true;
}

// `check_times`: false only for ReadClaimsUnverified (then the issuer is
// not compared either).
Result<Claims> CheckClaims(const json& c, std::string_view issuer, int64_t now,
                           bool check_times = true) {
  Claims claims;
  MEZ_ASSIGN_OR_RETURN(claims.issuer, StringClaim(c, "iss"));
  if (!check_times) {
    MEZ_ASSIGN_OR_RETURN(claims.expires_at, IntClaim(c, "exp"));
    MEZ_ASSIGN_OR_RETURN(claims.issued_at, IntClaim(c, "iat"));
  } else if (claims.issuer != issuer) {
    return Unauthenticated("token issuer does not match this cluster (\"" +
                           std::string(issuer) + "\")");
  }
  if (check_times) {
    MEZ_ASSIGN_OR_RETURN(claims.expires_at, IntClaim(c, "exp"));
    if (claims.expires_at <= now) {
      return Unauthenticated("token expired at " + IsoTime(claims.expires_at));
    }
    MEZ_ASSIGN_OR_RETURN(claims.issued_at, IntClaim(c, "iat"));
    if (claims.issued_at > now && claims.issued_at - now > kMaxIssuedAtSkew) {
      return Unauthenticated("token issued in the future (iat " +
                             IsoTime(claims.issued_at) + " is more than " +
                             std::to_string(kMaxIssuedAtSkew) +
                             " s ahead of this server's clock)");
    }
    if (c.contains("nbf")) {
      MEZ_ASSIGN_OR_RETURN(int64_t nbf, IntClaim(c, "nbf"));
      if (nbf > now && nbf - now > kMaxIssuedAtSkew) {
        return Unauthenticated("token not valid before " + IsoTime(nbf));
      }
    }
  }
  MEZ_ASSIGN_OR_RETURN(claims.subject, StringClaim(c, "sub"));
  if (claims.subject.empty()) {
    return Unauthenticated("token has an empty subject (\"sub\")");
  }
  MEZ_ASSIGN_OR_RETURN(std::string role, StringClaim(c, "role"));
  Result<Role> parsed_role = ParseRole(role);
  if (!parsed_role.ok()) {
    return Unauthenticated("token role is not a known role");
  }
  claims.role = *parsed_role;
  if (auto it = c.find("logins"); it != c.end()) {
    if (!it->is_array()) {
      return Unauthenticated(
          "token \"logins\" claim is not an array of strings");
    }
    for (const json& login : *it) {
      if (!login.is_string()) {
        return Unauthenticated(
            "token \"logins\" claim is not an array of strings");
      }
      claims.logins.push_back(login.get<std::string>());
    }
  }
  if (c.contains("jti")) {
    MEZ_ASSIGN_OR_RETURN(claims.id, StringClaim(c, "jti"));
  }
  if (c.contains("uid")) {
    MEZ_ASSIGN_OR_RETURN(claims.uid, StringClaim(c, "uid"));
  }
  if (c.contains("aud")) {
    MEZ_ASSIGN_OR_RETURN(claims.audience, StringClaim(c, "aud"));
  }
  if (c.contains("cah")) {
    MEZ_ASSIGN_OR_RETURN(claims.ca_hash, StringClaim(c, "cah"));
  }
  return claims;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kUser:
      return "user";
    case Role::kAdmin:
      return "admin";
    case Role::kNode:
      return "node";
    case Role::kProxy:
      return "proxy";
    case Role::kJoin:
      return "join";
    case Role::kSession:
      return "session";
  }
  return "unknown";
}

Result<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kUser, Role::kAdmin, Role::kNode, Role::kProxy,
                 Role::kJoin, Role::kSession}) {
    if (name == RoleName(r)) return r;
  }
  return InvalidArgument("unknown role \"" + std::string(name) +
                         "\" (want user, admin, node, proxy, join or session)");
}

std::string Base64UrlEncode(std::string_view data) {
  std::string out = Base64Encode(data);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

Result<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) {
    return InvalidArgument("base64url length " + std::to_string(text.size()) +
                           " is impossible");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    int v = kB64UrlTable[static_cast<unsigned char>(text[i])];
    if (v < 0) {
      return InvalidArgument("invalid base64url character at offset " +
                             std::to_string(i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) {
    return InvalidArgument("base64url has non-zero trailing bits");
  }
  return out;
}

Result<std::string> GenerateEd25519Pem() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return Internal("Ed25519 key generation failed");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr,
                                       0, nullptr, nullptr) != 1) {
    return Internal("cannot encode Ed25519 key as PEM");
  }
  return BioContents(bio.get());
}

// --- TokenSigner ---

struct TokenSigner::Impl {
  PkeyPtr key;
  std::string public_pem;
};

TokenSigner::TokenSigner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TokenSigner::~TokenSigner() = default;

Result<std::unique_ptr<TokenSigner>> TokenSigner::FromPem(
    std::string_view private_key_pem) {
  MEZ_ASSIGN_OR_RETURN(
      PkeyPtr key, LoadEd25519PrivateKey(private_key_pem, "token signing key"));
  auto impl = std::make_unique<Impl>();
  MEZ_ASSIGN_OR_RETURN(impl->public_pem, PublicPemOf(key.get()));
  impl->key = std::move(key);
  return std::unique_ptr<TokenSigner>(new TokenSigner(std::move(impl)));
}

std::string TokenSigner::PublicKeyPem() const { return impl_->public_pem; }

Result<std::string> TokenSigner::Sign(const Claims& claims) const {
  if (claims.issuer.empty()) return InvalidArgument("token issuer is empty");
  if (claims.subject.empty()) return InvalidArgument("token subject is empty");
  if (claims.expires_at <= claims.issued_at) {
    return InvalidArgument("token expiry must be after its issue time");
  }
  std::string payload;
  try {
    json c = {{"iss", claims.issuer},
              {"sub", claims.subject},
              {"role", std::string(RoleName(claims.role))},
              {"logins", claims.logins},
              {"iat", claims.issued_at},
              {"exp", claims.expires_at}};
    if (!claims.id.empty()) c["jti"] = claims.id;
    if (!claims.uid.empty()) c["uid"] = claims.uid;
    if (!claims.audience.empty()) c["aud"] = claims.audience;
    if (!claims.ca_hash.empty()) c["cah"] = claims.ca_hash;
    payload = c.dump();
  } catch (const std::exception& e) {
    // dump() throws on strings that are not UTF-8.
    return InvalidArgument(std::string("cannot encode token claims: ") +
                           e.what());
  }
  std::string token = Base64UrlEncode(kHeader);
  token += '.';
  token += Base64UrlEncode(payload);

  MdCtxPtr ctx(EVP_MD_CTX_new());
  unsigned char sig[kEd25519SignatureSize];
  size_t sig_len = sizeof(sig);
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr,
                         impl_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &sig_len,
                     reinterpret_cast<const unsigned char*>(token.data()),
                     token.size()) != 1 ||
      sig_len != kEd25519SignatureSize) {
    return Internal("Ed25519 signing failed");
  }
  token += '.';
  token += Base64UrlEncode(
      std::string_view(reinterpret_cast<const char*>(sig), sig_len));
  return token;
}

// --- TokenVerifier ---

struct TokenVerifier::Impl {
  PkeyPtr key;
  std::string issuer;
};

TokenVerifier::TokenVerifier(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
TokenVerifier::~TokenVerifier() = default;

Result<std::unique_ptr<TokenVerifier>> TokenVerifier::FromPublicPem(
    std::string_view public_key_pem, std::string issuer) {
  if (issuer.empty()) return InvalidArgument("token issuer is empty");
  BioPtr bio = MemBio(public_key_pem);
  PkeyPtr key(
      bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr)
          : nullptr);
  if (!key) {
    ERR_clear_error();
    return InvalidArgument("token verification key is not a PEM public key");
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return InvalidArgument("token verification key is not an Ed25519 key");
  }
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(key);
  impl->issuer = std::move(issuer);
  return std::unique_ptr<TokenVerifier>(new TokenVerifier(std::move(impl)));
}

Result<Claims> TokenVerifier::Verify(std::string_view token,
                                     int64_t now_unix) const {
  if (token.size() > kMaxTokenSize) {
    return Unauthenticated("token is too long (" +
                           std::to_string(token.size()) + " bytes, limit " +
                           std::to_string(kMaxTokenSize) + ")");
  }
  std::string_view header_b64, payload_b64, sig_b64;
  if (!SplitJws(token, &header_b64, &payload_b64, &sig_b64)) {
    size_t parts = 1;
    for (char c : token) parts += c == '.';
    return Unauthenticated("token must have 3 dot-separated parts, not " +
                           std::to_string(parts));
  }

  Result<std::string> header_json = Base64UrlDecode(header_b64);
  if (!header_json.ok()) {
    return Unauthenticated("token header is not valid base64url");
  }
  MEZ_ASSIGN_OR_RETURN(json header, ParseJsonObject(*header_json, "header"));
  MEZ_RETURN_IF_ERROR(CheckHeader(header));

  Result<std::string> sig = Base64UrlDecode(sig_b64);
  if (!sig.ok()) {
    return Unauthenticated("token signature is not valid base64url");
  }
  if (sig->size() != kEd25519SignatureSize) {
    return Unauthenticated("token signature has " +
                           std::to_string(sig->size()) + " bytes, not " +
                           std::to_string(kEd25519SignatureSize));
  }
  std::string_view signed_part =
      token.substr(0, header_b64.size() + 1 + payload_b64.size());
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr,
                                   impl_->key.get()) != 1) {
    return Internal("cannot initialise Ed25519 verification");
  }
  if (EVP_DigestVerify(
          ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()),
          sig->size(),
          reinterpret_cast<const unsigned char*>(signed_part.data()),
          signed_part.size()) != 1) {
    ERR_clear_error();
    return Unauthenticated("token signature is not valid for this cluster");
  }

  // Only signed bytes are parsed from here on.
  Result<std::string> payload_json = Base64UrlDecode(payload_b64);
  if (!payload_json.ok()) {
    return Unauthenticated("token payload is not valid base64url");
  }
  MEZ_ASSIGN_OR_RETURN(json payload, ParseJsonObject(*payload_json, "payload"));
  try {
    return CheckClaims(payload, impl_->issuer, now_unix);
  } catch (const std::exception&) {
    return Unauthenticated("token claims are malformed");
  }
}

bool IsLegacyJoinToken(const Claims& claims) {
  return claims.role == Role::kNode &&
         claims.expires_at - claims.issued_at > kNodeCredentialTtl + 3600;
}

Result<Claims> ReadClaimsUnverified(std::string_view token) {
  if (token.size() > kMaxTokenSize) {
    return InvalidArgument("token is too long (" +
                           std::to_string(token.size()) + " bytes, limit " +
                           std::to_string(kMaxTokenSize) + ")");
  }
  std::string_view header_b64, payload_b64, sig_b64;
  if (!SplitJws(token, &header_b64, &payload_b64, &sig_b64)) {
    return InvalidArgument("not a token: it must have 3 dot-separated parts");
  }
  Result<std::string> payload_json = Base64UrlDecode(payload_b64);
  if (!payload_json.ok()) {
    return InvalidArgument("token payload is not valid base64url");
  }
  auto payload = ParseJsonObject(*payload_json, "payload");
  if (!payload.ok()) return InvalidArgument(payload.status().message());
  Result<Claims> claims = Unauthenticated("token claims are malformed");
  try {
    claims = CheckClaims(*payload, "", 0, /*check_times=*/false);
  } catch (const std::exception&) {
  }
  if (!claims.ok()) return InvalidArgument(claims.status().message());
  return claims;
}

Result<std::string> IssueToken(const TokenSigner& signer,
                               std::string_view issuer, Claims claims,
                               int64_t ttl_seconds, Clock* clock) {
  if (ttl_seconds <= 0) {
    return InvalidArgument("token lifetime must be positive, not " +
                           std::to_string(ttl_seconds) + " s");
  }
  constexpr int64_t kMaxTtl = int64_t{100} * 366 * 24 * 3600;
  if (ttl_seconds > kMaxTtl) {
    return InvalidArgument("token lifetime of " + std::to_string(ttl_seconds) +
                           " s is too long");
  }
  unsigned char jti[16];
  if (RAND_bytes(jti, sizeof(jti)) != 1) {
    return Internal("random generator failed");
  }
  claims.issuer = std::string(issuer);
  claims.issued_at = clock->WallMicros() / 1'000'000;
  claims.expires_at = claims.issued_at + ttl_seconds;
  claims.id =
      HexEncode(std::string_view(reinterpret_cast<const char*>(jti), 16));
  return signer.Sign(claims);
}

Result<std::string> IssueToken(const TokenSigner& signer,
                               std::string_view issuer, Role role,
                               std::string_view subject,
                               std::vector<std::string> logins,
                               int64_t ttl_seconds, Clock* clock) {
  Claims claims;
  claims.subject = std::string(subject);
  claims.role = role;
  claims.logins = std::move(logins);
  return IssueToken(signer, issuer, std::move(claims), ttl_seconds, clock);
}

}  // namespace mez::auth
