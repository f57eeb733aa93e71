// The cluster's domain: users, nodes (registration, join, heartbeat,
// credentials), certificates, settings, sessions and the audit of what
// nodes report, with the role checks (docs/formats/rbac.md). Plain C++
// over the catalog: no gRPC, no protobuf. rpc::ClusterService is the
// adapter that authenticates a call, converts its messages and calls one
// operation here.
//
// Every operation takes the caller's identity (auth::Claims, as the
// authenticator resolved and CheckIdentity confirmed it), checks its role
// first, and returns a Status or Result; a refusal is audited as
// access.denied. The method names in messages ("AddUser needs a admin
// credential...") are the RPCs'.
//
// Thread-safe: Cluster holds no mutable state; it blocks on the catalog.
#ifndef MEZ_CLUSTER_CLUSTER_H_
#define MEZ_CLUSTER_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/auth/keys.h"
#include "libmez/auth/token.h"
#include "libmez/catalog/catalog.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::cluster {

// Catalog settings the proxy role writes when it starts, and ResolveNode
// hands to msh: the proxy's address and its host key line. Not settable
// by SetSetting (not in the settings registry).
inline constexpr std::string_view kProxyAddrKey = "proxy.addr";
inline constexpr std::string_view kProxyHostKeyKey = "proxy.host_key";

// Name of the catalog identity (role "proxy") of the proxy that runs
// inside mezrecd (--roles auth,proxy). The leading '_' keeps it apart from
// every name AddUser accepts (kReservedNamePrefix).
inline constexpr std::string_view kInProcessProxyName = "_mezrecd-proxy";
// Names that start with this are mezrecd's own; AddUser refuses them.
inline constexpr std::string_view kReservedNamePrefix = "_";

// Lifetimes (seconds).
inline constexpr int64_t kDefaultUserTtl = 12 * 3600;  // AddUser's token
// ReissueUser's default for a proxy (a service): as `mezctl users add`'s.
inline constexpr int64_t kDefaultProxyReissueTtl = 8760 * 3600;
inline constexpr int64_t kUserCertTtl = 10 * 60;
inline constexpr int64_t kUserCertBackdate = 60;  // Clock skew allowance.
// Longest life of a recording grant (a user's default login lasts 12 h).
inline constexpr int64_t kMaxGrantTtl = 12 * 3600;
// Host certificates are renewed at every mezd start and heartbeat.
inline constexpr int64_t kHostCertTtl = 7 * 24 * 3600;
// How far back JoinNode tells nodes of removed users: a certificate signed
// just before the removal stays valid for kUserCertTtl, and clocks may
// differ by kUserCertBackdate; the rest is margin for a late heartbeat.
inline constexpr int64_t kRevokedUserWindow = 15 * 60;
static_assert(kRevokedUserWindow > kUserCertTtl + kUserCertBackdate);

// SHA-256 hex of a node join token, as stored in the catalog.
std::string JoinTokenHash(const std::string& token);

// Checks that a bearer token speaks for a current identity: the catalog
// row named `subject` exists, has id `uid`, and is of the token's kind
// (user or admin rows for kUser and kAdmin tokens, proxy rows for kProxy,
// nodes for kNode). Returns the role to act with: for users and admins
// the catalog's, which wins over the token's. kUnauthenticated, saying
// what to do, for a token without uid, a kJoin or kSession token (never
// bearer credentials), a removed name or a name removed and added again;
// the catalog's error when it fails otherwise. Blocks on the catalog.
// `legacy_join_hash`: JoinTokenHash of the call's token when it is a
// 365-day node token of an older release, honoured only while it is still
// the node's unexchanged join token; empty otherwise.
Result<auth::Role> CheckIdentity(catalog::Catalog* catalog, auth::Role role,
                                 const std::string& subject,
                                 const std::string& uid,
                                 const std::string& legacy_join_hash = "");

// The identity of a JoinNode call whose token is a join token (kJoin), or
// a legacy node token that the node exchanges (`claims` as verified,
// `token` the bearer token itself): its node exists under the token's uid
// and the token was not used yet. Returns the claims as the node's
// (kNode) and sets *join_hash to the token's JoinTokenHash, which the
// caller must use up (JoinNode does) before acting on it.
Result<auth::Claims> CheckJoinToken(catalog::Catalog* catalog,
                                    auth::Claims claims,
                                    const std::string& token,
                                    std::string* join_hash);

// Whether `user` may go through a proxy to the node `name` (the proxy's
// checks, shared by an in-process proxy and the AuthorizeProxyHop RPC):
// the user exists and has a login, and the node is registered. A refusal
// is audited as "proxy.refused" (by `proxy`, from `remote`) and returned
// (kPermissionDenied, kNotFound); the node otherwise.
Result<catalog::Node> AuthorizeProxyHop(catalog::Catalog* catalog, Clock* clock,
                                        const std::string& proxy,
                                        const std::string& user,
                                        const std::string& name,
                                        const std::string& remote,
                                        const std::string& login);

// The value of a setting of the registry (libmez/settings): the catalog's,
// or the registry's default when unset. kInvalidArgument for a key not in
// the registry. For the in-process proxy's new sessions too.
Result<std::string> ReadSetting(catalog::Catalog* catalog,
                                std::string_view key);

struct ClusterOptions {
  catalog::Catalog* catalog = nullptr;            // required
  const auth::TokenSigner* signer = nullptr;      // required
  const auth::ClusterKeys* keys = nullptr;        // required
  const auth::TokenVerifier* verifier = nullptr;  // Of user tokens.
  Clock* clock = nullptr;                         // nullptr: RealClock()
  // SHA-256 (lowercase hex) of the cluster's TLS CA certificate (DER),
  // pinned by join tokens; empty when mezrecd serves plaintext.
  std::string tls_ca_sha256;
  // Stores an audit event the domain emits (the service retries failed
  // ones); nullptr: appended to the catalog, a failure logged.
  std::function<void(const catalog::AuditEvent&)> audit;
};

struct NewUser {
  std::string name;
  std::vector<std::string> logins;
  std::string role;         // "user" (when empty), "admin" or "proxy"
  int64_t ttl_seconds = 0;  // Of the token; <= 0: kDefaultUserTtl
};
struct AddedUser {
  catalog::User user;
  std::string token;
};

struct NewNode {
  std::string name;
  std::string addr;
  bool openssh = false;  // agentless: no join token
  std::string login_hint;
  std::string host_key;
};
struct AddedNode {
  catalog::Node node;
  std::string join_token;  // Empty for an agentless node.
  int64_t join_token_expires_at = 0;
};

// A node's join or heartbeat, as reported (unvalidated).
struct NodeReport {
  std::string addr;            // HOST:PORT it serves SSH on, or empty
  std::string recording_mode;  // The mode it applies, or empty
  std::string host_key;        // "ssh-ed25519 AAAA...", or empty
  std::string peer;            // Where the call came from (audit only)
};
struct JoinAnswer {
  std::string name;
  std::string user_ca_public;
  std::string host_ca_public;
  std::string session_recording;
  std::string host_certificate_line;  // When a host key was reported.
  std::string node_token;             // A new credential (exchange or renewal).
  int64_t node_token_expires_at = 0;
  // Users and admins removed in the last kRevokedUserWindow.
  std::vector<std::string> revoked_user_ids;
};

// An audit event a node or proxy reports (unvalidated).
struct NodeEvent {
  std::string type;
  std::string session_id;
  std::string user;        // Claimed; trusted only through user_token.
  std::string node;        // A proxy's agentless node; ignored from nodes.
  std::string details;     // A JSON object, or empty.
  std::string user_token;  // The user's recording grant, or empty.
};

struct ResolvedNode {
  catalog::Node node;
  // The proxy to reach it through (published by the proxy role), or empty.
  std::string proxy_addr;
  std::string proxy_host_key;
};

struct UserCert {
  std::string certificate_line;
  int64_t valid_before = 0;
};

struct ProxyWelcome {
  std::string user_ca_public;
  std::string session_recording;
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options);

  // kPermissionDenied "METHOD needs a R1 or R2 credential; you are NAME
  // (ROLE)" unless the caller has one of `roles`; audited.
  Status Require(const auth::Claims& caller, std::string_view method,
                 std::initializer_list<auth::Role> roles);
  // Audits a refused call as access.denied (`who` null when the caller
  // could not be identified).
  void AuditDenied(const auth::Claims* who, std::string_view method,
                   const Status& why);
  // Stores an audit event of the cluster (time: now).
  void Audit(const std::string& type, const std::string& user,
             const std::string& session_id, const std::string& details);

  // Anyone identified.
  Status WhoAmI(const auth::Claims& caller);

  // Users (admins): a token comes with every new user; proxies are users
  // with role "proxy" and no logins. RemoveUser revokes every token and
  // certificate grant of the name (the catalog records the revocation).
  Result<AddedUser> AddUser(const auth::Claims& caller, const NewUser& user);
  Result<std::vector<catalog::User>> ListUsers(const auth::Claims& caller);
  Status RemoveUser(const auth::Claims& caller, const std::string& name);
  // A new token for the existing user `name` (same role, logins and uid),
  // valid `ttl_seconds` (<= 0: kDefaultUserTtl, kDefaultProxyReissueTtl for a
  // proxy); the user's earlier tokens
  // stay valid until they expire (RemoveUser revokes them all). Audited as
  // user.reissue. kNotFound for an unknown name.
  Result<AddedUser> ReissueUser(const auth::Claims& caller,
                                const std::string& name, int64_t ttl_seconds);

  // Nodes (admins). An agent node gets a single-use join token pinning
  // the TLS CA, exchanged by JoinNode for the node's credential.
  Result<AddedNode> AddNode(const auth::Claims& caller, const NewNode& node);
  Result<std::vector<catalog::Node>> ListNodes(const auth::Claims& caller);
  Status RemoveNode(const auth::Claims& caller, const std::string& name);
  // Users, admins and proxies: a node and the proxy in front of it.
  Result<ResolvedNode> ResolveNode(const auth::Claims& caller,
                                   const std::string& name);

  // A node's join and every heartbeat (`caller` a kNode identity;
  // `join_hash` from CheckJoinToken when its token is a join token, else
  // empty). Validates the report, signs a host certificate for the
  // reported host key (refusing a key that differs from the pinned one),
  // issues a credential for a join token or one a third through its
  // life, uses up a join token (once, among replicas), and records the
  // report. Once a join token is used up, only the answer may fail.
  Result<JoinAnswer> JoinNode(const auth::Claims& caller,
                              const NodeReport& report,
                              const std::string& join_hash);

  // An audit event from a node or proxy: known types only, bounded
  // fields, details a JSON object; the user is trusted only through a
  // recording grant for the reporting node (an expired one is kept,
  // marked). Returns the event's id.
  Result<int64_t> NodeAudit(const auth::Claims& caller, const NodeEvent& event);

  // Proxies: `addr` (validated by the caller as HOST:PORT, or empty to
  // ask only for the CA) and `host_key` are published for ResolveNode.
  Result<ProxyWelcome> ProxyHello(const auth::Claims& caller,
                                  const std::string& addr,
                                  const std::string& host_key);
  // Proxies: AuthorizeProxyHop above, by the calling proxy.
  Result<catalog::Node> AuthorizeProxyHop(const auth::Claims& caller,
                                          const std::string& user,
                                          const std::string& node,
                                          const std::string& remote,
                                          const std::string& login);

  // Certificates. A user certificate is for one of the caller's logins on
  // one registered node, short-lived, and carries a recording grant for
  // that node only.
  Result<UserCert> SignUserCert(const auth::Claims& caller,
                                const std::string& login,
                                const std::string& node,
                                const std::string& public_key_blob);
  // Proxies: a certificate for `user`'s `login` on an agentless node,
  // as an SSH blob.
  Result<std::string> SignUpstreamCert(const auth::Claims& caller,
                                       const std::string& user,
                                       const std::string& login,
                                       const std::string& public_key_blob);
  // Anyone identified: the "user" or "host" CA's public line.
  Result<std::string> ExportCA(const auth::Claims& caller,
                               const std::string& type);

  // Settings (the registry's keys). Anyone identified reads; admins set,
  // audited as config.set with the previous value.
  Result<std::string> GetSetting(const auth::Claims& caller,
                                 const std::string& key);
  Status SetSetting(const auth::Claims& caller, const std::string& key,
                    const std::string& value);

  // Sessions and the audit log. Users see their own sessions; admins all.
  // Another user's session is kNotFound (its id stays private), audited.
  Result<std::vector<catalog::Session>> ListSessions(
      const auth::Claims& caller, catalog::SessionFilter filter);
  Result<catalog::Session> GetSession(const auth::Claims& caller,
                                      const std::string& id);
  // For ReadRecording: a session the caller may read that has a
  // recording. The caller opens it, then calls AuditRecordingRead.
  Result<catalog::Session> RecordingToRead(const auth::Claims& caller,
                                           const std::string& id);
  void AuditRecordingRead(const auth::Claims& caller,
                          const catalog::Session& session, uint64_t offset);
  Result<std::vector<catalog::AuditEvent>> ListAudit(
      const auth::Claims& caller, const catalog::AuditFilter& filter);

 private:
  // A session `caller` may read (own or admin), by its id or by a unique
  // prefix of it among the sessions `caller` may read (kInvalidArgument,
  // naming some, when several match).
  Result<catalog::Session> ReadableSession(const auth::Claims& caller,
                                           const std::string& id,
                                           std::string_view method);
  // The host certificate line for a node's host key blob and address.
  Result<std::string> SignHostCert(const std::string& node,
                                   const std::string& key_blob,
                                   const std::string& addr);

  ClusterOptions opt_;
};

}  // namespace mez::cluster

#endif  // MEZ_CLUSTER_CLUSTER_H_
