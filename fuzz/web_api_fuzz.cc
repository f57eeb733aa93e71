// The web API's handling of untrusted requests (libmez/web/api.h): the
// routes, the origin and CSRF checks, the login body, cookies, and, for a
// signed-in caller (a session opened at start over a real SQLite catalog),
// the query string, filters, times and cursors of /api/sessions.
//
// Input: "METHOD\nTARGET\n" then "name: value" header lines, an empty
// line, and the body. The first byte's low bit adds the session's cookie
// and CSRF token.
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "libmez/catalog/catalog.h"
#include "libmez/cluster/cluster.h"
#include "libmez/util/status.h"
#include "libmez/web/api.h"

namespace {

struct World {
  std::unique_ptr<mez::catalog::Catalog> catalog;
  std::unique_ptr<mez::cluster::Cluster> cluster;
  std::unique_ptr<mez::web::SignInStore> store;
  std::unique_ptr<mez::web::WebApi> api;
  std::string cookie;
  std::string csrf;
};

World* Make() {
  auto* w = new World;
  char tmpl[] = "/tmp/mez_web_fuzz.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) abort();
  auto cat = mez::catalog::OpenSqliteCatalog(std::string(tmpl) + "/c.db");
  if (!cat.ok()) abort();
  w->catalog = std::move(cat).value();
  mez::catalog::User alice;
  alice.name = "alice";
  alice.role = "user";
  if (!w->catalog->CreateUser(alice).ok()) abort();
  auto row = w->catalog->GetUser("alice");
  if (!row.ok()) abort();
  mez::catalog::Session s;
  s.id = "s1";
  s.user = "alice";
  s.node = "n1";
  s.kind = "shell";
  s.started_us = 1'700'000'000'000'000;
  s.format = "asciicast-v2";
  if (!w->catalog->CreateSession(s).ok()) abort();
  mez::cluster::ClusterOptions co;
  co.catalog = w->catalog.get();
  w->cluster = std::make_unique<mez::cluster::Cluster>(std::move(co));
  w->store =
      std::make_unique<mez::web::SignInStore>(mez::RealClock(), 60'000'000);
  mez::web::WebApiOptions o;
  o.catalog = w->catalog.get();
  o.cluster = w->cluster.get();
  o.sign_in = w->store.get();
  o.public_url = "https://f.example";
  o.trusted_proxies = {"127.0.0.1"};
  w->api = std::make_unique<mez::web::WebApi>(o);
  mez::auth::Claims c;
  c.subject = "alice";
  c.role = mez::auth::Role::kUser;
  c.uid = row->id;
  auto code = w->store->IssueCode(c);
  if (!code.ok()) abort();
  auto got = w->store->Exchange(code->code);
  if (!got.ok()) abort();
  w->cookie = std::string(mez::web::kCookieName) + "=" + got->first;
  w->csrf = got->second.csrf;
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = Make();
  if (size == 0) return 0;
  std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  mez::web::HttpRequest r;
  r.peer_ip = "127.0.0.1";
  size_t pos = 0;
  auto line = [&]() {
    size_t nl = in.find('\n', pos);
    if (nl == std::string::npos) nl = in.size();
    std::string l = in.substr(pos, nl - pos);
    pos = nl < in.size() ? nl + 1 : in.size();
    return l;
  };
  r.method = line();
  r.target = line();
  for (std::string h = line(); !h.empty(); h = line()) {
    size_t colon = h.find(':');
    if (colon == std::string::npos) continue;
    std::string v = h.substr(colon + 1);
    if (!v.empty() && v[0] == ' ') v.erase(0, 1);
    r.headers[h.substr(0, colon)] = v;
  }
  r.body = in.substr(pos);
  if (data[0] & 1) {
    r.headers["cookie"] = world->cookie;
    r.headers["x-csrf-token"] = world->csrf;
  }
  mez::web::HttpResponse out = world->api->Handle(r);
  if (out.status < 200 || out.status > 599) abort();
  bool csp = false;
  for (const auto& [k, v] : out.headers) csp |= k == "Content-Security-Policy";
  if (!csp) abort();
  // Nobody but alice's sessions may ever show.
  if (out.body.find("\"user\":\"bob\"") != std::string::npos) abort();
  return 0;
}
