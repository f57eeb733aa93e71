// The listener's bounds over real sockets on loopback (plain HTTP, so that
// the test reads the bytes as sent): the connection cap, the idle
// deadline, and a malformed request answered and closed while the server
// goes on serving.
#include "libmez/web/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <chrono>

namespace mez::web {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(int max_connections, int64_t io_timeout_us,
             int max_per_peer = 32) {
    WebApiOptions o;
    o.sign_in = &store_;
    o.clock = &clock_;
    o.public_url = "https://127.0.0.1:1";
    api_ = std::make_unique<WebApi>(o);
    HttpServerOptions h;
    h.listen = "127.0.0.1:0";
    h.plain_http = true;
    h.api = api_.get();
    h.max_connections = max_connections;
    h.max_connections_per_peer = max_per_peer;
    h.io_timeout_us = io_timeout_us;
    auto s = HttpServer::Start(h);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(s).value();
    port_ = static_cast<uint16_t>(std::stoi(
        server_->address().substr(server_->address().rfind(':') + 1)));
  }

  std::unique_ptr<tcp::socket> Connect(const char* from = nullptr) {
    auto s = std::make_unique<tcp::socket>(ioc_);
    if (from != nullptr) {
      s->open(tcp::v4());
      s->bind(tcp::endpoint(asio::ip::make_address(from), 0));
    }
    s->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    return s;
  }

  // Everything the server sends until it closes, or until `deadline_ms`.
  std::string ReadAll(tcp::socket* s, int deadline_ms = 20000) {
    std::string out;
    auto end = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(deadline_ms);
    s->non_blocking(true);
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      boost::system::error_code ec;
      size_t n = s->read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block) {
        s->wait(tcp::socket::wait_read, ec);
        continue;
      }
      if (ec) return out + "<closed>";
      out.append(buf, n);
    }
    return out;
  }

  std::string Ask(tcp::socket* s, const std::string& request) {
    asio::write(*s, asio::buffer(request));
    return ReadAll(s);
  }

  FakeClock clock_;
  SignInStore store_{&clock_, 60'000'000};
  std::unique_ptr<WebApi> api_;
  std::unique_ptr<HttpServer> server_;
  asio::io_context ioc_;
  uint16_t port_ = 0;
};

TEST_F(HttpServerTest, ConnectionsBeyondTheCapAreClosedAtAccept) {
  Start(2, 30'000'000);
  auto a = Connect();
  auto b = Connect();
  // Both held: a request on each is answered (keep-alive stays open, so
  // read just the status line's start).
  for (auto* s : {a.get(), b.get()}) {
    asio::write(
        *s,
        asio::buffer(std::string("GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n")));
    char head[12];
    asio::read(*s, asio::buffer(head));
    EXPECT_EQ(std::string(head, 12), "HTTP/1.1 200");
  }
  auto c = Connect();
  EXPECT_EQ(ReadAll(c.get()), "<closed>");
  // One goes away: a new one is served.
  a.reset();
  std::string got;
  for (int i = 0; i < 200 && got.rfind("HTTP/1.1 200", 0) != 0; ++i) {
    auto d = Connect();
    got = Ask(d.get(),
              "GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  }
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got.substr(0, 200);
}

TEST_F(HttpServerTest, OneClientCannotTakeEveryConnection) {
  Start(100, 30'000'000, 2);
  auto a = Connect();
  auto b = Connect();
  for (auto* s : {a.get(), b.get()}) {
    asio::write(
        *s,
        asio::buffer(std::string("GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n")));
    char head[12];
    asio::read(*s, asio::buffer(head));
    EXPECT_EQ(std::string(head, 12), "HTTP/1.1 200");
  }
  // A third from the same address is closed at once ...
  auto c = Connect();
  EXPECT_EQ(ReadAll(c.get()), "<closed>");
  // ... while another address (127.0.0.2, also loopback) is served.
  auto d = Connect("127.0.0.2");
  std::string got = Ask(
      d.get(), "GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got.substr(0, 200);
}

TEST_F(HttpServerTest, IdleConnectionsAreClosedAtTheDeadline) {
  Start(16, 300'000);
  auto idle = Connect();
  // Nothing sent: the server closes it on its read deadline (the test's
  // own deadline is far longer).
  EXPECT_EQ(ReadAll(idle.get()), "<closed>");
  // Half a request, then silence: the same.
  auto half = Connect();
  asio::write(*half, asio::buffer(std::string("GET / HTTP/1.1\r\nHo")));
  EXPECT_EQ(ReadAll(half.get()), "<closed>");
}

TEST_F(HttpServerTest, MalformedAndOversizedRequestsAreAnsweredAndClosed) {
  Start(16, 30'000'000);
  auto bad = Connect();
  std::string got = Ask(bad.get(), "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
  EXPECT_NE(got.find("<closed>"), std::string::npos);

  auto big = Connect();
  got = Ask(big.get(),
            "GET / HTTP/1.1\r\nX-A: " + std::string(9000, 'a') + "\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 431", 0), 0u) << got.substr(0, 100);

  auto body = Connect();
  got = Ask(body.get(),
            "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: "
            "99999999999\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got.substr(0, 100);

  auto fine = Connect();
  got =
      Ask(fine.get(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got.substr(0, 100);
  EXPECT_NE(got.find("Content-Security-Policy"), std::string::npos);
}

TEST_F(HttpServerTest, BadAddressesAndKeysAreRefused) {
  WebApiOptions o;
  o.sign_in = &store_;
  WebApi api(o);
  HttpServerOptions h;
  h.api = &api;
  h.listen = "localhost:0";
  EXPECT_FALSE(HttpServer::Start(h).ok());  // Not an IP literal.
  h.listen = "127.0.0.1:0";
  // No certificate is not plain HTTP: that takes plain_http.
  auto none = HttpServer::Start(h);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("empty"), std::string::npos);
  h.tls_cert_chain_pem = "not a certificate";
  h.tls_key_pem = "not a key";
  auto s = HttpServer::Start(h);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("certificate"), std::string::npos);
}

}  // namespace
}  // namespace mez::web
