// mezrecd's main loop: prepares the data dir (keys, catalog, storage),
// serves gRPC until SIGTERM or SIGINT, then drains and exits.
#ifndef MEZ_RPC_SERVER_H_
#define MEZ_RPC_SERVER_H_

#include "libmez/rpc/server_config.h"
#include "libmez/util/status.h"

namespace mez::rpc {

// Blocks until a termination signal. Returns an error when startup fails
// (the message says what to fix). Prints "mezrecd: serving on ADDR" to
// stderr once the port is bound (ADDR with the real port when 0 was asked).
Status RunMezrecd(const ServerConfig& config);

}  // namespace mez::rpc

#endif  // MEZ_RPC_SERVER_H_
