// mezrecd's main loop: prepares the data dir (keys, catalog, storage),
// serves gRPC until SIGTERM or SIGINT, then drains and exits.
#ifndef MEZ_RPC_SERVER_H_
#define MEZ_RPC_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "libmez/rpc/server_config.h"
#include "libmez/util/clock.h"
#include "libmez/util/log.h"
#include "libmez/util/status.h"

namespace mez::auth {
struct ClusterKeys;
class TokenSigner;
}  // namespace mez::auth
namespace mez::catalog {
class Catalog;
}

namespace mez::rpc {

// What a role that runs inside mezrecd (the proxy, libmez/proxy) is
// given; everything outlives the role.
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
// Starts a role; releasing the handle stops it.
using RoleStarter =
    std::function<Result<std::shared_ptr<void>>(const RoleContext&)>;

// "debug", "warn", "error"; anything else is info.
LogLevel ParseLogLevel(const std::string& level);
// Creates `dir` and its parents (the last one 0700).
Status MakeDataDir(const std::string& dir);

// Blocks until a termination signal. Returns an error when startup fails
// (the message says what to fix). Prints "mezrecd: serving on ADDR" to
// stderr once the port is bound (ADDR with the real port when 0 was asked).
// `start_proxy` starts the proxy role when the config asks for it.
Status RunMezrecd(const ServerConfig& config,
                  const RoleStarter& start_proxy = {});

}  // namespace mez::rpc

#endif  // MEZ_RPC_SERVER_H_
