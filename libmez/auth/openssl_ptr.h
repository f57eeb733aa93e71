// Owning pointers for the OpenSSL objects the auth module uses, so that
// every exit path frees them. Internal to libmez/auth.
#ifndef MEZ_AUTH_OPENSSL_PTR_H_
#define MEZ_AUTH_OPENSSL_PTR_H_

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

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

}  // namespace mez::auth::internal

#endif  // MEZ_AUTH_OPENSSL_PTR_H_
