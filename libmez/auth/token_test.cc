#include "libmez/auth/token.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "libmez/util/clock.h"

namespace mez::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kNow = 1'700'000'000;  // 2023-11-14T22:13:20Z
constexpr char kIssuer[] = "test-cluster";

std::string B64(std::string_view s) { return Base64UrlEncode(s); }

std::string FromB64(std::string_view s) {
  Result<std::string> r = Base64UrlDecode(s);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : "";
}

// Signs `header_json`.`payload_json` with an Ed25519 PEM key directly through
// OpenSSL, so tests can build tokens whose content TokenSigner would refuse.
std::string SignRaw(const std::string& private_pem,
                    const std::string& header_json,
                    const std::string& payload_json) {
  std::string signing_input = B64(header_json) + "." + B64(payload_json);
  BIO* bio =
      BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EXPECT_NE(key, nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[64];
  size_t sig_len = sizeof(sig);
  EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key), 1);
  EXPECT_EQ(EVP_DigestSign(
                ctx, sig, &sig_len,
                reinterpret_cast<const unsigned char*>(signing_input.data()),
                signing_input.size()),
            1);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return signing_input + "." +
         B64(std::string(reinterpret_cast<char*>(sig), sig_len));
}

std::string ValidPayload(const std::string& extra = "") {
  return R"({"iss":"test-cluster","sub":"alice","role":"user",)"
         R"("logins":["ubuntu"],"iat":1700000000,"exp":1700003600)" +
         extra + "}";
}

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::string> pem = GenerateEd25519Pem();
    ASSERT_TRUE(pem.ok()) << pem.status().ToString();
    private_pem_ = *pem;
    auto signer = TokenSigner::FromPem(private_pem_);
    ASSERT_TRUE(signer.ok()) << signer.status().ToString();
    signer_ = std::move(*signer);
    auto verifier =
        TokenVerifier::FromPublicPem(signer_->PublicKeyPem(), kIssuer);
    ASSERT_TRUE(verifier.ok()) << verifier.status().ToString();
    verifier_ = std::move(*verifier);
  }

  Claims ValidClaims() const {
    Claims c;
    c.issuer = kIssuer;
    c.subject = "alice";
    c.role = Role::kAdmin;
    c.logins = {"ubuntu", "root"};
    c.issued_at = kNow - 10;
    c.expires_at = kNow + 3600;
    c.id = "00112233445566778899aabbccddeeff";
    return c;
  }

  std::string SignOrDie(const Claims& c) const {
    Result<std::string> token = signer_->Sign(c);
    EXPECT_TRUE(token.ok()) << token.status().ToString();
    return token.ok() ? *token : "";
  }

  // Expects `token` to be refused with a message containing `reason`.
  void ExpectRefused(const std::string& token, const std::string& reason,
                     int64_t now = kNow) const {
    Result<Claims> r = verifier_->Verify(token, now);
    ASSERT_FALSE(r.ok()) << "accepted a token that should fail: " << reason;
    EXPECT_EQ(r.status().code(), Code::kUnauthenticated);
    EXPECT_THAT(r.status().message(), HasSubstr(reason));
  }

  std::string private_pem_;
  std::unique_ptr<TokenSigner> signer_;
  std::unique_ptr<TokenVerifier> verifier_;
};

TEST_F(TokenTest, RoundTripKeepsAllClaims) {
  std::string token = SignOrDie(ValidClaims());
  Result<Claims> r = verifier_->Verify(token, kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->issuer, kIssuer);
  EXPECT_EQ(r->subject, "alice");
  EXPECT_EQ(r->role, Role::kAdmin);
  EXPECT_EQ(r->logins, (std::vector<std::string>{"ubuntu", "root"}));
  EXPECT_EQ(r->issued_at, kNow - 10);
  EXPECT_EQ(r->expires_at, kNow + 3600);
  EXPECT_EQ(r->id, "00112233445566778899aabbccddeeff");
}

TEST_F(TokenTest, IdentityAudienceAndCaPinClaimsRoundTrip) {
  Claims c = ValidClaims();
  c.role = Role::kSession;
  c.uid = "5f0c2a1e9b7d4c3a8e6f1d2b0a9c8e7f";
  c.audience = "web-01";
  Result<Claims> r = verifier_->Verify(SignOrDie(c), kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->role, Role::kSession);
  EXPECT_EQ(r->uid, c.uid);
  EXPECT_EQ(r->audience, "web-01");
  EXPECT_TRUE(r->ca_hash.empty());

  Claims j = ValidClaims();
  j.role = Role::kJoin;
  j.ca_hash = std::string(64, 'a');
  r = verifier_->Verify(SignOrDie(j), kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->role, Role::kJoin);
  EXPECT_EQ(r->ca_hash, j.ca_hash);
  EXPECT_TRUE(r->uid.empty());

  // A uid claim of the wrong type is refused, not read as empty.
  ExpectRefused(
      SignRaw(private_pem_, R"({"alg":"EdDSA"})", ValidPayload(R"(,"uid":7)")),
      "uid");
}

TEST_F(TokenTest, ReadClaimsUnverifiedSkipsSignatureAndTimesOnly) {
  Claims j = ValidClaims();
  j.role = Role::kJoin;
  j.ca_hash = std::string(64, 'b');
  j.issued_at = kNow - 100;
  j.expires_at = kNow - 10;  // Expired: still readable.
  std::string token = SignOrDie(j);
  // A signature from another key does not matter to the reader.
  std::string forged = token.substr(0, token.rfind('.') + 1) + "AAAA";
  for (const std::string& t : {token, forged}) {
    Result<Claims> r = ReadClaimsUnverified(t);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->role, Role::kJoin);
    EXPECT_EQ(r->ca_hash, j.ca_hash);
    EXPECT_EQ(r->expires_at, kNow - 10);
    EXPECT_EQ(r->subject, j.subject);
  }
  // Form checks still apply.
  for (const std::string& bad : {std::string("a.b"), std::string("a.!!.c"),
                                 std::string(kMaxTokenSize + 1, 'a'),
                                 SignRaw(private_pem_, R"({"alg":"EdDSA"})",
                                         ValidPayload(R"(,"uid":7)"))}) {
    Result<Claims> r = ReadClaimsUnverified(bad);
    EXPECT_FALSE(r.ok()) << bad.substr(0, 40);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    }
  }
}

TEST_F(TokenTest, IssueTokenWithClaimsFillsTimesAndJti) {
  FakeClock clock(kNow * 1'000'000);
  Claims c;
  c.subject = "carol";
  c.role = Role::kSession;
  c.uid = "u1";
  c.audience = "db-02";
  auto t = IssueToken(*signer_, kIssuer, c, 600, &clock);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Result<Claims> r = verifier_->Verify(*t, kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->issuer, kIssuer);
  EXPECT_EQ(r->issued_at, kNow);
  EXPECT_EQ(r->expires_at, kNow + 600);
  EXPECT_EQ(r->audience, "db-02");
  EXPECT_EQ(r->uid, "u1");
  EXPECT_THAT(r->id, ::testing::MatchesRegex("[0-9a-f]{32}"));
}

TEST_F(TokenTest, HeaderIsEdDsaJwt) {
  std::string token = SignOrDie(ValidClaims());
  std::string header = FromB64(token.substr(0, token.find('.')));
  EXPECT_EQ(header, R"({"alg":"EdDSA","typ":"JWT"})");
}

TEST_F(TokenTest, IssueTokenUsesClockAndRandomJti) {
  FakeClock clock(kNow * 1'000'000 + 500'000);
  auto a = IssueToken(*signer_, kIssuer, Role::kUser, "bob", {"deploy"}, 600,
                      &clock);
  auto b = IssueToken(*signer_, kIssuer, Role::kUser, "bob", {"deploy"}, 600,
                      &clock);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  Result<Claims> ca = verifier_->Verify(*a, kNow);
  Result<Claims> cb = verifier_->Verify(*b, kNow);
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  ASSERT_TRUE(cb.ok()) << cb.status().ToString();
  EXPECT_EQ(ca->subject, "bob");
  EXPECT_EQ(ca->role, Role::kUser);
  EXPECT_EQ(ca->logins, std::vector<std::string>{"deploy"});
  EXPECT_EQ(ca->issued_at, kNow);
  EXPECT_EQ(ca->expires_at, kNow + 600);
  EXPECT_THAT(ca->id, ::testing::MatchesRegex("[0-9a-f]{32}"));
  EXPECT_NE(ca->id, cb->id);
  EXPECT_FALSE(
      IssueToken(*signer_, kIssuer, Role::kUser, "bob", {}, 0, &clock).ok());
}

TEST_F(TokenTest, NodeTokenWithoutLoginsVerifies) {
  Claims c = ValidClaims();
  c.role = Role::kNode;
  c.subject = "node-1";
  c.logins.clear();
  Result<Claims> r = verifier_->Verify(SignOrDie(c), kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->role, Role::kNode);
  EXPECT_TRUE(r->logins.empty());
}

TEST_F(TokenTest, RefusesAlgNoneWithEmptySignature) {
  std::string token =
      B64(R"({"alg":"none","typ":"JWT"})") + "." + B64(ValidPayload()) + ".";
  ExpectRefused(token, "algorithm \"none\" is not accepted");
}

// The classic confusion attack: an HS256 token whose HMAC key is the
// verifier's public key PEM, which an attacker knows.
TEST_F(TokenTest, RefusesHs256KeyedWithThePublicKey) {
  std::string input =
      B64(R"({"alg":"HS256","typ":"JWT"})") + "." + B64(ValidPayload());
  std::string pub = signer_->PublicKeyPem();
  unsigned char mac[32];
  unsigned int mac_len = 0;
  ASSERT_NE(HMAC(EVP_sha256(), pub.data(), static_cast<int>(pub.size()),
                 reinterpret_cast<const unsigned char*>(input.data()),
                 input.size(), mac, &mac_len),
            nullptr);
  std::string token =
      input + "." + B64(std::string(reinterpret_cast<char*>(mac), mac_len));
  ExpectRefused(token, "algorithm \"HS256\" is not accepted");
}

TEST_F(TokenTest, RefusesMissingOrOddAlg) {
  std::string sig = SignOrDie(ValidClaims());
  sig = sig.substr(sig.rfind('.'));
  ExpectRefused(B64(R"({"typ":"JWT"})") + "." + B64(ValidPayload()) + sig,
                "algorithm (missing) is not accepted");
  ExpectRefused(B64(R"({"alg":"eddsa"})") + "." + B64(ValidPayload()) + sig,
                "not accepted");
  ExpectRefused(B64(R"({"alg":["EdDSA"]})") + "." + B64(ValidPayload()) + sig,
                "not accepted");
  ExpectRefused(B64(R"({"alg":"RS256"})") + "." + B64(ValidPayload()) + sig,
                "not accepted");
}

TEST_F(TokenTest, RefusesBadHeaderFields) {
  ExpectRefused(
      SignRaw(private_pem_, R"({"alg":"EdDSA","typ":"JWE"})", ValidPayload()),
      "typ");
  ExpectRefused(SignRaw(private_pem_, R"({"alg":"EdDSA","crit":["exp"]})",
                        ValidPayload()),
                "crit");
  ExpectRefused(SignRaw(private_pem_, R"(["EdDSA"])", ValidPayload()),
                "not a JSON object");
  ExpectRefused(SignRaw(private_pem_, R"({"alg":"EdDSA",)", ValidPayload()),
                "not valid JSON");
}

TEST_F(TokenTest, RefusesFlippedSignatureByte) {
  std::string token = SignOrDie(ValidClaims());
  size_t dot = token.rfind('.');
  std::string sig = FromB64(token.substr(dot + 1));
  sig[10] ^= 0x01;
  ExpectRefused(token.substr(0, dot + 1) + B64(sig), "signature");
}

TEST_F(TokenTest, RefusesModifiedPayloadWithOriginalSignature) {
  std::string token = SignOrDie(ValidClaims());
  size_t dot1 = token.find('.');
  size_t dot2 = token.rfind('.');
  std::string payload = FromB64(token.substr(dot1 + 1, dot2 - dot1 - 1));
  size_t pos = payload.find("alice");
  ASSERT_NE(pos, std::string::npos);
  payload.replace(pos, 5, "admin");
  std::string forged =
      token.substr(0, dot1 + 1) + B64(payload) + token.substr(dot2);
  ExpectRefused(forged, "signature is not valid");
}

TEST_F(TokenTest, RefusesTokenSignedByAnotherKey) {
  Result<std::string> other_pem = GenerateEd25519Pem();
  ASSERT_TRUE(other_pem.ok());
  auto other = TokenSigner::FromPem(*other_pem);
  ASSERT_TRUE(other.ok());
  Result<std::string> token = (*other)->Sign(ValidClaims());
  ASSERT_TRUE(token.ok());
  ExpectRefused(*token, "signature is not valid");
}

TEST_F(TokenTest, RefusesWrongSignatureLength) {
  std::string token = SignOrDie(ValidClaims());
  ExpectRefused(token.substr(0, token.rfind('.') + 1) + B64("short"),
                "signature has 5 bytes");
}

TEST_F(TokenTest, RefusesExpiredToken) {
  Claims c = ValidClaims();
  c.issued_at = kNow - 3600;
  c.expires_at = kNow - 10;
  ExpectRefused(SignOrDie(c), "token expired at 2023-11-14T22:13:10Z");
  // Expiry is exclusive: a token is dead at its exp second.
  c.expires_at = kNow;
  ExpectRefused(SignOrDie(c), "token expired at 2023-11-14T22:13:20Z");
}

TEST_F(TokenTest, RefusesWrongIssuer) {
  Claims c = ValidClaims();
  c.issuer = "other-cluster";
  ExpectRefused(SignOrDie(c), "issuer does not match");
}

TEST_F(TokenTest, AllowsSmallClockSkewButNotIatFarInFuture) {
  Claims c = ValidClaims();
  c.issued_at = kNow + 300;
  c.expires_at = kNow + 4000;
  EXPECT_TRUE(verifier_->Verify(SignOrDie(c), kNow).ok());
  c.issued_at = kNow + 301;
  ExpectRefused(SignOrDie(c), "issued in the future");
  c.issued_at = kNow + 86400;
  c.expires_at = kNow + 90000;
  ExpectRefused(SignOrDie(c), "issued in the future");
}

TEST_F(TokenTest, RefusesWrongNumberOfParts) {
  std::string token = SignOrDie(ValidClaims());
  ExpectRefused(token.substr(0, token.rfind('.')), "3 dot-separated parts");
  ExpectRefused(token + ".AAAA", "3 dot-separated parts");
  ExpectRefused("", "3 dot-separated parts");
  ExpectRefused("..", "not valid JSON");
}

TEST_F(TokenTest, RefusesBadBase64Url) {
  std::string token = SignOrDie(ValidClaims());
  size_t dot1 = token.find('.');
  // Standard-alphabet characters, padding and whitespace are not base64url.
  ExpectRefused("eyJ+" + token.substr(4), "header is not valid base64url");
  ExpectRefused(token.substr(0, dot1) + "=" + token.substr(dot1),
                "header is not valid base64url");
  ExpectRefused(token + "=", "signature is not valid base64url");
  ExpectRefused(token.substr(0, dot1 + 1) + " " + token.substr(dot1 + 1),
                "signature is not valid");
}

TEST_F(TokenTest, RefusesMissingOrEmptySubject) {
  ExpectRefused(SignRaw(private_pem_, R"({"alg":"EdDSA"})",
                        R"({"iss":"test-cluster","role":"user",)"
                        R"("iat":1700000000,"exp":1700003600})"),
                "no \"sub\" claim");
  ExpectRefused(SignRaw(private_pem_, R"({"alg":"EdDSA"})",
                        R"({"iss":"test-cluster","sub":"","role":"user",)"
                        R"("iat":1700000000,"exp":1700003600})"),
                "empty subject");
}

// Parsers disagree on which duplicate wins; a token with one is refused.
TEST_F(TokenTest, RefusesDuplicateMembers) {
  ExpectRefused(SignRaw(private_pem_, R"({"alg":"EdDSA"})",
                        ValidPayload(R"(,"sub":"admin")")),
                "payload has a duplicate member");
  ExpectRefused(
      SignRaw(private_pem_, R"({"alg":"EdDSA","alg":"EdDSA"})", ValidPayload()),
      "header has a duplicate member");
}

TEST_F(TokenTest, RefusesUnknownOrMissingRole) {
  ExpectRefused(SignRaw(private_pem_, R"({"alg":"EdDSA"})",
                        R"({"iss":"test-cluster","sub":"a","role":"root",)"
                        R"("iat":1700000000,"exp":1700003600})"),
                "role is not a known role");
  ExpectRefused(SignRaw(private_pem_, R"({"alg":"EdDSA"})",
                        R"({"iss":"test-cluster","sub":"a",)"
                        R"("iat":1700000000,"exp":1700003600})"),
                "no \"role\" claim");
}

TEST_F(TokenTest, RefusesMalformedClaims) {
  auto payload = [](const std::string& logins, const std::string& exp) {
    return R"({"iss":"test-cluster","sub":"a","role":"user","logins":)" +
           logins + R"(,"iat":1700000000,"exp":)" + exp + "}";
  };
  std::string h = R"({"alg":"EdDSA"})";
  ExpectRefused(SignRaw(private_pem_, h, payload(R"("root")", "1700003600")),
                "logins");
  ExpectRefused(SignRaw(private_pem_, h, payload("[1]", "1700003600")),
                "logins");
  ExpectRefused(SignRaw(private_pem_, h, payload("[]", "\"1700003600\"")),
                "\"exp\" claim is not an integer");
  ExpectRefused(SignRaw(private_pem_, h, payload("[]", "1.7e9")),
                "\"exp\" claim is not an integer");
  ExpectRefused(SignRaw(private_pem_, h, payload("[]", "18446744073709551615")),
                "\"exp\" claim is not an integer");
  ExpectRefused(SignRaw(private_pem_, h, "[]"), "not a JSON object");
  ExpectRefused(SignRaw(private_pem_, h, "{\"sub\":\"\xff\"}"),
                "not valid JSON");
}

TEST_F(TokenTest, RefusesOverlongToken) {
  Claims c = ValidClaims();
  c.logins.assign(1000, "login");
  std::string token = SignOrDie(c);
  ASSERT_GT(token.size(), kMaxTokenSize);
  ExpectRefused(token, "too long");
  ExpectRefused(std::string(kMaxTokenSize + 1, 'A'), "too long");
}

TEST_F(TokenTest, MessagesDoNotEchoTheToken) {
  std::string payload = B64(ValidPayload());
  std::string token =
      B64(R"({"alg":"XS256-secret-marker"})") + "." + payload + ".";
  Result<Claims> r = verifier_->Verify(token, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), Not(HasSubstr("secret-marker")));
  EXPECT_THAT(r.status().message(), Not(HasSubstr(payload)));
}

TEST_F(TokenTest, SignerRefusesClaimsThatCannotVerify) {
  Claims c = ValidClaims();
  c.subject.clear();
  EXPECT_FALSE(signer_->Sign(c).ok());
  c = ValidClaims();
  c.expires_at = c.issued_at;
  EXPECT_FALSE(signer_->Sign(c).ok());
  c = ValidClaims();
  c.logins = {"\xff"};  // not UTF-8
  EXPECT_EQ(signer_->Sign(c).status().code(), Code::kInvalidArgument);
}

TEST(TokenKeyTest, RefusesKeysThatAreNotEd25519) {
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, ec, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_PUBKEY(pub, ec);
  char* data = nullptr;
  long n = BIO_get_mem_data(priv, &data);
  std::string priv_pem(data, static_cast<size_t>(n));
  n = BIO_get_mem_data(pub, &data);
  std::string pub_pem(data, static_cast<size_t>(n));
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(ec);

  EXPECT_THAT(TokenSigner::FromPem(priv_pem).status().message(),
              HasSubstr("not an Ed25519 key"));
  EXPECT_THAT(TokenVerifier::FromPublicPem(pub_pem, kIssuer).status().message(),
              HasSubstr("not an Ed25519 key"));
  EXPECT_FALSE(TokenSigner::FromPem("garbage").ok());
  EXPECT_FALSE(TokenVerifier::FromPublicPem("garbage", kIssuer).ok());
}

// RFC 8037 appendix A.4: the signature part of a published EdDSA JWS
// verifies under our verifier (the payload is not claims JSON, so the
// verdict comes from the step after the signature check).
TEST(TokenRfc8037Test, PublishedSignatureVerifies) {
  std::string x =
      *Base64UrlDecode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(x.data()), x.size());
  ASSERT_NE(key, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  auto verifier = TokenVerifier::FromPublicPem(pem, kIssuer);
  ASSERT_TRUE(verifier.ok());

  const std::string jws =
      "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
      "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g"
      "7sVvpAr_MuM0KAg";
  Result<Claims> r = (*verifier)->Verify(jws, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("payload is not valid JSON"));

  std::string tampered = jws;
  tampered[tampered.size() - 5] =
      tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  r = (*verifier)->Verify(tampered, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("signature is not valid"));
}

TEST(Base64UrlTest, Rfc4648Vectors) {
  const std::pair<std::string, std::string> kVectors[] = {
      {"", ""},
      {"f", "Zg"},
      {"fo", "Zm8"},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg"},
      {"fooba", "Zm9vYmE"},
      {"foobar", "Zm9vYmFy"},
      // RFC 7515 appendix C: the two characters that differ from base64.
      {std::string("\x03\xec\xff\xe0\xc1", 5), "A-z_4ME"},
      {"\xfb\xff", "-_8"},
  };
  for (const auto& [plain, encoded] : kVectors) {
    EXPECT_EQ(Base64UrlEncode(plain), encoded);
    Result<std::string> decoded = Base64UrlDecode(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded;
    EXPECT_EQ(*decoded, plain);
  }
}

TEST(Base64UrlTest, DecodeIsStrict) {
  for (const char* bad : {"Zg==", "Zg=", "Zm+v", "Zm/v", "Z", "Zm9vY", "Zh",
                          "Zm9", "Zm 9v", "Zm9v\n"}) {
    EXPECT_FALSE(Base64UrlDecode(bad).ok()) << bad;
  }
}

TEST(RoleTest, NamesRoundTrip) {
  for (Role r : {Role::kUser, Role::kAdmin, Role::kNode, Role::kProxy}) {
    Result<Role> parsed = ParseRole(RoleName(r));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_FALSE(ParseRole("Admin").ok());
  EXPECT_FALSE(ParseRole("").ok());
}

}  // namespace
}  // namespace mez::auth
