#include "libmez/web/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "libmez/util/host_port.h"
#include "libmez/util/log.h"

namespace mez::web {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using PlainStream = beast::tcp_stream;

struct Shared {
  WebApi* api;
  HttpServerOptions opt;
  std::atomic<int> open{0};
  std::mutex mu;
  std::map<std::string, int> per_peer;  // Open connections by address.

  // Counts a connection from `peer` in, unless a cap is reached.
  bool Admit(const std::string& peer) {
    std::lock_guard<std::mutex> lock(mu);
    if (open.load() >= opt.max_connections) return false;
    int& n = per_peer[peer];
    if (opt.max_connections_per_peer > 0 && n >= opt.max_connections_per_peer) {
      if (n == 0) per_peer.erase(peer);
      return false;
    }
    ++n;
    ++open;
    return true;
  }
  void Leave(const std::string& peer) {
    std::lock_guard<std::mutex> lock(mu);
    --open;
    auto it = per_peer.find(peer);
    if (it != per_peer.end() && --it->second <= 0) per_peer.erase(it);
  }
};

// One connection: reads requests one after the other (keep-alive), hands
// each to the API, writes the answer.
template <typename Stream>
class Conn : public std::enable_shared_from_this<Conn<Stream>> {
 public:
  template <typename... Args>
  Conn(std::shared_ptr<Shared> shared, std::string peer, Args&&... args)
      : shared_(std::move(shared)),
        peer_(std::move(peer)),
        stream_(std::forward<Args>(args)...) {}
  ~Conn() { shared_->Leave(peer_); }

  void Run() {
    Deadline();
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      stream_.async_handshake(
          ssl::stream_base::server,
          [self = this->shared_from_this()](beast::error_code ec) {
            if (!ec) self->Read();
          });
    } else {
      Read();
    }
  }

 private:
  void Deadline() {
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::microseconds(shared_->opt.io_timeout_us));
  }

  void Read() {
    parser_.emplace();
    parser_->header_limit(shared_->opt.max_header_bytes);
    parser_->body_limit(shared_->opt.max_body_bytes);
    Deadline();
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](
                         beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted) {
      return Close();
    }
    if (ec == http::error::header_limit) {
      return Refuse(http::status::request_header_fields_too_large,
                    "request headers too large");
    }
    if (ec == http::error::body_limit) {
      return Refuse(http::status::payload_too_large, "request body too large");
    }
    if (ec.category() ==
            http::make_error_code(http::error::bad_target).category() ||
        ec == http::error::partial_message) {
      return Refuse(http::status::bad_request, "malformed request");
    }
    if (ec) return Close();
    const auto& req = parser_->get();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.body = req.body();
    r.peer_ip = peer_;
    for (const auto& field : req) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      std::string& v = r.headers[name];
      v += (v.empty() ? "" : (name == "cookie" ? "; " : ", ")) +
           std::string(field.value());
    }
    HttpResponse out = shared_->api->Handle(r);
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req.version());
    res->result(out.status);
    res->set(http::field::server, "mezrecd");
    if (!out.content_type.empty()) {
      res->set(http::field::content_type, out.content_type);
    }
    for (const auto& [k, v] : out.headers) res->insert(k, v);
    if (r.method != "HEAD") res->body() = std::move(out.body);
    res->keep_alive(req.keep_alive());
    res->prepare_payload();
    Write(res);
  }

  // Answers an unreadable request and closes: what is left of it in the
  // stream cannot be framed.
  void Refuse(http::status status, const std::string& why) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->result(status);
    res->set(http::field::content_type, "application/json");
    res->set(http::field::cache_control, "no-store");
    res->body() = "{\"error\":\"bad_request\",\"message\":\"" + why + "\"}";
    res->keep_alive(false);
    res->prepare_payload();
    Write(res);
  }

  void Write(std::shared_ptr<http::response<http::string_body>> res) {
    Deadline();
    http::async_write(
        stream_, *res,
        [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
          if (ec || !res->keep_alive()) return self->Close();
          self->Read();
        });
  }

  void Close() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) {
            beast::error_code ignored;
            beast::get_lowest_layer(self->stream_).socket().close(ignored);
          });
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  std::shared_ptr<Shared> shared_;
  std::string peer_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

struct HttpServer::Impl {
  // Destroyed in reverse: the connections (owned by handlers the
  // io_context holds) go before the TLS context their streams use.
  std::shared_ptr<Shared> shared;
  std::optional<ssl::context> tls;
  asio::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> backoff;
  std::vector<std::thread> threads;

  void Accept() {
    acceptor->async_accept(asio::make_strand(ioc), [this](beast::error_code ec,
                                                          tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors, most likely: wait a little rather than spin.
        MEZ_LOG(kWarning) << "web: accept: " << ec.message();
        backoff->expires_after(std::chrono::milliseconds(100));
        backoff->async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec) Accept();
        });
        return;
      }
      {
        beast::error_code pe;
        std::string peer = socket.remote_endpoint(pe).address().to_string();
        if (!shared->Admit(peer)) {
          beast::error_code ignored;
          socket.close(ignored);
        } else {
          if (tls) {
            std::make_shared<Conn<TlsStream>>(shared, peer, std::move(socket),
                                              *tls)
                ->Run();
          } else {
            std::make_shared<Conn<PlainStream>>(shared, peer, std::move(socket))
                ->Run();
          }
        }
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  asio::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
  });
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions o) {
  std::string host;
  uint16_t port = 0;
  MEZ_RETURN_IF_ERROR(SplitHostPort(o.listen, &host, &port));
  beast::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec) {
    return InvalidArgument("web listen address " + o.listen +
                           ": the host must be an IP address");
  }
  auto impl = std::make_unique<Impl>();
  impl->shared = std::make_shared<Shared>();
  impl->shared->api = o.api;
  impl->shared->opt = o;
  if (!o.plain_http &&
      (o.tls_cert_chain_pem.empty() || o.tls_key_pem.empty())) {
    return InvalidArgument(
        "web TLS: the certificate or key is empty (serving plain HTTP needs "
        "--web-insecure-http, on a loopback address)");
  }
  if (!o.plain_http) {
    impl->tls.emplace(ssl::context::tls_server);
    impl->tls->set_options(ssl::context::default_workarounds |
                           ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                           ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                           ssl::context::single_dh_use);
    impl->tls->use_certificate_chain(
        asio::buffer(o.tls_cert_chain_pem.data(), o.tls_cert_chain_pem.size()),
        ec);
    if (ec) return InvalidArgument("web TLS certificate: " + ec.message());
    impl->tls->use_private_key(
        asio::buffer(o.tls_key_pem.data(), o.tls_key_pem.size()),
        ssl::context::pem, ec);
    if (ec) return InvalidArgument("web TLS key: " + ec.message());
  }
  impl->acceptor.emplace(impl->ioc);
  impl->backoff.emplace(impl->ioc);
  tcp::endpoint ep(ip, port);
  impl->acceptor->open(ep.protocol(), ec);
  if (!ec)
    impl->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(ep, ec);
  if (!ec)
    impl->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(Code::kUnavailable,
                  "web: cannot listen on " + o.listen + ": " + ec.message());
  }
  auto bound = impl->acceptor->local_endpoint();
  std::string addr = bound.address().is_v6()
                         ? "[" + bound.address().to_string() + "]"
                         : bound.address().to_string();
  addr += ":" + std::to_string(bound.port());
  impl->Accept();
  for (int i = 0; i < std::max(1, o.threads); ++i) {
    impl->threads.emplace_back([ioc = &impl->ioc] {
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {
          MEZ_LOG(kError) << "web: " << e.what();
        }
      }
    });
  }
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(impl)));
  server->address_ = addr;
  return server;
}

}  // namespace mez::web
