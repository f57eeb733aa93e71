// mezrecd's main loop: prepares the data dir (keys, catalog, storage),
// builds ingest, uploads and the gRPC services over them, starts the
// roles, serves until SIGTERM or SIGINT, then drains and exits.
#ifndef MEZ_SERVER_SERVER_H_
#define MEZ_SERVER_SERVER_H_

#include <string>

#include "libmez/server/server_config.h"
#include "libmez/util/clock.h"
#include "libmez/util/log.h"
#include "libmez/util/status.h"

namespace mez::server {

// "debug", "warn", "error"; anything else is info.
LogLevel ParseLogLevel(const std::string& level);
// Creates `dir` and its parents (the last one 0700).
Status MakeDataDir(const std::string& dir);

// An auth mezrecd (roles auth, or auth,proxy: the proxy role started by
// proxy_role.h). Blocks until a termination signal. Returns an error when
// startup fails (the message says what to fix). Prints "mezrecd: serving
// on ADDR" to stderr once the port is bound (ADDR with the real port when 0
// was asked). A config with roles proxy alone goes to RunProxyOnly.
Status RunMezrecd(const ServerConfig& config);

}  // namespace mez::server

#endif  // MEZ_SERVER_SERVER_H_
