// The Cluster gRPC service (proto/mezite/v1/cluster.proto): sessions and
// playback, audit, settings, users, nodes and CA export, with RBAC enforced
// here, not in the CLIs (docs/formats/rbac.md). Every denial is audited as
// access.denied; every playback as session.recording.access.
#ifndef MEZ_RPC_CLUSTER_SERVICE_H_
#define MEZ_RPC_CLUSTER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "libmez/auth/keys.h"
#include "libmez/auth/token.h"
#include "libmez/catalog/catalog.h"
#include "libmez/rpc/catalog_retry.h"
#include "libmez/rpc/recording_service.h"
#include "libmez/store/blob_store.h"
#include "libmez/util/thread_pool.h"
#include "mezite/v1/cluster.grpc.pb.h"

namespace mez::rpc {

// Catalog settings the proxy role writes when it starts, and ResolveNode
// hands to msh: the proxy's address and its host key line. Not settable
// through SetConfig (ValidateSetting knows only session_recording).
inline constexpr std::string_view kProxyAddrKey = "proxy.addr";
inline constexpr std::string_view kProxyHostKeyKey = "proxy.host_key";

// Whether `user` may go through a proxy to the node `name` (the proxy's
// checks, shared by an in-process proxy and AuthorizeProxyHop): the user
// exists and has a login, and the node is registered. A refusal is
// audited as "proxy.refused" (by `proxy`, from `remote`) and returned
// (kPermissionDenied, kNotFound); the node otherwise.
Result<catalog::Node> AuthorizeProxyHop(catalog::Catalog* catalog, Clock* clock,
                                        const std::string& proxy,
                                        const std::string& user,
                                        const std::string& name,
                                        const std::string& remote,
                                        const std::string& login);

// Settings the cluster knows, with their allowed values.
Status ValidateSetting(const std::string& key, const std::string& value);

// Name of the catalog identity (role "proxy") of the proxy that runs
// inside mezrecd (--roles auth,proxy). The leading '_' keeps it apart from
// every name AddUser accepts (kReservedNamePrefix).
inline constexpr std::string_view kInProcessProxyName = "_mezrecd-proxy";
// Names that start with this are mezrecd's own; AddUser refuses them.
inline constexpr std::string_view kReservedNamePrefix = "_";

// Checks that a bearer token speaks for a current identity: the catalog
// row named `subject` exists, has id `uid`, and is of the token's kind
// (user or admin rows for kUser and kAdmin tokens, proxy rows for kProxy,
// nodes for kNode). Returns the role to act with: for users and admins
// the catalog's, which wins over the token's. kUnauthenticated, saying
// what to do, for a token without uid, a kJoin or kSession token (never
// bearer credentials), a removed name or a name removed and added again;
// the catalog's error when it fails otherwise. Blocks on the catalog.
// `legacy_join_hash` (CallAuthenticator::LegacyJoinHash): for a 365-day
// node token of an older release, honoured only while it is still the
// node's unexchanged join token.
Result<auth::Role> CheckIdentity(catalog::Catalog* catalog, auth::Role role,
                                 const std::string& subject,
                                 const std::string& uid,
                                 const std::string& legacy_join_hash = "");

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

// SHA-256 hex of a node join token, as stored in the catalog.
std::string JoinTokenHash(const std::string& token);

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
  // Runs `fn` on the pool after authorizing the caller for `roles`, and
  // finishes the reactor with its Status. Denials are audited.
  grpc::ServerUnaryReactor* Unary(
      grpc::CallbackServerContext* ctx, const char* method,
      std::initializer_list<auth::Role> roles,
      std::function<Status(const auth::Claims&)> fn);
  // As above, with `caller` resolving the caller instead of the
  // authorizer's Caller.
  using CallerFn =
      std::function<Result<auth::Claims>(grpc::CallbackServerContext*)>;
  grpc::ServerUnaryReactor* Unary(
      grpc::CallbackServerContext* ctx, const char* method,
      std::initializer_list<auth::Role> roles, CallerFn caller,
      std::function<Status(const auth::Claims&)> fn);
  void Deny(const auth::Claims* who, const std::string& method,
            const Status& why);
  void Audit(const std::string& type, const std::string& user,
             const std::string& session_id, const std::string& details);
  // Loads a session the caller may read (own or admin).
  Result<catalog::Session> ReadableSession(const auth::Claims& who,
                                           const std::string& id,
                                           const char* method);

  ClusterServiceOptions opt_;
  // Audit events that failed to be stored wait here for a retry.
  std::unique_ptr<CatalogRetrier> retrier_;
};

}  // namespace mez::rpc

#endif  // MEZ_RPC_CLUSTER_SERVICE_H_
