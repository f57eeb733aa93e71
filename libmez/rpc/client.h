// Client side of the cluster API for the CLIs: finding the caller's
// identity, connecting with it, and turning gRPC errors into messages a
// person can act on.
#ifndef MEZ_RPC_CLIENT_H_
#define MEZ_RPC_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "libmez/auth/identity.h"
#include "libmez/record/sink.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "mezite/v1/recording.grpc.pb.h"

namespace mez::rpc {

// Where `msh login` keeps the identity: $HOME/.mez/identity.
std::string DefaultIdentityPath();

// The identity to use: `flag` (--identity) if set, else $MEZ_IDENTITY, else
// the one `msh login` stored. A missing file, or a token that has expired
// (read from the token's claims without verifying them; the server does
// that), is kFailedPrecondition with one line saying what to run.
Result<auth::Identity> ResolveIdentity(const std::string& flag);

// Stores `source` as the default identity (mode 0600, $HOME/.mez 0700).
// Returns the path written.
Result<std::string> StoreLogin(const std::string& source);

// The claims of a token, decoded without verification (display only).
struct TokenInfo {
  std::string subject;
  std::string role;
  int64_t expires_at = 0;
};
Result<TokenInfo> PeekToken(const std::string& token);

class ClusterClient {
 public:
  static Result<std::unique_ptr<ClusterClient>> Connect(
      const auth::Identity& identity);

  // Sets the bearer token and a deadline (seconds; 0: none) on `ctx`.
  void Prepare(grpc::ClientContext* ctx, int deadline_seconds = 30) const;
  mezite::v1::Cluster::Stub* cluster() { return cluster_.get(); }
  mezite::v1::Recording::Stub* recording() { return recording_.get(); }
  const auth::Identity& identity() const { return identity_; }

  // A gRPC status as a mez::Status whose message names the server for
  // connection problems.
  Status Check(const grpc::Status& s) const;

  // The plain asciicast bytes of session `id` from `offset`, streamed.
  // The first Read blocks until the server answers; errors (not found,
  // denied) surface there. `info`, when given, is filled once known.
  Result<std::unique_ptr<record::ByteSource>> ReadRecording(
      const std::string& id, uint64_t offset,
      mezite::v1::SessionInfo* info = nullptr);

 private:
  explicit ClusterClient(auth::Identity identity)
      : identity_(std::move(identity)) {}
  auth::Identity identity_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<mezite::v1::Cluster::Stub> cluster_;
  std::unique_ptr<mezite::v1::Recording::Stub> recording_;
};

}  // namespace mez::rpc

#endif  // MEZ_RPC_CLIENT_H_
