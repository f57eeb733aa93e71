// The web UI's HTTP handlers, independent of the transport
// (http_server.h feeds them parsed, size-bounded requests): the static
// page, sign-in by code, sign-out, and the JSON API over the cluster
// domain's RBAC (docs/web.md lists the routes and answers).
//
// Every answer carries the security headers (a strict CSP without inline
// script, nosniff, frame-ancestors 'none', no-referrer); API answers are
// no-store. Every request that changes state must come from the public
// URL's origin (Origin header), and, once signed in, carry the session's
// CSRF token in X-CSRF-Token. Each signed-in request checks the identity
// against the catalog, so a removed user's cookie stops working at once.
//
// Thread-safe (its parts are).
#ifndef MEZ_WEB_API_H_
#define MEZ_WEB_API_H_

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "libmez/catalog/catalog.h"
#include "libmez/cluster/cluster.h"
#include "libmez/util/clock.h"
#include "libmez/web/sign_in.h"

namespace mez::web {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // "/api/sessions?user=alice"
  std::map<std::string, std::string> headers;  // Names in lowercase.
  std::string body;
  std::string peer_ip;  // The TCP peer.
};

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The session cookie's name: __Host- makes browsers insist on Secure,
// Path=/ and no Domain.
inline constexpr char kCookieName[] = "__Host-mez_session";

struct WebApiOptions {
  catalog::Catalog* catalog = nullptr;  // required
  cluster::Cluster* cluster = nullptr;  // required
  SignInStore* sign_in = nullptr;       // required
  Clock* clock = nullptr;               // nullptr: RealClock()
  // The public URL (scheme://host[:port], no path): its origin is the
  // only one state-changing requests are taken from.
  std::string public_url;
  // Peers whose X-Forwarded-For is believed (for the audit log).
  std::vector<std::string> trusted_proxies;
};

class WebApi {
 public:
  explicit WebApi(WebApiOptions options);
  HttpResponse Handle(const HttpRequest& request);
  // Sets the public URL when it was not known at construction (the
  // listener's port was 0); until then, state changes are refused.
  void SetPublicUrl(const std::string& url);

 private:
  struct Signed {
    WebSession session;
    std::string id;
  };
  // The signed-in caller of `r`, its role as the catalog has it now; or
  // the 401 to send.
  Result<Signed> SignedIn(const HttpRequest& r);
  HttpResponse Login(const HttpRequest& r);
  HttpResponse Logout(const HttpRequest& r);
  HttpResponse Me(const HttpRequest& r);
  HttpResponse Sessions(const HttpRequest& r, const std::string& query);
  HttpResponse Session(const HttpRequest& r, const std::string& id);
  // Where the request came from: the peer, or X-Forwarded-For's last hop
  // when the peer is a trusted proxy.
  std::string ClientIp(const HttpRequest& r) const;

  std::string Origin();

  WebApiOptions opt_;
  std::mutex mu_;
  std::string origin_;  // Guarded by mu_.
};

// The static assets (assets.cc): the page and its one script.
const std::string& IndexHtml();
const std::string& AppJs();

}  // namespace mez::web

#endif  // MEZ_WEB_API_H_
