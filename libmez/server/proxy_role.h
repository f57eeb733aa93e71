// The proxy role as mezrecd runs it (libmez/proxy is the SSH side): inside
// an auth mezrecd (roles auth,proxy), or alone with a proxy identity
// (roles proxy).
#ifndef MEZ_SERVER_PROXY_ROLE_H_
#define MEZ_SERVER_PROXY_ROLE_H_

#include <memory>
#include <string>

#include "libmez/server/server_config.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::auth {
struct ClusterKeys;
class TokenSigner;
}  // namespace mez::auth
namespace mez::catalog {
class Catalog;
}

namespace mez::server {

// What an auth mezrecd gives its in-process proxy; everything outlives the
// proxy.
struct RoleContext {
  const ServerConfig* config = nullptr;
  catalog::Catalog* catalog = nullptr;
  const auth::ClusterKeys* keys = nullptr;
  const auth::TokenSigner* signer = nullptr;
  // Where mezrecd's gRPC answers ("HOST:PORT", a wildcard host replaced
  // by loopback), and the TLS CA to trust (empty: plaintext).
  std::string grpc_addr;
  std::string tls_ca_pem;
  Clock* clock = nullptr;
};

// A proxy for this mezrecd, recording agentless sessions with a proxy
// token it signs itself (as the catalog user cluster::kInProcessProxyName).
// Publishes the proxy's address and host key in the catalog. Prints
// "mezrecd: proxy serving SSH on ADDR". Releasing the handle stops it.
Result<std::shared_ptr<void>> StartInProcessProxy(const RoleContext& context);

// A proxy-only mezrecd (roles: proxy): reads config.identity (a proxy
// identity), announces itself to that auth mezrecd (ProxyHello), serves
// until SIGTERM or SIGINT. Prints "mezrecd: proxy serving SSH on ADDR" and
// then "mezrecd: serving on ADDR (proxy only)".
Status RunProxyOnly(const ServerConfig& config);

}  // namespace mez::server

#endif  // MEZ_SERVER_PROXY_ROLE_H_
