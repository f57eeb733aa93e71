#include "libmez/web/api.h"

#include <openssl/crypto.h>
#include <time.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "libmez/util/log.h"

namespace mez::web {
namespace {

using nlohmann::json;

constexpr int kDefaultLimit = 50;
constexpr int kMaxLimit = 500;
// Rows asked for beyond a page, for the ones a cursor skips (sessions
// that started in the same microsecond as the cursor's).
constexpr int kCursorSlack = 64;

void SecurityHeaders(HttpResponse* r) {
  r->headers.emplace_back(
      "Content-Security-Policy",
      "default-src 'none'; script-src 'self'; style-src 'self'; "
      "img-src 'self'; connect-src 'self'; base-uri 'none'; "
      "form-action 'self'; frame-ancestors 'none'");
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("X-Frame-Options", "DENY");
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
  r->headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
  r->headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
}

HttpResponse Json(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  // Messages quote what the client sent, which need not be UTF-8: invalid
  // bytes become U+FFFD rather than an exception.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse Error(int status, const std::string& code,
                   const std::string& message) {
  return Json(status, json{{"error", code}, {"message", message}});
}

HttpResponse FromStatus(const Status& s) {
  switch (s.code()) {
    case Code::kInvalidArgument:
    case Code::kOutOfRange:
      return Error(400, "bad_request", s.message());
    case Code::kUnauthenticated:
      return Error(401, "unauthenticated", s.message());
    case Code::kPermissionDenied:
      return Error(403, "forbidden", s.message());
    case Code::kNotFound:
      return Error(404, "not_found", s.message());
    case Code::kUnavailable:
      return Error(503, "unavailable", s.message());
    default:
      MEZ_LOG(kWarning) << "web: " << s.message();
      return Error(500, "internal", "internal error (see mezrecd's log)");
  }
}

std::string IsoUtc(int64_t us) {
  if (us == 0) return "";
  time_t t = us / 1'000'000;
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Unix seconds ("1700000000") or "YYYY-MM-DDTHH:MM:SSZ", as microseconds.
Result<int64_t> ParseTime(const std::string& key, const std::string& v) {
  if (!v.empty() && v.size() <= 12 &&
      std::all_of(v.begin(), v.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    return std::stoll(v) * 1'000'000;
  }
  struct tm tm = {};
  const char* end = strptime(v.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') {
    return InvalidArgument(key + ": '" + v +
                           "' is neither Unix seconds nor "
                           "YYYY-MM-DDTHH:MM:SSZ");
  }
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000;
}

int FromHex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> UrlDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size() || FromHex(s[i + 1]) < 0 || FromHex(s[i + 2]) < 0) {
        return InvalidArgument("bad percent-encoding in the query");
      }
      out += static_cast<char>(FromHex(s[i + 1]) * 16 + FromHex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> ParseQuery(const std::string& q) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < q.size()) {
    size_t amp = q.find('&', pos);
    if (amp == std::string::npos) amp = q.size();
    std::string item = q.substr(pos, amp - pos);
    pos = amp + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    MEZ_ASSIGN_OR_RETURN(std::string k, UrlDecode(item.substr(0, eq)));
    std::string v;
    if (eq != std::string::npos) {
      MEZ_ASSIGN_OR_RETURN(v, UrlDecode(item.substr(eq + 1)));
    }
    out[k] = v;
  }
  return out;
}

std::string Header(const HttpRequest& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

std::string Cookie(const HttpRequest& r, const std::string& name) {
  std::string all = Header(r, "cookie");
  size_t pos = 0;
  while (pos < all.size()) {
    size_t semi = all.find(';', pos);
    if (semi == std::string::npos) semi = all.size();
    std::string item = all.substr(pos, semi - pos);
    pos = semi + 1;
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    if (item.rfind(name + "=", 0) == 0) return item.substr(name.size() + 1);
  }
  return "";
}

bool SameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && !a.empty() &&
         CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

json SessionJson(const catalog::Session& s) {
  return json{{"id", s.id},
              {"connection_id", s.connection_id},
              {"user", s.user},
              {"node", s.node},
              {"login", s.login},
              {"kind", s.kind},
              {"command", s.command},
              {"started", IsoUtc(s.started_us)},
              {"ended", IsoUtc(s.ended_us)},
              {"started_us", s.started_us},
              {"ended_us", s.ended_us},
              {"bytes", s.bytes},
              {"status", std::string(catalog::SessionStatusName(s.status))},
              {"format", s.format},
              {"encrypted", s.encrypted}};
}

}  // namespace

WebApi::WebApi(WebApiOptions options) : opt_(std::move(options)) {
  if (opt_.clock == nullptr) opt_.clock = RealClock();
  SetPublicUrl(opt_.public_url);
}

void WebApi::SetPublicUrl(const std::string& url) {
  // scheme://authority of the public URL.
  size_t scheme_end = url.find("://");
  std::string origin;
  if (scheme_end != std::string::npos) {
    origin = url.substr(0, url.find('/', scheme_end + 3));
  }
  std::lock_guard<std::mutex> lock(mu_);
  origin_ = origin;
}

std::string WebApi::Origin() {
  std::lock_guard<std::mutex> lock(mu_);
  return origin_;
}

std::string WebApi::ClientIp(const HttpRequest& r) const {
  const auto& tp = opt_.trusted_proxies;
  if (std::find(tp.begin(), tp.end(), r.peer_ip) == tp.end()) {
    return r.peer_ip;
  }
  std::string xff = Header(r, "x-forwarded-for");
  if (xff.empty()) return r.peer_ip;
  // The hop the trusted proxy added: the last one. Anything but an IP
  // address there is the proxy's confusion; the peer is used instead.
  std::string last = xff.substr(xff.rfind(',') + 1);
  while (!last.empty() && last.front() == ' ') last.erase(0, 1);
  while (!last.empty() && last.back() == ' ') last.pop_back();
  bool ip = !last.empty() && last.size() <= 45;
  for (char c : last) {
    ip = ip && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                (c >= 'A' && c <= 'F') || c == '.' || c == ':');
  }
  return ip ? last : r.peer_ip;
}

Result<WebApi::Signed> WebApi::SignedIn(const HttpRequest& r) {
  std::string id = Cookie(r, kCookieName);
  if (id.empty()) {
    return Status(Code::kUnauthenticated,
                  "not signed in: run 'msh web' and open the link it prints");
  }
  MEZ_ASSIGN_OR_RETURN(WebSession s, opt_.sign_in->Find(id));
  // The catalog's word, now: a removed user (or a name removed and added
  // again) is signed out at once; a changed role applies at once.
  auto role = cluster::CheckIdentity(opt_.catalog, s.caller.role,
                                     s.caller.subject, s.caller.uid);
  if (!role.ok()) {
    if (role.status().code() == Code::kUnauthenticated) {
      opt_.sign_in->End(id);
    }
    return role.status();
  }
  s.caller.role = *role;
  return Signed{std::move(s), std::move(id)};
}

HttpResponse WebApi::Handle(const HttpRequest& r) {
  std::string path = r.target.substr(0, r.target.find('?'));
  std::string query = r.target.find('?') == std::string::npos
                          ? ""
                          : r.target.substr(r.target.find('?') + 1);
  HttpResponse out;
  bool state_change = r.method != "GET" && r.method != "HEAD";
  std::string origin = Origin();
  if (state_change && (origin.empty() || Header(r, "origin") != origin)) {
    // Cross-site (or origin-less) state changes are refused before
    // anything else is looked at.
    out = Error(403, "bad_origin",
                "a request that changes state must come from " + origin);
  } else if (path == "/api/login") {
    out = r.method == "POST" ? Login(r)
                             : Error(405, "method", "use POST /api/login");
  } else if (path == "/api/logout") {
    out = r.method == "POST" ? Logout(r)
                             : Error(405, "method", "use POST /api/logout");
  } else if (path == "/api/me") {
    out = r.method == "GET" ? Me(r) : Error(405, "method", "use GET");
  } else if (path == "/api/sessions") {
    out = r.method == "GET" ? Sessions(r, query)
                            : Error(405, "method", "use GET");
  } else if (path.rfind("/api/sessions/", 0) == 0) {
    out = r.method == "GET" ? Session(r, path.substr(14))
                            : Error(405, "method", "use GET");
  } else if (path.rfind("/api/", 0) == 0) {
    out = Error(404, "not_found", "no such API: " + path);
  } else if (r.method != "GET" && r.method != "HEAD") {
    out = Error(405, "method", "use GET");
  } else if (path == "/app.js") {
    out.content_type = "text/javascript; charset=utf-8";
    out.body = AppJs();
    out.headers.emplace_back("Cache-Control", "no-cache");
  } else if (path == "/" || path == "/login" || path == "/sessions") {
    out.content_type = "text/html; charset=utf-8";
    out.body = IndexHtml();
    out.headers.emplace_back("Cache-Control", "no-cache");
  } else {
    out = Error(404, "not_found", "no such page: " + path);
  }
  SecurityHeaders(&out);
  return out;
}

HttpResponse WebApi::Login(const HttpRequest& r) {
  json body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("code") ||
      !body["code"].is_string()) {
    return Error(400, "bad_request", "expected {\"code\": \"...\"}");
  }
  auto got = opt_.sign_in->Exchange(body["code"].get<std::string>());
  if (!got.ok()) return Error(401, "bad_code", got.status().message());
  // A session this browser still held is replaced, not left to expire.
  std::string previous = Cookie(r, kCookieName);
  if (!previous.empty()) opt_.sign_in->End(previous);
  const auto& [id, s] = *got;
  // The identity may have been removed since the code was issued.
  auto role = cluster::CheckIdentity(opt_.catalog, s.caller.role,
                                     s.caller.subject, s.caller.uid);
  if (!role.ok()) {
    opt_.sign_in->End(id);
    return FromStatus(role.status());
  }
  opt_.cluster->Audit("web.login", s.caller.subject, "",
                      json{{"remote", ClientIp(r)}}.dump(
                          -1, ' ', false, json::error_handler_t::replace));
  int64_t max_age = std::max<int64_t>(
      0, (s.expires_us - opt_.clock->WallMicros()) / 1'000'000);
  HttpResponse out =
      Json(200, json{{"user", s.caller.subject},
                     {"role", std::string(auth::RoleName(*role))},
                     {"csrf", s.csrf},
                     {"expires", IsoUtc(s.expires_us)}});
  out.headers.emplace_back(
      "Set-Cookie",
      std::string(kCookieName) + "=" + id +
          "; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=" +
          std::to_string(max_age));
  return out;
}

HttpResponse WebApi::Logout(const HttpRequest& r) {
  auto who = SignedIn(r);
  if (!who.ok()) return FromStatus(who.status());
  if (!SameSecret(Header(r, "x-csrf-token"), who->session.csrf)) {
    return Error(403, "bad_csrf",
                 "missing or wrong X-CSRF-Token (reload the page)");
  }
  opt_.sign_in->End(who->id);
  HttpResponse out = Json(200, json{{"signed_out", true}});
  out.headers.emplace_back("Set-Cookie",
                           std::string(kCookieName) +
                               "=; Path=/; Secure; HttpOnly; SameSite=Strict; "
                               "Max-Age=0");
  return out;
}

HttpResponse WebApi::Me(const HttpRequest& r) {
  auto who = SignedIn(r);
  if (!who.ok()) return FromStatus(who.status());
  const WebSession& s = who->session;
  return Json(200, json{{"user", s.caller.subject},
                        {"role", std::string(auth::RoleName(s.caller.role))},
                        {"logins", s.caller.logins},
                        {"csrf", s.csrf},
                        {"expires", IsoUtc(s.expires_us)}});
}

HttpResponse WebApi::Sessions(const HttpRequest& r, const std::string& q) {
  auto who = SignedIn(r);
  if (!who.ok()) return FromStatus(who.status());
  auto params = ParseQuery(q);
  if (!params.ok()) return FromStatus(params.status());
  catalog::SessionFilter f;
  int limit = kDefaultLimit;
  int64_t cursor_us = 0;
  std::string cursor_id;
  for (const auto& [k, v] : *params) {
    if (v.size() > 256) return Error(400, "bad_request", k + ": too long");
    if (k == "user") {
      f.user = v;
    } else if (k == "node") {
      f.node = v;
    } else if (k == "kind") {
      if (v != "shell" && v != "exec" && v != "tcpip" && !v.empty()) {
        return Error(400, "bad_request", "kind: shell, exec or tcpip");
      }
      f.kind = v;
    } else if (k == "status") {
      if (v.empty()) continue;
      auto st = catalog::ParseSessionStatus(v);
      if (!st.ok()) return FromStatus(st.status());
      f.status = *st;
    } else if (k == "since" || k == "until") {
      if (v.empty()) continue;
      auto t = ParseTime(k, v);
      if (!t.ok()) return FromStatus(t.status());
      (k == "since" ? f.since_us : f.until_us) = *t;
    } else if (k == "limit") {
      if (v.empty() || v.size() > 4 ||
          !std::all_of(v.begin(), v.end(),
                       [](char c) { return c >= '0' && c <= '9'; })) {
        return Error(400, "bad_request", "limit: a number 1-500");
      }
      limit = std::clamp(std::stoi(v), 1, kMaxLimit);
    } else if (k == "cursor") {
      // "STARTED_US.ID" of the last row of the previous page.
      size_t dot = v.find('.');
      if (dot == std::string::npos || dot == 0 || dot > 18 ||
          !std::all_of(v.begin(), v.begin() + dot,
                       [](char c) { return c >= '0' && c <= '9'; })) {
        return Error(400, "bad_request", "cursor: as a previous answer gave");
      }
      cursor_us = std::stoll(v.substr(0, dot));
      cursor_id = v.substr(dot + 1);
    } else {
      return Error(400, "bad_request",
                   "unknown parameter '" + k +
                       "' (known: user, node, kind, status, since, until, "
                       "limit, cursor)");
    }
  }
  if (!cursor_id.empty() && (f.until_us == 0 || f.until_us > cursor_us + 1)) {
    f.until_us = cursor_us + 1;
  }
  f.limit = limit + 1 + (cursor_id.empty() ? 0 : kCursorSlack);
  auto rows = opt_.cluster->ListSessions(who->session.caller, f);
  if (!rows.ok()) return FromStatus(rows.status());
  json list = json::array();
  const catalog::Session* last = nullptr;
  bool more = false;
  for (const catalog::Session& s : *rows) {
    // Newest first, ties by id descending: the cursor's row and those
    // before it in that order were on earlier pages.
    if (!cursor_id.empty() && s.started_us == cursor_us && s.id >= cursor_id) {
      continue;
    }
    if (static_cast<int>(list.size()) == limit) {
      more = true;
      break;
    }
    list.push_back(SessionJson(s));
    last = &s;
  }
  json out{{"sessions", list}};
  out["next_cursor"] =
      more && last ? std::to_string(last->started_us) + "." + last->id : "";
  return Json(200, out);
}

HttpResponse WebApi::Session(const HttpRequest& r, const std::string& id) {
  auto who = SignedIn(r);
  if (!who.ok()) return FromStatus(who.status());
  // The whole id only: GetSession also resolves prefixes, which a page
  // URL must not.
  auto s = opt_.cluster->GetSession(who->session.caller, id);
  if (!s.ok() || s->id != id) {
    if (s.ok() || s.status().code() == Code::kNotFound ||
        s.status().code() == Code::kInvalidArgument) {
      return Error(404, "not_found",
                   "session " + id.substr(0, 64) + " not found");
    }
    return FromStatus(s.status());
  }
  return Json(200, json{{"session", SessionJson(*s)}});
}

}  // namespace mez::web
