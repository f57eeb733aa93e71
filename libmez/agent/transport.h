// How mezd reaches mezrecd. The node's credential rides in every call's
// metadata, so mezd talks TLS, trusting only the cluster's CA, unless an
// operator explicitly asks for plaintext to a mezrecd on the same machine.
#ifndef MEZ_AGENT_TRANSPORT_H_
#define MEZ_AGENT_TRANSPORT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "libmez/util/status.h"

namespace mez::agent {

// Channel credentials for mezrecd at `auth_addr` (HOST:PORT):
//   - `ca_pem` set: TLS trusting only that CA; `insecure` must be false.
//   - `insecure`: plaintext, allowed only when the host of `auth_addr` is a
//     loopback address (127.0.0.0/8, ::1, localhost).
//   - neither: kInvalidArgument naming --ca-file and --insecure, so a
//     missing flag never sends the node's token in clear.
Result<std::shared_ptr<grpc::ChannelCredentials>> NodeChannelCredentials(
    const std::string& auth_addr, const std::string& ca_pem, bool insecure);

}  // namespace mez::agent

#endif  // MEZ_AGENT_TRANSPORT_H_
