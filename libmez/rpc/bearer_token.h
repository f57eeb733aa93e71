// The credential a client sends with every call to mezrecd: a user's (the
// CLIs), a node's (mezd) or a proxy's. Shared by every caller in a process,
// so that a renewal (mezd's JoinNode) reaches all of them at once.
#ifndef MEZ_RPC_BEARER_TOKEN_H_
#define MEZ_RPC_BEARER_TOKEN_H_

#include <mutex>
#include <string>

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace mez::rpc {

// A bearer token that may be replaced while calls are made with it.
// ClusterClient sends it with every call. Thread-safe.
class BearerToken {
 public:
  explicit BearerToken(std::string token) : token_(std::move(token)) {}
  std::string Get() const;
  void Set(std::string token);
  // Adds "authorization: Bearer <token>" to a call: the one place the
  // metadata is spelled (ClusterClient, and tests with stubs of their own).
  void Authorize(grpc::ClientContext* ctx) const;

 private:
  mutable std::mutex mu_;
  std::string token_;
};

}  // namespace mez::rpc

#endif  // MEZ_RPC_BEARER_TOKEN_H_
