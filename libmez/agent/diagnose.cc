#include "libmez/agent/diagnose.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "libmez/agent/ssl_handles.h"
#include "libmez/rpc/channel.h"
#include "libmez/util/host_port.h"

namespace mez::agent {
namespace {

constexpr char kAuthHint[] =
    "--auth must be mezrecd's --listen address as this node reaches it";

// connect() on a non-blocking socket, waiting up to `timeout_ms`; 0 or an
// errno value.
int ConnectWithin(int fd, const sockaddr* addr, socklen_t len, int timeout_ms) {
  if (connect(fd, addr, len) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd p = {fd, POLLOUT, 0};
  int r = poll(&p, 1, timeout_ms);
  if (r == 0) return ETIMEDOUT;
  if (r < 0) return errno;
  int err = 0;
  socklen_t err_len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0) return errno;
  return err;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Adds every certificate in `pem` to `ctx`'s trust store; false if none.
bool TrustPem(SSL_CTX* ctx, const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return false;
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store, cert) == 1) ++added;
    X509_free(cert);
  }
  ERR_clear_error();
  return added > 0;
}

}  // namespace

Result<int> DialMezrecd(const std::string& auth_addr, int timeout_ms) {
  std::string host;
  uint16_t port = 0;
  MEZ_RETURN_IF_ERROR(SplitHostPort(auth_addr, &host, &port));
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc =
      getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    return Status(Code::kUnavailable, "the name " + host +
                                          " in --auth does not resolve (" +
                                          gai_strerror(rc) + "); " + kAuthHint);
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(res, freeaddrinfo);
  int last = EADDRNOTAVAIL;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    a->ai_protocol);
    if (fd < 0) {
      last = errno;
      continue;
    }
    last = ConnectWithin(fd, a->ai_addr, a->ai_addrlen, timeout_ms);
    if (last != 0) {
      close(fd);
      continue;
    }
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
  }
  if (last == ECONNREFUSED) {
    return Status(Code::kUnavailable,
                  "nothing listens at " + auth_addr +
                      " (connection refused): is mezrecd running there? " +
                      kAuthHint);
  }
  if (last == ETIMEDOUT) {
    return Status(Code::kUnavailable,
                  "no answer from " + auth_addr + " within " +
                      std::to_string(timeout_ms / 1000) +
                      " s (a firewall drops the connection, or the host is "
                      "not mezrecd's); " +
                      kAuthHint);
  }
  return Status(Code::kUnavailable, "cannot connect to " + auth_addr + " (" +
                                        std::strerror(last) + "); " +
                                        kAuthHint);
}

bool SpeaksPlaintextGrpc(const std::string& auth_addr, int timeout_ms) {
  auto channel = rpc::OpenPlaintextChannel(auth_addr);
  return rpc::WaitUntilReady(*channel, std::chrono::milliseconds(timeout_ms)) ==
         rpc::ChannelState::kReady;
}

Status DiagnoseMezrecd(const std::string& auth_addr, Expect expect,
                       const std::string& ca_pem, int timeout_ms) {
  MEZ_ASSIGN_OR_RETURN(int raw_fd, DialMezrecd(auth_addr, timeout_ms));
  Fd fd(raw_fd);
  if (expect == Expect::kUnknown) return Status::Ok();
  std::string host;
  uint16_t port = 0;
  MEZ_RETURN_IF_ERROR(SplitHostPort(auth_addr, &host, &port));

  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Internal("cannot create a TLS context");
  // Verified by hand below: the handshake must finish for the verdict to
  // name what is wrong with the certificate.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  bool have_ca = expect == Expect::kTls && TrustPem(ctx.get(), ca_pem);
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  if (!ssl) return Internal("cannot create a TLS connection");
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_set_alpn_protos(ssl.get(), kAlpn, sizeof(kAlpn));
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (IsIpLiteral(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
  SSL_set_fd(ssl.get(), fd.get());
  bool handshake = SSL_connect(ssl.get()) == 1;
  long verify = SSL_get_verify_result(ssl.get());
  if (handshake) SSL_shutdown(ssl.get());
  ERR_clear_error();

  if (expect == Expect::kPlaintext) {
    if (!handshake) return Status::Ok();
    return Status(Code::kUnavailable,
                  "mezrecd at " + auth_addr +
                      " serves TLS, but mezd was started with --insecure "
                      "(plaintext): drop --insecure (a join token pins the "
                      "cluster's TLS CA; or give --ca-file)");
  }
  if (!handshake) {
    if (SpeaksPlaintextGrpc(auth_addr, std::min(timeout_ms, 3'000))) {
      return Status(Code::kUnavailable,
                    "mezrecd at " + auth_addr +
                        " speaks plaintext (it runs with --insecure), but "
                        "mezd expects TLS: run mezrecd without --insecure, "
                        "or, on loopback only, start mezd with --insecure");
    }
    return Status(Code::kUnavailable,
                  "no TLS handshake with " + auth_addr +
                      ": whatever listens there is not a mezrecd serving "
                      "TLS; " +
                      kAuthHint);
  }
  if (!have_ca || verify == X509_V_OK) return Status::Ok();
  if (verify == X509_V_ERR_HOSTNAME_MISMATCH ||
      verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    return FailedPrecondition(
        "the TLS certificate of mezrecd at " + auth_addr + " does not name " +
        host +
        " (it covers mezrecd's --listen host, or with a wildcard listen its "
        "host name and addresses, its tlsNames, 127.0.0.1, ::1 and "
        "localhost): add " +
        host +
        " to mezrecd's tlsNames (--tls-names) and restart it, or "
        "give --auth an address it covers");
  }
  return FailedPrecondition(
      "the TLS certificate of the server at " + auth_addr +
      " was not issued by the cluster CA this node trusts (" +
      X509_verify_cert_error_string(verify) +
      "): it is another cluster's mezrecd, or something is in between. mezd "
      "refuses it; check --auth");
}

}  // namespace mez::agent
