// The one mapping from a gRPC status to a mez::Status, for rpc's own
// clients (ClusterClient and its streams). Inside libmez/rpc/ only: it
// includes grpcpp.
#ifndef MEZ_RPC_GRPC_STATUS_H_
#define MEZ_RPC_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "libmez/util/status.h"

namespace mez::rpc {

// `g` as a Status:
//   UNAVAILABLE, DEADLINE_EXCEEDED -> kUnavailable, "cannot reach mezrecd at
//     SERVER: ..." (what callers retry on: audit, uploads, joins);
//   UNAUTHENTICATED -> kUnauthenticated, the message plus `refused_hint`
//     when given (what the caller should do about it);
//   PERMISSION_DENIED, NOT_FOUND, INVALID_ARGUMENT, ALREADY_EXISTS,
//     FAILED_PRECONDITION, OUT_OF_RANGE, DATA_LOSS -> the same code, the
//     server's message unchanged;
//   anything else (CANCELLED, INTERNAL, ...) -> kInternal.
// `server` names the address in connection errors ("" : just "mezrecd").
Status FromGrpc(const grpc::Status& g, const std::string& server,
                const std::string& refused_hint = "");

}  // namespace mez::rpc

#endif  // MEZ_RPC_GRPC_STATUS_H_
