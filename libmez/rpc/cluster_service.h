// The Cluster gRPC service (proto/mezite/v1/cluster.proto): sessions and
// playback, audit, settings, users, nodes and CA export. A thin adapter:
// it authenticates the call (Authorizer), converts the messages
// (cluster_convert.h) and calls one operation of cluster::Cluster, which
// enforces RBAC (docs/formats/rbac.md) and audits every denial as
// access.denied; every playback as session.recording.access.
#ifndef MEZ_RPC_CLUSTER_SERVICE_H_
#define MEZ_RPC_CLUSTER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <functional>

#include "libmez/auth/keys.h"
#include "libmez/auth/token.h"
#include "libmez/catalog/catalog.h"
#include "libmez/catalog/catalog_retry.h"
#include "libmez/cluster/cluster.h"
#include "libmez/rpc/recording_service.h"
#include "libmez/store/blob_store.h"
#include "libmez/util/thread_pool.h"
#include "mezite/v1/cluster.grpc.pb.h"

namespace mez::rpc {

// The cluster domain's names, where rpc's users have always found them
// (libmez/cluster/cluster.h documents them).
using cluster::AuthorizeProxyHop;
using cluster::CheckIdentity;
using cluster::JoinTokenHash;
inline constexpr std::string_view kProxyAddrKey = cluster::kProxyAddrKey;
inline constexpr std::string_view kProxyHostKeyKey = cluster::kProxyHostKeyKey;
inline constexpr std::string_view kInProcessProxyName =
    cluster::kInProcessProxyName;
inline constexpr std::string_view kReservedNamePrefix =
    cluster::kReservedNamePrefix;

// Resolves a caller to its claims and checks them with CheckIdentity, so
// that removed users, proxies and nodes lose access at once, and re-adding
// a name does not revive tokens issued for the removed one. The role in
// the returned claims is the one CheckIdentity returned.
class Authorizer {
 public:
  Authorizer(const CallAuthenticator* authn, catalog::Catalog* catalog)
      : authn_(authn), catalog_(catalog) {}
  Result<auth::Claims> Caller(const grpc::ServerContextBase* ctx) const;
  // For JoinNode: as Caller, but a join token (kJoin) is accepted too when
  // its node exists with the token's uid and the token was not used yet;
  // so is a 365-day node token of an older release when `exchange_legacy`
  // (the caller stores the credential it gets). Then the claims come back
  // as the node's (kNode) and *join_hash is the token's JoinTokenHash,
  // which the caller must use up (Catalog::ConsumeJoinToken) before acting
  // on it; otherwise *join_hash is empty.
  Result<auth::Claims> JoinCaller(const grpc::ServerContextBase* ctx,
                                  bool exchange_legacy,
                                  std::string* join_hash) const;

 private:
  const CallAuthenticator* authn_;
  catalog::Catalog* catalog_;
};

struct ClusterServiceOptions {
  catalog::Catalog* catalog = nullptr;
  store::BlobStore* store = nullptr;
  const Authorizer* authorizer = nullptr;
  const auth::TokenSigner* signer = nullptr;
  const auth::ClusterKeys* keys = nullptr;
  const auth::TokenVerifier* verifier = nullptr;  // Of user tokens.
  std::optional<std::string> encryption_key;
  ThreadPool* pool = nullptr;  // For calls that touch the disk.
  Clock* clock = nullptr;
  // SHA-256 (lowercase hex) of the cluster's TLS CA certificate (DER),
  // pinned by join tokens; empty when mezrecd serves plaintext.
  std::string tls_ca_sha256;
  // The plain body of a readable session's stored seek index
  // (ReadRecordingRequest.seek_index); unset: none is ever served.
  std::function<Result<std::string>(const catalog::Session&)> seek_index;
};

class ClusterService final : public mezite::v1::Cluster::CallbackService {
 public:
  explicit ClusterService(ClusterServiceOptions options);

  grpc::ServerUnaryReactor* WhoAmI(grpc::CallbackServerContext*,
                                   const mezite::v1::WhoAmIRequest*,
                                   mezite::v1::WhoAmIResponse*) override;
  grpc::ServerUnaryReactor* ListSessions(
      grpc::CallbackServerContext*, const mezite::v1::ListSessionsRequest*,
      mezite::v1::ListSessionsResponse*) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext*,
                                       const mezite::v1::GetSessionRequest*,
                                       mezite::v1::SessionInfo*) override;
  grpc::ServerWriteReactor<mezite::v1::RecordingBytes>* ReadRecording(
      grpc::CallbackServerContext*,
      const mezite::v1::ReadRecordingRequest*) override;
  grpc::ServerUnaryReactor* ListAudit(grpc::CallbackServerContext*,
                                      const mezite::v1::ListAuditRequest*,
                                      mezite::v1::ListAuditResponse*) override;
  grpc::ServerUnaryReactor* GetConfig(grpc::CallbackServerContext*,
                                      const mezite::v1::GetConfigRequest*,
                                      mezite::v1::ConfigValue*) override;
  grpc::ServerUnaryReactor* SetConfig(grpc::CallbackServerContext*,
                                      const mezite::v1::SetConfigRequest*,
                                      mezite::v1::ConfigValue*) override;
  grpc::ServerUnaryReactor* AddUser(grpc::CallbackServerContext*,
                                    const mezite::v1::AddUserRequest*,
                                    mezite::v1::AddUserResponse*) override;
  grpc::ServerUnaryReactor* ListUsers(grpc::CallbackServerContext*,
                                      const mezite::v1::ListUsersRequest*,
                                      mezite::v1::ListUsersResponse*) override;
  grpc::ServerUnaryReactor* RemoveUser(
      grpc::CallbackServerContext*, const mezite::v1::RemoveUserRequest*,
      mezite::v1::RemoveUserResponse*) override;
  grpc::ServerUnaryReactor* ReissueUser(
      grpc::CallbackServerContext*, const mezite::v1::ReissueUserRequest*,
      mezite::v1::ReissueUserResponse*) override;
  grpc::ServerUnaryReactor* AddNode(grpc::CallbackServerContext*,
                                    const mezite::v1::AddNodeRequest*,
                                    mezite::v1::AddNodeResponse*) override;
  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext*,
                                      const mezite::v1::ListNodesRequest*,
                                      mezite::v1::ListNodesResponse*) override;
  grpc::ServerUnaryReactor* RemoveNode(
      grpc::CallbackServerContext*, const mezite::v1::RemoveNodeRequest*,
      mezite::v1::RemoveNodeResponse*) override;
  grpc::ServerUnaryReactor* ExportCA(grpc::CallbackServerContext*,
                                     const mezite::v1::ExportCARequest*,
                                     mezite::v1::ExportCAResponse*) override;
  grpc::ServerUnaryReactor* SignUserCert(
      grpc::CallbackServerContext*, const mezite::v1::SignUserCertRequest*,
      mezite::v1::SignUserCertResponse*) override;
  grpc::ServerUnaryReactor* ResolveNode(grpc::CallbackServerContext*,
                                        const mezite::v1::ResolveNodeRequest*,
                                        mezite::v1::NodeInfo*) override;
  grpc::ServerUnaryReactor* JoinNode(grpc::CallbackServerContext*,
                                     const mezite::v1::JoinNodeRequest*,
                                     mezite::v1::JoinNodeResponse*) override;
  grpc::ServerUnaryReactor* NodeAudit(grpc::CallbackServerContext*,
                                      const mezite::v1::NodeAuditRequest*,
                                      mezite::v1::NodeAuditResponse*) override;
  grpc::ServerUnaryReactor* ProxyHello(
      grpc::CallbackServerContext*, const mezite::v1::ProxyHelloRequest*,
      mezite::v1::ProxyHelloResponse*) override;
  grpc::ServerUnaryReactor* AuthorizeProxyHop(
      grpc::CallbackServerContext*, const mezite::v1::ProxyHopRequest*,
      mezite::v1::NodeInfo*) override;
  grpc::ServerUnaryReactor* SignUpstreamCert(
      grpc::CallbackServerContext*, const mezite::v1::UpstreamCertRequest*,
      mezite::v1::UpstreamCertResponse*) override;

 private:
  // Runs `fn` on the pool once the caller is identified (`caller`, or the
  // authorizer's Caller), and finishes the reactor with its Status. A
  // caller that cannot be identified is audited as denied; `fn` checks the
  // role (through the domain).
  using CallerFn =
      std::function<Result<auth::Claims>(grpc::CallbackServerContext*)>;
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx,
                                  const char* method,
                                  std::function<Status(const auth::Claims&)> fn,
                                  CallerFn caller = nullptr);

  ClusterServiceOptions opt_;
  // Audit events that failed to be stored wait here for a retry.
  std::unique_ptr<catalog::CatalogRetrier> retrier_;
  std::unique_ptr<cluster::Cluster> domain_;
};

}  // namespace mez::rpc

#endif  // MEZ_RPC_CLUSTER_SERVICE_H_
