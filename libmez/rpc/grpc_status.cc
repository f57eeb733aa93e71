#include "libmez/rpc/grpc_status.h"

namespace mez::rpc {

Status FromGrpc(const grpc::Status& g, const std::string& server,
                const std::string& refused_hint) {
  if (g.ok()) return Status::Ok();
  const std::string& m = g.error_message();
  switch (g.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status(Code::kUnavailable,
                    "cannot reach mezrecd" +
                        (server.empty() ? std::string() : " at " + server) +
                        ": " + m);
    case grpc::StatusCode::UNAUTHENTICATED:
      return Status(Code::kUnauthenticated,
                    refused_hint.empty() ? m : m + " (" + refused_hint + ")");
    case grpc::StatusCode::PERMISSION_DENIED:
      return Status(Code::kPermissionDenied, m);
    case grpc::StatusCode::NOT_FOUND:
      return Status(Code::kNotFound, m);
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Status(Code::kInvalidArgument, m);
    case grpc::StatusCode::ALREADY_EXISTS:
      return Status(Code::kAlreadyExists, m);
    case grpc::StatusCode::FAILED_PRECONDITION:
      return Status(Code::kFailedPrecondition, m);
    case grpc::StatusCode::OUT_OF_RANGE:
      return Status(Code::kOutOfRange, m);
    case grpc::StatusCode::DATA_LOSS:
      return Status(Code::kDataLoss, m);
    default:
      return Status(Code::kInternal, m);
  }
}

}  // namespace mez::rpc
