#include "libmez/rpc/bearer_token.h"

#include <grpcpp/grpcpp.h>

namespace mez::rpc {

std::string BearerToken::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return token_;
}

void BearerToken::Set(std::string token) {
  std::lock_guard<std::mutex> lock(mu_);
  token_ = std::move(token);
}

void BearerToken::Authorize(grpc::ClientContext* ctx) const {
  ctx->AddMetadata("authorization", "Bearer " + Get());
}

}  // namespace mez::rpc
