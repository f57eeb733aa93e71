#include "libmez/web/web_role.h"

#include "libmez/cluster/cluster.h"
#include "libmez/util/file.h"
#include "libmez/web/api.h"
#include "libmez/web/http_server.h"
#include "libmez/web/sign_in.h"

namespace mez::web {

// Destroyed in reverse: the listener (and its threads) before what its
// handlers use.
struct WebRole::Parts {
  std::unique_ptr<cluster::Cluster> cluster;
  std::unique_ptr<SignInStore> sign_in;
  std::unique_ptr<WebApi> api;
  std::unique_ptr<HttpServer> server;
};

WebRole::WebRole(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}
WebRole::~WebRole() = default;

const std::string& WebRole::address() const {
  return parts_->server->address();
}

Result<std::unique_ptr<WebRole>> WebRole::Start(WebRoleOptions o) {
  if (o.clock == nullptr) o.clock = RealClock();
  const WebConfig& c = o.config;
  HttpServerOptions hopt;
  hopt.listen = c.listen;
  hopt.plain_http = c.insecure_http;
  // Behind a TLS-terminating proxy every connection comes from the proxy:
  // a cap per address would be a cap on everyone.
  if (c.insecure_http) hopt.max_connections_per_peer = 0;
  if (!c.insecure_http) {
    if (!c.cert_file.empty()) {
      auto cert = ReadFile(c.cert_file);
      if (!cert.ok()) {
        return InvalidArgument("web: --web-cert " + c.cert_file + ": " +
                               cert.status().message());
      }
      auto key = ReadFile(c.key_file);
      if (!key.ok()) {
        return InvalidArgument("web: --web-key " + c.key_file + ": " +
                               key.status().message());
      }
      hopt.tls_cert_chain_pem = *cert;
      hopt.tls_key_pem = *key;
    } else {
      hopt.tls_cert_chain_pem =
          o.keys->tls_server_cert_pem + o.keys->tls_ca_cert_pem;
      hopt.tls_key_pem = o.keys->tls_server_key_pem;
    }
  }
  auto parts = std::make_unique<Parts>();
  cluster::ClusterOptions copt;
  copt.catalog = o.catalog;
  copt.signer = o.signer;
  copt.keys = o.keys;
  copt.verifier = o.verifier;
  copt.clock = o.clock;
  parts->cluster = std::make_unique<cluster::Cluster>(std::move(copt));
  parts->sign_in = std::make_unique<SignInStore>(o.clock, c.code_ttl_us);
  WebApiOptions aopt;
  aopt.catalog = o.catalog;
  aopt.cluster = parts->cluster.get();
  aopt.sign_in = parts->sign_in.get();
  aopt.clock = o.clock;
  aopt.trusted_proxies = c.trusted_proxies;
  // Without --web-public-url the origin is known once bound (port 0);
  // until SetPublicUrl the API refuses every state change.
  std::string url = c.public_url;
  aopt.public_url = url;
  parts->api = std::make_unique<WebApi>(aopt);
  hopt.api = parts->api.get();
  MEZ_ASSIGN_OR_RETURN(parts->server, HttpServer::Start(hopt));
  std::string bound = parts->server->address();
  if (url.empty()) {
    url = PublicUrl(c, bound);
    parts->api->SetPublicUrl(url);
  }
  std::unique_ptr<WebRole> role(new WebRole(std::move(parts)));
  role->public_url_ = url;
  return role;
}

Result<WebRole::Code> WebRole::IssueCode(const auth::Claims& caller) {
  MEZ_ASSIGN_OR_RETURN(IssuedCode c, parts_->sign_in->IssueCode(caller));
  return Code{c.code, c.expires_us / 1'000'000};
}

}  // namespace mez::web
