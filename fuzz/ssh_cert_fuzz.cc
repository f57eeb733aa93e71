// Feeds arbitrary bytes to ParseSshCert and CheckSshCert: they must accept
// or refuse, never crash. Each input is tried twice:
//   1. as a whole certificate blob;
//   2. as the signed part of a blob (everything before the signature
//      field), signed here with the fixed CA key below and completed with
//      the signature field, so that the checks which run only after a good
//      signature are reached.
// Checked as a user certificate for principal "root" at 1700000000. The
// key is a fixed test key (never used elsewhere) so that the seeds in
// corpus/ssh_cert/, signed with it, carry valid signatures to mutate.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "libmez/auth/ssh_cert.h"

namespace {

constexpr char kCaPem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJrtPW27zrCrxTco0mNS+Er5ZZjWBOYRBW1G0V9vOyW9\n"
    "-----END PRIVATE KEY-----\n";
constexpr char kPrincipal[] = "root";
constexpr int64_t kNow = 1'700'000'000;

struct Fixture {
  std::string ca_blob;
  EVP_PKEY* key = nullptr;  // lives for the whole process
};

const Fixture& GetFixture() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture;
    auto blob = mez::auth::Ed25519PublicBlobFromPem(kCaPem);
    if (!blob.ok()) __builtin_trap();
    f->ca_blob = *blob;
    BIO* bio = BIO_new_mem_buf(kCaPem, -1);
    f->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (f->key == nullptr) __builtin_trap();
    return f;
  }();
  return *fixture;
}

void PutString(std::string_view s, std::string* out) {
  uint32_t n = static_cast<uint32_t>(s.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((n >> shift) & 0xff));
  }
  out->append(s);
}

// `body` followed by the signature field, signed with the fixture key.
std::string SignBody(EVP_PKEY* key, std::string_view body) {
  unsigned char sig[64];
  size_t sig_len = sizeof(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key) != 1 ||
      EVP_DigestSign(ctx, sig, &sig_len,
                     reinterpret_cast<const unsigned char*>(body.data()),
                     body.size()) != 1) {
    __builtin_trap();
  }
  EVP_MD_CTX_free(ctx);
  std::string signature;
  PutString("ssh-ed25519", &signature);
  PutString(std::string_view(reinterpret_cast<char*>(sig), sig_len),
            &signature);
  std::string blob(body);
  PutString(signature, &blob);
  return blob;
}

// Whatever CheckSshCert accepts must satisfy its documented checks.
void Try(const Fixture& f, std::string_view blob) {
  mez::Result<mez::auth::SshCert> cert = mez::auth::ParseSshCert(blob);
  if (!cert.ok()) {
    if (cert.status().code() != mez::Code::kUnauthenticated) __builtin_trap();
    return;
  }
  const mez::auth::SshCert& c = *cert;
  if (c.public_key.size() != 32 || c.signature.size() != 64 ||
      blob.substr(0, c.signed_data.size()) != c.signed_data) {
    __builtin_trap();
  }
  mez::Status s = mez::auth::CheckSshCert(c, f.ca_blob, mez::auth::kSshUserCert,
                                          kPrincipal, kNow);
  if (!s.ok()) {
    if (s.code() != mez::Code::kUnauthenticated &&
        s.code() != mez::Code::kPermissionDenied) {
      __builtin_trap();
    }
    return;
  }
  uint64_t now = static_cast<uint64_t>(kNow);
  if (c.signature_key != f.ca_blob || c.type != mez::auth::kSshUserCert ||
      now < c.valid_after || now >= c.valid_before ||
      std::find(c.principals.begin(), c.principals.end(), kPrincipal) ==
          c.principals.end() ||
      !c.critical_options.empty()) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = GetFixture();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  Try(f, input);
  if (size <= mez::auth::kMaxSshCertSize - 100) {
    Try(f, SignBody(f.key, input));
  }
  return 0;
}
