// The web UI's listener: HTTPS (or plain HTTP for a TLS-terminating proxy
// on loopback) with Boost.Beast over Boost.Asio, on threads of its own.
// Bounds: request header and body sizes (431/413 and the connection
// closed), a deadline on the TLS handshake and on every read and write,
// and a cap on open connections (one over it is closed at accept). Each
// parsed request goes to WebApi::Handle on the listener's threads.
#ifndef MEZ_WEB_HTTP_SERVER_H_
#define MEZ_WEB_HTTP_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "libmez/util/status.h"
#include "libmez/web/api.h"

namespace mez::web {

struct HttpServerOptions {
  std::string listen;  // "HOST:PORT", IP literal; port 0 picks one.
  // The certificate chain and key (PEM); both required unless plain_http.
  std::string tls_cert_chain_pem;
  std::string tls_key_pem;
  // Plain HTTP (for a TLS-terminating proxy): only when asked for, never
  // because a certificate file turned out empty.
  bool plain_http = false;
  WebApi* api = nullptr;  // required; must outlive the server
  int threads = 2;
  uint32_t max_header_bytes = 8 << 10;
  uint64_t max_body_bytes = 16 << 10;
  int max_connections = 256;
  // Per client address (the TCP peer, never a forwarded header): a few
  // clients holding idle keep-alive connections cannot take them all. 0:
  // no such cap (behind a proxy, every connection is the proxy's).
  int max_connections_per_peer = 32;
  int64_t io_timeout_us = 30'000'000;  // Handshake, each read and write.
};

class HttpServer {
 public:
  // Binds and starts serving. kUnavailable (naming the address) when it
  // cannot listen there; kInvalidArgument for a bad key or certificate.
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options);
  // Stops accepting, drops open connections and joins the threads.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound address ("HOST:PORT", IPv6 in brackets).
  const std::string& address() const { return address_; }

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

}  // namespace mez::web

#endif  // MEZ_WEB_HTTP_SERVER_H_
