#include "libmez/web/web_config.h"

#include "libmez/util/duration.h"
#include "libmez/util/host_port.h"

namespace mez::web {
namespace {

Status Bad(const std::string& where, const std::string& what) {
  return InvalidArgument("config: " + where + ": " + what);
}

Result<bool> Bool(const std::string& where, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return Bad(where, "'" + v + "' is not a boolean (true or false)");
}

bool IsIpLiteral(const std::string& s) {
  if (s.empty() || s.size() > 45) return false;
  for (char c : s) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
              (c >= 'A' && c <= 'F') || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

const std::vector<WebOptionName>& WebOptionNames() {
  static const std::vector<WebOptionName> kNames = {
      {"listen", "--web-listen", "MEZITE_WEB_LISTEN"},
      {"cert", "--web-cert", "MEZITE_WEB_CERT"},
      {"key", "--web-key", "MEZITE_WEB_KEY"},
      {"insecureHttp", "--web-insecure-http", "MEZITE_WEB_INSECURE_HTTP"},
      {"publicUrl", "--web-public-url", "MEZITE_WEB_PUBLIC_URL"},
      {"trustedProxies", "--web-trusted-proxies", "MEZITE_WEB_TRUSTED_PROXIES"},
      {"signInCodeTtl", "--web-sign-in-code-ttl",
       "MEZITE_WEB_SIGN_IN_CODE_TTL"},
  };
  return kNames;
}

Status SetWebOption(WebConfig* c, const std::string& key, const std::string& v,
                    const std::string& where) {
  if (key == "listen") {
    c->listen = v;
  } else if (key == "cert") {
    c->cert_file = v;
  } else if (key == "key") {
    c->key_file = v;
  } else if (key == "insecureHttp") {
    MEZ_ASSIGN_OR_RETURN(c->insecure_http, Bool(where, v));
  } else if (key == "publicUrl") {
    c->public_url = v;
    while (!c->public_url.empty() && c->public_url.back() == '/') {
      c->public_url.pop_back();
    }
  } else if (key == "trustedProxies") {
    c->trusted_proxies.clear();
    size_t pos = 0;
    while (pos <= v.size()) {
      size_t comma = v.find(',', pos);
      if (comma == std::string::npos) comma = v.size();
      std::string ip = v.substr(pos, comma - pos);
      while (!ip.empty() && ip.front() == ' ') ip.erase(0, 1);
      while (!ip.empty() && ip.back() == ' ') ip.pop_back();
      pos = comma + 1;
      if (ip.empty()) continue;
      if (!IsIpLiteral(ip)) {
        return Bad(where, "'" + ip + "' is not an IP address");
      }
      c->trusted_proxies.push_back(ip);
    }
  } else if (key == "signInCodeTtl") {
    auto d = ParseDuration(v);
    if (!d.ok()) return Bad(where, d.status().message());
    if (*d < 1'000'000 || *d > 60'000'000) {
      return Bad(where, "'" + v + "' is outside 1s..60s");
    }
    c->code_ttl_us = *d;
  } else {
    return Bad(where,
               "unknown key (known: listen, cert, key, insecureHttp, "
               "publicUrl, trustedProxies, signInCodeTtl)");
  }
  return Status::Ok();
}

Status ValidateWebConfig(const WebConfig& c) {
  if (c.listen.empty()) return Status::Ok();
  Status s = ValidateListenAddress(c.listen);
  if (!s.ok()) return InvalidArgument("web " + s.message());
  if (c.insecure_http && !IsLoopbackHost(c.listen)) {
    return InvalidArgument(
        "web: --web-insecure-http serves plain HTTP and is allowed only on "
        "a loopback address (127.0.0.1, ::1) behind a TLS-terminating "
        "proxy; " +
        c.listen + " is not one. Drop --web-insecure-http to serve HTTPS");
  }
  if (c.insecure_http && (!c.cert_file.empty() || !c.key_file.empty())) {
    return InvalidArgument(
        "web: --web-cert/--web-key and --web-insecure-http exclude each "
        "other");
  }
  if (c.cert_file.empty() != c.key_file.empty()) {
    return InvalidArgument(
        "web: --web-cert and --web-key go together (an operator's "
        "certificate chain and its key, PEM)");
  }
  if (!c.public_url.empty() && c.public_url.rfind("https://", 0) != 0 &&
      c.public_url.rfind("http://", 0) != 0) {
    return InvalidArgument("web: --web-public-url '" + c.public_url +
                           "' must start with https:// or http://");
  }
  if (c.insecure_http && c.public_url.rfind("https://", 0) != 0) {
    return InvalidArgument(
        "web: --web-insecure-http needs --web-public-url https://... (the "
        "URL of the TLS-terminating proxy users open)");
  }
  return Status::Ok();
}

std::string PublicUrl(const WebConfig& c, const std::string& bound) {
  if (!c.public_url.empty()) return c.public_url;
  std::string host = bound.substr(0, bound.rfind(':'));
  std::string port = bound.substr(bound.rfind(':'));
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "[::]") host = "[::1]";
  return "https://" + host + port;
}

}  // namespace mez::web
