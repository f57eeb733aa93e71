// WebApi's answers that need no catalog: the security headers, the origin
// check before anything else, sign-in with a bad code, routes. The flows
// over a real mezrecd are in tests/web_e2e_test.cc.
#include "libmez/web/api.h"

#include <gtest/gtest.h>

#include "libmez/web/web_config.h"

namespace mez::web {
namespace {

std::string HeaderOf(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

class ApiTest : public ::testing::Test {
 protected:
  ApiTest() : store_(&clock_, 60'000'000) {
    WebApiOptions o;
    o.sign_in = &store_;
    o.clock = &clock_;
    o.public_url = "https://mez.example:8443";
    api_ = std::make_unique<WebApi>(o);
  }
  HttpRequest Req(const std::string& method, const std::string& target) {
    HttpRequest r;
    r.method = method;
    r.target = target;
    r.peer_ip = "127.0.0.1";
    return r;
  }
  FakeClock clock_;
  SignInStore store_;
  std::unique_ptr<WebApi> api_;
};

TEST_F(ApiTest, EveryAnswerCarriesTheSecurityHeaders) {
  for (const char* path : {"/", "/app.js", "/nope", "/api/me"}) {
    HttpResponse r = api_->Handle(Req("GET", path));
    std::string csp = HeaderOf(r, "Content-Security-Policy");
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << path;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << path;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << path;
    EXPECT_EQ(HeaderOf(r, "X-Content-Type-Options"), "nosniff") << path;
  }
  HttpResponse api = api_->Handle(Req("GET", "/api/me"));
  EXPECT_EQ(api.status, 401);
  EXPECT_EQ(HeaderOf(api, "Cache-Control"), "no-store");
  // No inline script in the page: its only script is /app.js.
  HttpResponse page = api_->Handle(Req("GET", "/login"));
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<script src=\"/app.js\""), std::string::npos);
  EXPECT_EQ(page.body.find("<script>"), std::string::npos);
  EXPECT_EQ(page.body.find("style="), std::string::npos);
}

TEST_F(ApiTest, StateChangesNeedTheOrigin) {
  HttpRequest r = Req("POST", "/api/login");
  r.body = "{\"code\":\"x\"}";
  EXPECT_EQ(api_->Handle(r).status, 403);  // No Origin.
  r.headers["origin"] = "https://evil.example";
  HttpResponse foreign = api_->Handle(r);
  EXPECT_EQ(foreign.status, 403);
  EXPECT_NE(foreign.body.find("bad_origin"), std::string::npos);
  r.headers["origin"] = "https://mez.example:8443";
  HttpResponse ok_origin = api_->Handle(r);
  EXPECT_EQ(ok_origin.status, 401);  // Past the origin check: a bad code.
  EXPECT_NE(ok_origin.body.find("unknown sign-in code"), std::string::npos);
  EXPECT_EQ(HeaderOf(ok_origin, "Set-Cookie"), "");
}

TEST_F(ApiTest, NoOriginIsAcceptedBeforeThePublicUrlIsKnown) {
  WebApiOptions o;
  o.sign_in = &store_;
  o.clock = &clock_;
  WebApi api(o);
  HttpRequest r = Req("POST", "/api/login");
  r.headers["origin"] = "";
  EXPECT_EQ(api.Handle(r).status, 403);
  api.SetPublicUrl("https://127.0.0.1:4443");
  r.headers["origin"] = "https://127.0.0.1:4443";
  EXPECT_EQ(api.Handle(r).status, 400);  // Past the check: no JSON body.
}

TEST_F(ApiTest, MalformedLoginBodiesAreRefused) {
  for (const char* body :
       {"", "{", "[]", "{\"code\":1}", "{\"nocode\":\"\"}"}) {
    HttpRequest r = Req("POST", "/api/login");
    r.headers["origin"] = "https://mez.example:8443";
    r.body = body;
    EXPECT_EQ(api_->Handle(r).status, 400) << body;
  }
}

TEST_F(ApiTest, MethodsAndRoutes) {
  EXPECT_EQ(api_->Handle(Req("GET", "/api/login")).status, 405);
  EXPECT_EQ(api_->Handle(Req("GET", "/api/nothing")).status, 404);
  EXPECT_EQ(api_->Handle(Req("GET", "/../etc/passwd")).status, 404);
  EXPECT_EQ(api_->Handle(Req("GET", "/api/sessions")).status, 401);
  EXPECT_EQ(api_->Handle(Req("GET", "/api/sessions/abc")).status, 401);
}

// Found by web_api_fuzz: a path that is not UTF-8, quoted in the error,
// threw from the JSON encoder instead of answering.
TEST_F(ApiTest, InvalidUtf8InThePathIsAnsweredNotThrown) {
  HttpResponse r = api_->Handle(Req("GET", "/x\xff\xfe"));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("not_found"), std::string::npos);
  HttpResponse a = api_->Handle(Req("GET", "/api/\xc3"));
  EXPECT_EQ(a.status, 404);
}

TEST(WebConfigTest, InsecureHttpOnlyOnLoopback) {
  WebConfig c;
  ASSERT_TRUE(SetWebOption(&c, "listen", "10.1.2.3:8080", "web.listen").ok());
  ASSERT_TRUE(SetWebOption(&c, "insecureHttp", "true", "x").ok());
  ASSERT_TRUE(SetWebOption(&c, "publicUrl", "https://mez.example/", "x").ok());
  Status s = ValidateWebConfig(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("loopback"), std::string::npos);
  c.listen = "127.0.0.1:8080";
  EXPECT_TRUE(ValidateWebConfig(c).ok());
  EXPECT_EQ(c.public_url, "https://mez.example");
  c.public_url = "http://mez.example";
  EXPECT_FALSE(ValidateWebConfig(c).ok());  // Users must see https.
}

TEST(WebConfigTest, BadValuesNameTheirSource) {
  WebConfig c;
  Status s =
      SetWebOption(&c, "signInCodeTtl", "2m", "MEZITE_WEB_SIGN_IN_CODE_TTL");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("MEZITE_WEB_SIGN_IN_CODE_TTL"), std::string::npos);
  EXPECT_FALSE(
      SetWebOption(&c, "trustedProxies", "10.0.0.1,evil host", "x").ok());
  EXPECT_FALSE(SetWebOption(&c, "bogus", "1", "web.bogus").ok());
  c.listen = "127.0.0.1:1";
  c.cert_file = "/x.pem";
  EXPECT_FALSE(ValidateWebConfig(c).ok());  // A cert without its key.
}

}  // namespace
}  // namespace mez::web
