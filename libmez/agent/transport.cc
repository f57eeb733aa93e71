#include "libmez/agent/transport.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include "libmez/agent/diagnose.h"
#include "libmez/agent/ssl_handles.h"
#include "libmez/auth/keys.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"
#include "libmez/util/host_port.h"

namespace mez::agent {

Result<std::shared_ptr<grpc::ChannelCredentials>> NodeChannelCredentials(
    const std::string& auth_addr, const std::string& ca_pem, bool insecure) {
  if (insecure) {
    if (!ca_pem.empty()) {
      return InvalidArgument(
          "--insecure and --ca-file contradict each other: --ca-file asks for "
          "TLS, --insecure for plaintext; drop one");
    }
    if (!IsLoopbackHost(auth_addr)) {
      return InvalidArgument(
          "--insecure sends this node's credential in plaintext and is "
          "allowed only to a mezrecd on loopback (127.0.0.1, ::1); '" +
          auth_addr +
          "' is not one. Give --ca-file with the cluster's TLS CA instead");
    }
    return rpc::ChannelCredentialsFor("");
  }
  if (ca_pem.empty()) {
    return InvalidArgument(
        "no TLS CA for mezrecd at " + auth_addr +
        ": give --ca-file with the cluster's TLS CA (tls_ca.crt in "
        "mezrecd's data dir, or tls_ca_pem in an identity file); plaintext "
        "(--insecure) is allowed only to a mezrecd on loopback");
  }
  return rpc::ChannelCredentialsFor(ca_pem);
}

namespace {

std::string CertPem(X509* cert) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

}  // namespace

Result<std::string> FetchPinnedCa(const std::string& auth_addr,
                                  const std::string& ca_sha256,
                                  int timeout_ms) {
  std::string host;
  uint16_t port = 0;
  MEZ_RETURN_IF_ERROR(SplitHostPort(auth_addr, &host, &port));
  MEZ_ASSIGN_OR_RETURN(int raw_fd, DialMezrecd(auth_addr, timeout_ms));
  Fd fd(raw_fd);
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Internal("cannot create a TLS context");
  // Not verified here on purpose: only the chain is read, and the one
  // certificate that matches the pin is trusted afterwards.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  if (!ssl) return Internal("cannot create a TLS connection");
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_set_alpn_protos(ssl.get(), kAlpn, sizeof(kAlpn));
  in6_addr ip;
  if (inet_pton(AF_INET, host.c_str(), &ip) != 1 &&
      inet_pton(AF_INET6, host.c_str(), &ip) != 1) {
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  }
  SSL_set_fd(ssl.get(), fd.get());
  if (SSL_connect(ssl.get()) != 1) {
    unsigned long e = ERR_get_error();
    char buf[256] = {};
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    // No plaintext probe here: the one connection mezd makes before it
    // trusts the server carries a ClientHello and nothing else.
    return Status(Code::kUnavailable,
                  "no TLS handshake with " + auth_addr + " (" +
                      (e != 0 ? std::string(buf) : "connection closed") +
                      "): whatever listens there is not a mezrecd serving "
                      "TLS; --auth must be mezrecd's --listen address as "
                      "this node reaches it");
  }
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get());
  X509* leaf = chain != nullptr && sk_X509_num(chain) > 0
                   ? sk_X509_value(chain, 0)
                   : nullptr;
  std::string result;
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    X509* cert = sk_X509_value(chain, i);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &len) != 1) continue;
    if (HexEncode(std::string_view(reinterpret_cast<char*>(md), len)) !=
        ca_sha256) {
      continue;
    }
    if (X509_check_ca(cert) < 1) {
      return FailedPrecondition(
          "the certificate mezrecd at " + auth_addr +
          " presents with the pinned SHA-256 is not a CA certificate");
    }
    if (cert != leaf && X509_verify(leaf, X509_get0_pubkey(cert)) != 1) {
      ERR_clear_error();
      return FailedPrecondition("mezrecd at " + auth_addr +
                                " presents the pinned CA, but its server "
                                "certificate was not issued by it");
    }
    result = CertPem(cert);
    break;
  }
  SSL_shutdown(ssl.get());
  ERR_clear_error();
  if (result.empty()) {
    return FailedPrecondition(
        "mezrecd at " + auth_addr +
        " did not present the TLS CA this node's join token pins (sha256 " +
        ca_sha256 +
        "): the address is not this cluster's mezrecd, or something is in "
        "between. Check --auth, or give --ca-file with the cluster's "
        "tls_ca.crt");
  }
  return result;
}

Result<std::shared_ptr<grpc::ChannelCredentials>> ResolveNodeTransport(
    const std::string& auth_addr, const std::string& data_dir,
    const std::string& ca_pem, bool insecure, const std::string& ca_sha256,
    std::string* ca_in_use) {
  auto tls = [ca_in_use](const std::string& pem) {
    if (ca_in_use != nullptr) *ca_in_use = pem;
    return rpc::ChannelCredentialsFor(pem);
  };
  if (insecure) {
    if (!ca_sha256.empty()) {
      return InvalidArgument(
          "--insecure asks for plaintext, but the join token pins the "
          "cluster's TLS CA (mezrecd serves TLS); drop --insecure");
    }
    return NodeChannelCredentials(auth_addr, ca_pem, insecure);
  }
  if (!ca_pem.empty()) {
    if (!ca_sha256.empty()) {
      auto got = auth::CertificateSha256(ca_pem);
      if (!got.ok())
        return InvalidArgument("--ca-file: " + got.status().message());
      if (*got != ca_sha256) {
        return InvalidArgument(
            "--ca-file is not the CA this node's join token pins (file: "
            "sha256 " +
            *got + ", token: sha256 " + ca_sha256 +
            "); give the cluster's tls_ca.crt, or leave --ca-file out and "
            "mezd fetches the pinned CA from mezrecd");
      }
      // Kept, as a fetched one would be, for starts without --ca-file.
      MEZ_RETURN_IF_ERROR(
          AtomicWriteFile(data_dir + "/cluster_ca.pem", ca_pem, 0644));
    }
    return tls(ca_pem);
  }
  const std::string path = data_dir + "/cluster_ca.pem";
  auto stored = ReadFile(path);
  if (!ca_sha256.empty()) {
    if (stored.ok()) {
      auto got = auth::CertificateSha256(*stored);
      if (got.ok() && *got == ca_sha256) return tls(*stored);
    }
    MEZ_ASSIGN_OR_RETURN(std::string pem, FetchPinnedCa(auth_addr, ca_sha256));
    MEZ_RETURN_IF_ERROR(AtomicWriteFile(path, pem, 0644));
    return tls(pem);
  }
  if (stored.ok()) return tls(*stored);
  return NodeChannelCredentials(auth_addr, "", false);
}

}  // namespace mez::agent
