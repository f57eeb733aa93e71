// The credential a recorder sends with every call to mezrecd: a node's
// (mezd) or a proxy's. Shared by every caller in the process, so that a
// renewal (mezd's JoinNode) reaches all of them at once.
#ifndef MEZ_RECORDER_BEARER_TOKEN_H_
#define MEZ_RECORDER_BEARER_TOKEN_H_

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <string>

namespace mez::recorder {

// A bearer token that may be replaced while calls are made with it.
// Thread-safe.
class BearerToken {
 public:
  explicit BearerToken(std::string token) : token_(std::move(token)) {}
  std::string Get() const;
  void Set(std::string token);
  // Adds "authorization: Bearer <token>" to the call.
  void Authorize(grpc::ClientContext* ctx) const;

 private:
  mutable std::mutex mu_;
  std::string token_;
};

}  // namespace mez::recorder

#endif  // MEZ_RECORDER_BEARER_TOKEN_H_
