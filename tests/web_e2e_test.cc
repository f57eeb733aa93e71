// The web UI over a real mezrecd (--web-listen on loopback, HTTPS with the
// cluster's certificate) and a real HTTPS client (Boost.Beast, verifying
// the cluster CA): sign-in with a code from `msh web`, RBAC of the API,
// single-use codes, removal of a user, CSRF and origin checks, request
// bounds, and the loopback rule of --web-insecure-http.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "libmez/auth/identity.h"
#include "mezite/v1/web.grpc.pb.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using nlohmann::json;
using tcp = asio::ip::tcp;

struct Reply {
  int status = 0;  // 0: the connection failed or closed without an answer.
  std::map<std::string, std::string> headers;  // Lowercase names.
  std::string body;
  json Json() const { return json::parse(body, nullptr, false); }
};

struct Req {
  std::string method = "GET";
  std::string path;
  std::string body;
  std::map<std::string, std::string> headers;
  // Sends the header only, with this Content-Length (a body announced).
  size_t announce = 0;
};

class WebTest : public ::testing::Test {
 protected:
  void SetUp() override { StartWith({}); }

  // mezrecd with --web-listen 127.0.0.1:0 and `args`; `origin` is the
  // public URL's when --web-public-url is among them.
  void StartWith(std::vector<std::string> args, std::string origin = "") {
    args.insert(args.begin(), {"--web-listen", "127.0.0.1:0"});
    server_ = std::make_unique<Mezrecd>(dir_.File("data"), args);
    ASSERT_TRUE(server_->Start()) << server_->log();
    std::string log = server_->log();
    size_t at = log.find("web UI on 127.0.0.1:");
    ASSERT_NE(at, std::string::npos) << log;
    port_ = std::stoi(log.substr(at + 20));
    tls_ = log.find("(https)", at) != std::string::npos;
    origin_ =
        origin.empty() ? "https://127.0.0.1:" + std::to_string(port_) : origin;
    auto admin = auth::ReadIdentityFile(dir_.File("data/admin.identity"));
    ASSERT_TRUE(admin.ok());
    ca_pem_ = admin->tls_ca_pem;
  }

  template <typename Stream>
  static void Exchange(Stream& s, const Req& r, const std::string& host,
                       Reply* out) {
    http::request<http::string_body> req;
    req.method_string(r.method);
    req.target(r.path);
    req.version(11);
    req.set(http::field::host, host);
    for (const auto& [k, v] : r.headers) req.set(k, v);
    req.body() = r.body;
    req.prepare_payload();
    if (r.announce > 0) {
      req.content_length(r.announce);
      http::request_serializer<http::string_body> sr(req);
      http::write_header(s, sr);
    } else {
      http::write(s, req);
    }
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(1 << 20);
    http::read(s, buf, p);
    auto& res = p.get();
    out->status = res.result_int();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(c));
      out->headers[name] = std::string(f.value());
    }
    out->body = res.body();
  }

  // One request on a new connection: TLS, the cluster CA verified, or
  // plain HTTP when mezrecd serves that.
  Reply Send(const Req& r) {
    Reply out;
    std::string host = "127.0.0.1:" + std::to_string(port_);
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port_);
    try {
      asio::io_context ioc;
      if (!tls_) {
        beast::tcp_stream s(ioc);
        s.expires_after(std::chrono::seconds(20));
        s.connect(ep);
        Exchange(s, r, host, &out);
        return out;
      }
      ssl::context ctx(ssl::context::tls_client);
      ctx.add_certificate_authority(asio::buffer(ca_pem_));
      ctx.set_verify_mode(ssl::verify_peer);
      beast::ssl_stream<beast::tcp_stream> s(ioc, ctx);
      beast::get_lowest_layer(s).expires_after(std::chrono::seconds(20));
      beast::get_lowest_layer(s).connect(ep);
      s.handshake(ssl::stream_base::client);
      Exchange(s, r, host, &out);
    } catch (const std::exception& e) {
      out.body = e.what();
    }
    return out;
  }

  Reply Get(const std::string& path, const std::string& cookie) {
    Req r;
    r.path = path;
    if (!cookie.empty()) r.headers["Cookie"] = cookie;
    return Send(r);
  }

  // Creates `name` and stores its identity (mezctl users add), as
  // cli_fixture.h does; returns the identity file.
  std::string AddUser(const std::string& name, const std::string& role) {
    std::string out = dir_.File(name + ".identity");
    auto r = ::mez::testing::Run(
        std::string(MEZCTL_PATH) + " --identity " +
        ShellQuote(dir_.File("data/admin.identity")) + " users add " + name +
        " --logins=root --role=" + role + " --identity-out " + ShellQuote(out) +
        " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  }

  // `msh web` with `identity`: the link it prints, split into its code.
  std::string CodeFor(const std::string& identity) {
    auto r = ::mez::testing::Run("MEZ_IDENTITY= " + std::string(MSH_PATH) +
                                 " --identity " + ShellQuote(identity) +
                                 " web 2>/dev/null");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    std::string prefix = origin_ + "/login#";  // The public URL's.
    EXPECT_EQ(r.out.rfind(prefix, 0), 0u) << r.out;
    std::string code = r.out.substr(prefix.size());
    while (!code.empty() && code.back() == '\n') code.pop_back();
    EXPECT_EQ(code.size(), 64u) << r.out;
    return code;
  }

  Reply Login(const std::string& code) {
    Req r;
    r.method = "POST";
    r.path = "/api/login";
    r.body = json{{"code", code}}.dump();
    r.headers["Origin"] = origin_;
    r.headers["Content-Type"] = "application/json";
    return Send(r);
  }

  // Signs in with a code from `msh web`; returns "NAME=VALUE" of the
  // cookie and sets *csrf.
  std::string SignIn(const std::string& identity, std::string* csrf) {
    Reply r = Login(CodeFor(identity));
    EXPECT_EQ(r.status, 200) << r.body;
    std::string set = r.headers["set-cookie"];
    EXPECT_NE(set.find("HttpOnly"), std::string::npos) << set;
    EXPECT_NE(set.find("Secure"), std::string::npos) << set;
    EXPECT_NE(set.find("SameSite=Strict"), std::string::npos) << set;
    EXPECT_NE(set.find("Path=/"), std::string::npos) << set;
    if (csrf) *csrf = r.Json().value("csrf", "");
    std::string cookie = set.substr(0, set.find(';'));
    EXPECT_EQ(cookie.size(), std::string("__Host-mez_session=").size() + 64)
        << set;
    return cookie;
  }

  void Record(const std::string& id, const std::string& user) {
    std::string err;
    server_->RegisterNode("web-01", "127.0.0.1:22", &err);
    auto stub = server_->Stub();
    RecordCall call(stub.get(), server_->Token(auth::Role::kNode, "web-01"));
    ASSERT_TRUE(call.Send(HeaderFrame(id, server_->Grant(user, "web-01"),
                                      mezite::v1::SESSION_KIND_SHELL)));
    ASSERT_TRUE(call.Send(
        ChunkFrame(1000, mezite::v1::DIRECTION_OUT, "hi " + user + "\r\n")));
    ASSERT_TRUE(call.Close().ok());
  }

  static std::vector<std::string> Ids(const Reply& r) {
    std::vector<std::string> ids;
    json j = r.Json();
    if (!j.is_object() || !j["sessions"].is_array()) return ids;
    for (const auto& s : j["sessions"]) ids.push_back(s["id"]);
    return ids;
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> server_;
  int port_ = 0;
  std::string origin_;
  std::string ca_pem_;
  bool tls_ = true;
};

TEST_F(WebTest, SignInSeesOwnSessionsAndNotOthers) {
  std::string alice = AddUser("alice", "user");
  std::string bob = AddUser("bob", "user");
  Record("sess-alice-1", "alice");
  Record("sess-bob-1", "bob");

  std::string csrf;
  std::string a = SignIn(alice, &csrf);
  EXPECT_EQ(csrf.size(), 64u);
  Reply me = Get("/api/me", a);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.Json()["user"], "alice");
  EXPECT_EQ(me.Json()["role"], "user");
  EXPECT_EQ(me.headers["cache-control"], "no-store");
  EXPECT_NE(
      me.headers["content-security-policy"].find("frame-ancestors 'none'"),
      std::string::npos);
  EXPECT_EQ(me.headers["x-content-type-options"], "nosniff");

  Reply list = Get("/api/sessions", a);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(Ids(list), std::vector<std::string>{"sess-alice-1"});
  // Asking for bob's is refused, as for msh sessions ls.
  EXPECT_EQ(Get("/api/sessions?user=bob", a).status, 403);
  EXPECT_EQ(Get("/api/sessions/sess-alice-1", a).status, 200);

  // Bob: 404 for alice's session, the same as for one that does not exist;
  // a prefix of an id is no id.
  std::string b = SignIn(bob, nullptr);
  Reply other = Get("/api/sessions/sess-alice-1", b);
  Reply none = Get("/api/sessions/sess-nobody-9", b);
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(other.Json()["error"], none.Json()["error"]);
  EXPECT_EQ(Get("/api/sessions/sess-bob", b).status, 404);
  EXPECT_EQ(Ids(Get("/api/sessions", b)),
            std::vector<std::string>{"sess-bob-1"});

  // An admin sees both, and filters.
  std::string admin = SignIn(dir_.File("data/admin.identity"), nullptr);
  auto all = Ids(Get("/api/sessions", admin));
  EXPECT_EQ(all.size(), 2u);
  EXPECT_EQ(Ids(Get("/api/sessions?user=bob", admin)),
            std::vector<std::string>{"sess-bob-1"});
  EXPECT_EQ(Get("/api/sessions/sess-alice-1", admin).status, 200);
  EXPECT_EQ(Get("/api/sessions?colour=red", admin).status, 400);
  // Numbers past int64 are refused, never thrown on.
  EXPECT_EQ(Get("/api/sessions?cursor=9999999999999999999.x", admin).status,
            400);
  EXPECT_EQ(Get("/api/sessions?since=999999999999", admin).status, 200);
  EXPECT_EQ(Get("/api/sessions?limit=99999", admin).status, 400);
  EXPECT_EQ(Get("/api/sessions?since=yesterday", admin).status, 400);
}

TEST_F(WebTest, PagingWithACursorVisitsEverySessionOnce) {
  for (int i = 0; i < 5; ++i) Record("sess-p-" + std::to_string(i), "admin");
  std::string admin = SignIn(dir_.File("data/admin.identity"), nullptr);
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    Reply r = Get(
        "/api/sessions?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor),
        admin);
    ASSERT_EQ(r.status, 200) << r.body;
    auto ids = Ids(r);
    EXPECT_LE(ids.size(), 2u);
    seen.insert(seen.end(), ids.begin(), ids.end());
    cursor = r.Json()["next_cursor"];
    if (cursor.empty()) break;
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"sess-p-0", "sess-p-1", "sess-p-2",
                                            "sess-p-3", "sess-p-4"}));
}

TEST_F(WebTest, CodesAreSingleUseAndUnknownOnesRefused) {
  std::string alice = AddUser("alice", "user");
  std::string code = CodeFor(alice);
  EXPECT_EQ(Login(code).status, 200);
  Reply again = Login(code);
  EXPECT_EQ(again.status, 401);
  EXPECT_NE(again.Json().value("message", "").find("already used"),
            std::string::npos)
      << again.body;
  EXPECT_EQ(again.headers.count("set-cookie"), 0u);
  Reply guessed = Login(std::string(64, '0'));
  EXPECT_EQ(guessed.status, 401);
  EXPECT_EQ(guessed.Json()["error"], "bad_code");
  // A forged cookie is no session.
  EXPECT_EQ(Get("/api/me", "__Host-mez_session=" + std::string(64, 'a')).status,
            401);
}

// The code's identity is the call's credential: users and admins get one,
// a node or a removed user's token does not, nor a call without one.
TEST_F(WebTest, OnlyUsersAndAdminsGetCodes) {
  auto stub = mezite::v1::Web::NewStub(server_->Channel());
  auto ask = [&](const std::string& token) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    mezite::v1::CreateSignInCodeResponse resp;
    grpc::Status st = stub->CreateSignInCode(
        &ctx, mezite::v1::CreateSignInCodeRequest(), &resp);
    return std::make_pair(st.error_code(), resp.code());
  };
  std::string alice = server_->Token(auth::Role::kUser, "alice");
  auto ok = ask(alice);
  EXPECT_EQ(ok.first, grpc::StatusCode::OK);
  EXPECT_EQ(ok.second.size(), 64u);
  EXPECT_EQ(ask(server_->Token(auth::Role::kNode, "web-01")).first,
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ask("").first, grpc::StatusCode::UNAUTHENTICATED);
  auto r = ::mez::testing::Run(std::string(MEZCTL_PATH) + " --identity " +
                               ShellQuote(dir_.File("data/admin.identity")) +
                               " users rm alice 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(ask(alice).first, grpc::StatusCode::UNAUTHENTICATED);
}

// A code issued before its user was removed opens no session.
TEST_F(WebTest, CodeOfARemovedUserIsRefused) {
  std::string alice = AddUser("alice", "user");
  std::string code = CodeFor(alice);
  auto r = ::mez::testing::Run(std::string(MEZCTL_PATH) + " --identity " +
                               ShellQuote(dir_.File("data/admin.identity")) +
                               " users rm alice 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  Reply got = Login(code);
  EXPECT_EQ(got.status, 401) << got.body;
  EXPECT_EQ(got.headers.count("set-cookie"), 0u);
}

TEST_F(WebTest, RemovedUsersCookieStopsAtOnce) {
  std::string alice = AddUser("alice", "user");
  std::string a = SignIn(alice, nullptr);
  ASSERT_EQ(Get("/api/me", a).status, 200);
  auto r = ::mez::testing::Run(std::string(MEZCTL_PATH) + " --identity " +
                               ShellQuote(dir_.File("data/admin.identity")) +
                               " users rm alice 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(Get("/api/me", a).status, 401);
  EXPECT_EQ(Get("/api/sessions", a).status, 401);
  // Added again under the same name: the old cookie stays dead.
  AddUser("alice", "user");
  EXPECT_EQ(Get("/api/me", a).status, 401);
}

TEST_F(WebTest, LogoutNeedsCsrfTokenAndOrigin) {
  std::string alice = AddUser("alice", "user");
  std::string csrf;
  std::string a = SignIn(alice, &csrf);
  Req out;
  out.method = "POST";
  out.path = "/api/logout";
  out.headers["Cookie"] = a;
  out.headers["Origin"] = origin_;
  Reply no_token = Send(out);
  EXPECT_EQ(no_token.status, 403);
  EXPECT_EQ(no_token.Json()["error"], "bad_csrf");
  out.headers["X-CSRF-Token"] = std::string(64, 'f');
  EXPECT_EQ(Send(out).status, 403);
  out.headers["X-CSRF-Token"] = csrf;
  out.headers["Origin"] = "https://evil.example";
  Reply foreign = Send(out);
  EXPECT_EQ(foreign.status, 403);
  EXPECT_EQ(foreign.Json()["error"], "bad_origin");
  ASSERT_EQ(Get("/api/me", a).status, 200);  // Still signed in.
  out.headers["Origin"] = origin_;
  Reply ok = Send(out);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.headers["set-cookie"].find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(Get("/api/me", a).status, 401);
  // A login from a foreign origin is refused before the code is used.
  std::string code = CodeFor(alice);
  Req evil;
  evil.method = "POST";
  evil.path = "/api/login";
  evil.body = json{{"code", code}}.dump();
  evil.headers["Origin"] = "https://evil.example";
  EXPECT_EQ(Send(evil).status, 403);
  EXPECT_EQ(Login(code).status, 200);
}

TEST_F(WebTest, SigningInAgainEndsTheBrowsersPreviousSession) {
  std::string alice = AddUser("alice", "user");
  std::string first = SignIn(alice, nullptr);
  Req again;
  again.method = "POST";
  again.path = "/api/login";
  again.body = json{{"code", CodeFor(alice)}}.dump();
  again.headers["Origin"] = origin_;
  again.headers["Cookie"] = first;
  Reply r = Send(again);
  ASSERT_EQ(r.status, 200) << r.body;
  std::string second =
      r.headers["set-cookie"].substr(0, r.headers["set-cookie"].find(';'));
  EXPECT_NE(second, first);
  EXPECT_EQ(Get("/api/me", first).status, 401);
  EXPECT_EQ(Get("/api/me", second).status, 200);
}

TEST_F(WebTest, OversizedRequestsAreRefusedAndTheServerCarriesOn) {
  Req big_header;
  big_header.path = "/api/me";
  big_header.headers["X-Padding"] = std::string(16 << 10, 'x');
  Reply h = Send(big_header);
  EXPECT_EQ(h.status, 431) << h.body;
  Req big_body;
  big_body.method = "POST";
  big_body.path = "/api/login";
  big_body.headers["Origin"] = origin_;
  // A body past the 16 KiB limit is refused on its Content-Length, before
  // any of it is read (read, a body of '{'s would be a 400).
  big_body.announce = 1 << 30;
  Reply b = Send(big_body);
  EXPECT_EQ(b.status, 413) << b.body;
  Reply page = Get("/", "");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("/app.js"), std::string::npos);
  EXPECT_TRUE(server_->running());
  // And it stops cleanly on SIGTERM, the web listener with it.
  EXPECT_EQ(server_->Stop(), 0) << server_->log();
}

// Each test starts mezrecd with web options of its own. Behind a
// TLS-terminating proxy: plain HTTP on loopback, links and the origin from
// --web-public-url, the cookie still Secure, X-Forwarded-For believed from
// the trusted proxy only.
class WebOptionsTest : public WebTest {
 protected:
  void SetUp() override {}
  // The `remote` of the newest web.login audit event.
  std::string LastLoginRemote() {
    auto r = ::mez::testing::Run(
        std::string(MEZCTL_PATH) + " --identity " +
        ShellQuote(dir_.File("data/admin.identity")) +
        " audit ls --type=web.login --limit=1 --format=jsonl 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    json row = json::parse(r.out, nullptr, false);
    if (!row.is_object()) return "unparsable: " + r.out;
    json d = row["details"];
    if (d.is_string()) d = json::parse(d.get<std::string>(), nullptr, false);
    return d.is_object() ? d.value("remote", "") : "no details: " + r.out;
  }
  std::string LoginVia(const std::string& xff) {
    std::string code = CodeFor(dir_.File("data/admin.identity"));
    Req r;
    r.method = "POST";
    r.path = "/api/login";
    r.body = json{{"code", code}}.dump();
    r.headers["Origin"] = origin_;
    r.headers["X-Forwarded-For"] = xff;
    Reply got = Send(r);
    EXPECT_EQ(got.status, 200) << got.body;
    return got.headers["set-cookie"];
  }
};

TEST_F(WebOptionsTest, BehindProxyTrustedForwardedForIsBelieved) {
  StartWith({"--web-insecure-http", "--web-public-url", "https://mez.example",
             "--web-trusted-proxies", "127.0.0.1"},
            "https://mez.example");
  ASSERT_FALSE(tls_);
  std::string cookie = LoginVia("198.51.100.1, 203.0.113.7");
  EXPECT_NE(cookie.find("Secure"), std::string::npos) << cookie;
  EXPECT_EQ(LastLoginRemote(), "203.0.113.7");
  // The page's own origin is the proxy's, not the listener's.
  Req wrong;
  wrong.method = "POST";
  wrong.path = "/api/login";
  wrong.body = "{}";
  wrong.headers["Origin"] = "http://127.0.0.1:" + std::to_string(port_);
  EXPECT_EQ(Send(wrong).status, 403);
}

TEST_F(WebOptionsTest, BehindProxyOtherPeersForwardedForIsIgnored) {
  StartWith({"--web-insecure-http", "--web-public-url", "https://mez.example",
             "--web-trusted-proxies", "192.0.2.10"},
            "https://mez.example");
  LoginVia("203.0.113.7");
  EXPECT_EQ(LastLoginRemote(), "127.0.0.1");
}

// An operator's certificate and key replace the cluster's: the client
// trusts only that certificate and still gets through.
TEST_F(WebOptionsTest, OperatorsCertificateIsServed) {
  std::string cert = dir_.File("web.crt"), key = dir_.File("web.key");
  auto made = ::mez::testing::Run(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1 "
      "-keyout " +
      ShellQuote(key) + " -out " + ShellQuote(cert) + " 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.out;
  StartWith({"--web-cert", cert, "--web-key", key});
  ASSERT_TRUE(tls_);
  Reply cluster_ca = Get("/", "");  // Trusting the cluster CA only: refused.
  EXPECT_EQ(cluster_ca.status, 0) << cluster_ca.body;
  EXPECT_NE(cluster_ca.body.find("certificate verify failed"),
            std::string::npos)
      << cluster_ca.body;
  auto pem = ::mez::testing::Run("cat " + ShellQuote(cert));
  ca_pem_ = pem.out;
  Reply page = Get("/", "");
  EXPECT_EQ(page.status, 200) << page.body;
  std::string c = SignIn(dir_.File("data/admin.identity"), nullptr);
  EXPECT_EQ(Get("/api/me", c).status, 200);
}

// With --web-sign-in-code-ttl 1s a code outlives its second: the test
// waits for the wall clock to pass the code's expiry (a fixed instant, not
// an event), then the code is refused as expired.
TEST_F(WebOptionsTest, ExpiredCodeIsRefused) {
  StartWith({"--web-sign-in-code-ttl", "1s"});
  std::string alice = server_->Token(auth::Role::kUser, "alice");
  auto stub = mezite::v1::Web::NewStub(server_->Channel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + alice);
  mezite::v1::CreateSignInCodeResponse resp;
  ASSERT_TRUE(
      stub->CreateSignInCode(&ctx, mezite::v1::CreateSignInCodeRequest(), &resp)
          .ok());
  EXPECT_LE(resp.expires_at(), time(nullptr) + 1);
  while (time(nullptr) <= resp.expires_at()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Reply late = Login(resp.code());
  EXPECT_EQ(late.status, 401) << late.body;
  EXPECT_NE(late.Json().value("message", "").find("expired"), std::string::npos)
      << late.body;
}

TEST(WebConfigE2eTest, MshWebSaysWhenThereIsNoWebUi) {
  TempDir dir;
  Mezrecd server(dir.File("data"));
  ASSERT_TRUE(server.Start()) << server.log();
  auto r = ::mez::testing::Run(
      "MEZ_IDENTITY= " + std::string(MSH_PATH) + " --identity " +
      ShellQuote(dir.File("data/admin.identity")) + " web 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("serves no web UI"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--web-listen"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("/login#"), std::string::npos) << r.out;
}

TEST(WebConfigE2eTest, InsecureHttpRefusedOffLoopback) {
  TempDir dir;
  Mezrecd server(dir.File("data"),
                 {"--web-listen", "0.0.0.0:0", "--web-insecure-http",
                  "--web-public-url", "https://mez.example"});
  EXPECT_FALSE(server.Start());  // It exited instead of serving.
  EXPECT_FALSE(server.running());
  EXPECT_NE(server.log().find("allowed only on a loopback address"),
            std::string::npos)
      << server.log();
}

// An empty certificate file (a renewal not done yet) must not turn the
// web UI into plain HTTP on a public address: mezrecd refuses to start.
TEST(WebConfigE2eTest, EmptyCertificateFileRefusesToStart) {
  TempDir dir;
  std::string empty = dir.File("empty.pem");
  WriteFileOrDie(empty, "");
  Mezrecd server(dir.File("data"), {"--web-listen", "127.0.0.1:0", "--web-cert",
                                    empty, "--web-key", empty});
  EXPECT_FALSE(server.Start());
  EXPECT_FALSE(server.running());
  EXPECT_NE(server.log().find("certificate or key is empty"), std::string::npos)
      << server.log();
}

}  // namespace
}  // namespace mez::testing
