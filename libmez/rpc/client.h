// The one client of mezrecd's API, for everything that calls it: the CLIs
// (msh, mezctl, with a user's identity), mezd (with its node credential)
// and the proxy (with a proxy token). It adds the bearer metadata to every
// call, maps gRPC errors to Status values (grpc_status.h: connection
// problems are kUnavailable and name the server), and offers each RPC as a
// typed method on the protobuf messages, the streams as small objects
// (client_streams.h). Outside libmez/rpc/ nothing includes grpcpp or a
// *.grpc.pb.h: the channel is an opaque handle (channel.h).
//
// Thread-safe: a ClusterClient may be shared by threads; each call is
// independent. The BearerToken may be replaced while calls are made.
#ifndef MEZ_RPC_CLIENT_H_
#define MEZ_RPC_CLIENT_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "libmez/auth/identity.h"
#include "libmez/record/sink.h"
#include "libmez/rpc/bearer_token.h"
#include "libmez/rpc/channel.h"
#include "libmez/rpc/identity.h"
#include "libmez/util/status.h"
#include "mezite/v1/cluster.pb.h"
#include "mezite/v1/recording.pb.h"
#include "mezite/v1/web.pb.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace mez::rpc {

class RecordStream;
class UploadStream;

// How long a unary call may take; 0: no deadline.
using Timeout = std::chrono::milliseconds;
inline constexpr Timeout kDefaultTimeout = std::chrono::seconds(30);

class ClusterClient {
 public:
  // A client over `channel` (required, not null) sending `token` (null:
  // no credential) with every call. `server` is the address named in
  // connection errors ("": "mezrecd" alone).
  ClusterClient(std::shared_ptr<grpc::Channel> channel,
                std::shared_ptr<BearerToken> token, std::string server = "");
  ~ClusterClient();
  ClusterClient(const ClusterClient&) = delete;
  ClusterClient& operator=(const ClusterClient&) = delete;

  // For the CLIs: a channel to identity.auth_addr (TLS with its CA, or
  // plaintext when it has none) and its token. An UNAUTHENTICATED answer
  // says to run 'msh login' with a fresh identity file.
  static Result<std::unique_ptr<ClusterClient>> Connect(
      const auth::Identity& identity);

  // The identity Connect was given (empty for the other constructors).
  const auth::Identity& identity() const { return identity_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const std::shared_ptr<BearerToken>& token() const { return token_; }
  const std::string& server() const { return server_; }

  // Cluster service, unary calls. Errors as FromGrpc (grpc_status.h).
  Status WhoAmI(const mezite::v1::WhoAmIRequest& req,
                mezite::v1::WhoAmIResponse* resp,
                Timeout timeout = kDefaultTimeout) const;
  Status ListSessions(const mezite::v1::ListSessionsRequest& req,
                      mezite::v1::ListSessionsResponse* resp,
                      Timeout timeout = kDefaultTimeout) const;
  Status GetSession(const mezite::v1::GetSessionRequest& req,
                    mezite::v1::SessionInfo* resp,
                    Timeout timeout = kDefaultTimeout) const;
  Status ListAudit(const mezite::v1::ListAuditRequest& req,
                   mezite::v1::ListAuditResponse* resp,
                   Timeout timeout = kDefaultTimeout) const;
  Status GetConfig(const mezite::v1::GetConfigRequest& req,
                   mezite::v1::ConfigValue* resp,
                   Timeout timeout = kDefaultTimeout) const;
  Status SetConfig(const mezite::v1::SetConfigRequest& req,
                   mezite::v1::ConfigValue* resp,
                   Timeout timeout = kDefaultTimeout) const;
  Status AddUser(const mezite::v1::AddUserRequest& req,
                 mezite::v1::AddUserResponse* resp,
                 Timeout timeout = kDefaultTimeout) const;
  Status ListUsers(const mezite::v1::ListUsersRequest& req,
                   mezite::v1::ListUsersResponse* resp,
                   Timeout timeout = kDefaultTimeout) const;
  Status RemoveUser(const mezite::v1::RemoveUserRequest& req,
                    mezite::v1::RemoveUserResponse* resp,
                    Timeout timeout = kDefaultTimeout) const;
  Status ReissueUser(const mezite::v1::ReissueUserRequest& req,
                     mezite::v1::ReissueUserResponse* resp,
                     Timeout timeout = kDefaultTimeout) const;
  Status AddNode(const mezite::v1::AddNodeRequest& req,
                 mezite::v1::AddNodeResponse* resp,
                 Timeout timeout = kDefaultTimeout) const;
  Status ListNodes(const mezite::v1::ListNodesRequest& req,
                   mezite::v1::ListNodesResponse* resp,
                   Timeout timeout = kDefaultTimeout) const;
  Status RemoveNode(const mezite::v1::RemoveNodeRequest& req,
                    mezite::v1::RemoveNodeResponse* resp,
                    Timeout timeout = kDefaultTimeout) const;
  Status ExportCA(const mezite::v1::ExportCARequest& req,
                  mezite::v1::ExportCAResponse* resp,
                  Timeout timeout = kDefaultTimeout) const;
  Status SignUserCert(const mezite::v1::SignUserCertRequest& req,
                      mezite::v1::SignUserCertResponse* resp,
                      Timeout timeout = kDefaultTimeout) const;
  Status ResolveNode(const mezite::v1::ResolveNodeRequest& req,
                     mezite::v1::NodeInfo* resp,
                     Timeout timeout = kDefaultTimeout) const;
  // Web service: a single-use sign-in code for the web UI (web.proto).
  Status CreateSignInCode(const mezite::v1::CreateSignInCodeRequest& req,
                          mezite::v1::CreateSignInCodeResponse* resp,
                          Timeout timeout = kDefaultTimeout) const;
  Status JoinNode(const mezite::v1::JoinNodeRequest& req,
                  mezite::v1::JoinNodeResponse* resp,
                  Timeout timeout = kDefaultTimeout) const;
  Status NodeAudit(const mezite::v1::NodeAuditRequest& req,
                   mezite::v1::NodeAuditResponse* resp,
                   Timeout timeout = kDefaultTimeout) const;
  Status ProxyHello(const mezite::v1::ProxyHelloRequest& req,
                    mezite::v1::ProxyHelloResponse* resp,
                    Timeout timeout = kDefaultTimeout) const;
  Status AuthorizeProxyHop(const mezite::v1::ProxyHopRequest& req,
                           mezite::v1::NodeInfo* resp,
                           Timeout timeout = kDefaultTimeout) const;
  Status SignUpstreamCert(const mezite::v1::UpstreamCertRequest& req,
                          mezite::v1::UpstreamCertResponse* resp,
                          Timeout timeout = kDefaultTimeout) const;

  // Recording service, unary calls.
  Status EndRecordingSession(const mezite::v1::EndRecordingSessionRequest& req,
                             mezite::v1::EndRecordingSessionResponse* resp,
                             Timeout timeout = kDefaultTimeout) const;
  Status GetUploadStatus(const mezite::v1::UploadStatusRequest& req,
                         mezite::v1::UploadStatus* resp,
                         Timeout timeout = kDefaultTimeout) const;

  // Streams (client_streams.h). Opening never blocks; errors surface at
  // the first Write or at Finish. `summary`/`reply` is filled by a Finish
  // that succeeds; it and this client must outlive the stream.
  std::unique_ptr<RecordStream> Record(
      mezite::v1::RecordSummary* summary) const;
  std::unique_ptr<UploadStream> Upload(mezite::v1::UploadStatus* reply) const;

  // The plain asciicast bytes of session `id` from `offset`, streamed.
  // The first Read blocks until the server answers; errors (not found,
  // denied) surface there. `info`, when given, is filled once known.
  Result<std::unique_ptr<record::ByteSource>> ReadRecording(
      const std::string& id, uint64_t offset,
      mezite::v1::SessionInfo* info = nullptr) const;

  // The session's enhanced recording events as JSON lines (ReadRecording's
  // `events`), streamed; kNotFound when it has none.
  Result<std::unique_ptr<record::ByteSource>> ReadEvents(
      const std::string& id, mezite::v1::SessionInfo* info = nullptr) const;

  // The plain body of session `id`'s stored seek index
  // (docs/formats/seek-index.md), read whole; nullopt when it has none.
  // Bounded in size; the caller parses (and so checks) it.
  Result<std::optional<std::string>> ReadSeekIndex(
      const std::string& id, Timeout timeout = kDefaultTimeout) const;

  // The bearer metadata and the deadline (0: none) on `ctx`, and the
  // mapping of a finished call's status: for the streams in rpc/.
  void Prepare(grpc::ClientContext* ctx, Timeout timeout) const;
  const std::string& refused_hint() const { return refused_hint_; }

  struct Stubs;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<BearerToken> token_;
  std::string server_;
  std::string refused_hint_;
  auth::Identity identity_;
  std::unique_ptr<Stubs> stubs_;
};

}  // namespace mez::rpc

#endif  // MEZ_RPC_CLIENT_H_
