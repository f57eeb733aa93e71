// Feeds arbitrary bytes to TokenVerifier: it must accept or refuse, never
// crash. Each input is tried twice:
//   1. as a whole token;
//   2. as the claims JSON of a token signed with the fixed key below, so
//      that the checks which run only after a good signature are reached.
// Issuer "fuzz", verification time 1700000000. The key is a fixed test key
// (never used elsewhere) so that the seeds in corpus/token/, signed with
// it, carry valid signatures for the fuzzer to mutate.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "libmez/auth/token.h"

namespace {

constexpr char kKeyPem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIP+FlfZZs068HzcNGb1cKB4G6y+f1ziF+541M4j0k2B9\n"
    "-----END PRIVATE KEY-----\n";
constexpr char kIssuer[] = "fuzz";
constexpr int64_t kNow = 1'700'000'000;

struct Fixture {
  std::unique_ptr<mez::auth::TokenVerifier> verifier;
  EVP_PKEY* key = nullptr;  // lives for the whole process
};

const Fixture& GetFixture() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture;
    auto signer = mez::auth::TokenSigner::FromPem(kKeyPem);
    if (!signer.ok()) __builtin_trap();
    auto verifier = mez::auth::TokenVerifier::FromPublicPem(
        (*signer)->PublicKeyPem(), kIssuer);
    if (!verifier.ok()) __builtin_trap();
    f->verifier = std::move(*verifier);
    BIO* bio = BIO_new_mem_buf(kKeyPem, -1);
    f->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (f->key == nullptr) __builtin_trap();
    return f;
  }();
  return *fixture;
}

// header.payload.signature over `payload`, signed with the fixture key.
std::string SignPayload(EVP_PKEY* key, std::string_view payload) {
  std::string token =
      mez::auth::Base64UrlEncode(R"({"alg":"EdDSA","typ":"JWT"})") + "." +
      mez::auth::Base64UrlEncode(payload);
  unsigned char sig[64];
  size_t sig_len = sizeof(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key) != 1 ||
      EVP_DigestSign(ctx, sig, &sig_len,
                     reinterpret_cast<const unsigned char*>(token.data()),
                     token.size()) != 1) {
    __builtin_trap();
  }
  EVP_MD_CTX_free(ctx);
  return token + "." +
         mez::auth::Base64UrlEncode(
             std::string_view(reinterpret_cast<char*>(sig), sig_len));
}

// Whatever Verify accepts must satisfy its documented checks.
void CheckVerdict(const mez::Result<mez::auth::Claims>& r) {
  if (!r.ok()) {
    if (r.status().code() != mez::Code::kUnauthenticated) __builtin_trap();
    return;
  }
  const mez::auth::Claims& c = *r;
  if (c.issuer != kIssuer || c.subject.empty() || c.expires_at <= kNow ||
      c.issued_at > kNow + 300) {
    __builtin_trap();
  }
  if (!mez::auth::ParseRole(mez::auth::RoleName(c.role)).ok()) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = GetFixture();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckVerdict(f.verifier->Verify(input, kNow));
  if (size <= mez::auth::kMaxTokenSize / 2) {
    CheckVerdict(f.verifier->Verify(SignPayload(f.key, input), kNow));
  }
  return 0;
}
