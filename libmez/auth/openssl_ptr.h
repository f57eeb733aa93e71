// Owning pointers for the OpenSSL objects the auth module uses, so that
// every exit path frees them. Internal to libmez/auth.
#ifndef MEZ_AUTH_OPENSSL_PTR_H_
#define MEZ_AUTH_OPENSSL_PTR_H_

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

#include "libmez/util/status.h"

namespace mez::auth::internal {

struct OpensslFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, OpensslFree>;
using BioPtr = std::unique_ptr<BIO, OpensslFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpensslFree>;
using X509Ptr = std::unique_ptr<X509, OpensslFree>;
using X509NamePtr = std::unique_ptr<X509_NAME, OpensslFree>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpensslFree>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpensslFree>;
using BignumPtr = std::unique_ptr<BIGNUM, OpensslFree>;

// Refuses to prompt on the terminal for the passphrase of an encrypted PEM
// (a null callback would).
inline int NoPassphrase(char*, int, int, void*) { return -1; }

inline BioPtr MemBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

inline std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

// Reads an Ed25519 private key from PEM; errors name it as `what`.
inline Result<PkeyPtr> LoadEd25519PrivateKey(std::string_view pem,
                                             const std::string& what) {
  BioPtr bio = MemBio(pem);
  PkeyPtr key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr)
          : nullptr);
  if (!key) {
    ERR_clear_error();
    return InvalidArgument(what + " is not a PEM private key");
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return InvalidArgument(what + " is not an Ed25519 key");
  }
  return key;
}

}  // namespace mez::auth::internal

#endif  // MEZ_AUTH_OPENSSL_PTR_H_
