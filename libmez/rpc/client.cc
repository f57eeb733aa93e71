#include "libmez/rpc/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "libmez/rpc/client_streams.h"
#include "libmez/rpc/grpc_status.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "mezite/v1/recording.grpc.pb.h"
#include "mezite/v1/web.grpc.pb.h"

namespace mez::rpc {

namespace pb = mezite::v1;

struct ClusterClient::Stubs {
  std::unique_ptr<pb::Cluster::Stub> cluster;
  std::unique_ptr<pb::Recording::Stub> recording;
  std::unique_ptr<pb::Web::Stub> web;
};

namespace {

// The largest message a CLI takes (ReadRecording's pieces, long lists).
constexpr size_t kCliMaxReceiveBytes = 8 << 20;
// The largest seek index body taken (play::kMaxSeekIndexBytes, 108 MiB,
// and room to spare; the player checks it again).
constexpr size_t kMaxSeekIndexBody = 128 << 20;

// A ByteSource over a server stream of RecordingBytes.
class StreamSource : public record::ByteSource {
 public:
  StreamSource(const ClusterClient* client, pb::Cluster::Stub* stub,
               const std::string& id, uint64_t offset, pb::SessionInfo* info,
               bool seek_index = false, Timeout timeout = Timeout(0),
               bool events = false)
      : client_(client), info_(info) {
    client->Prepare(&ctx_, timeout);
    pb::ReadRecordingRequest req;
    req.set_id(id);
    req.set_offset(offset);
    req.set_seek_index(seek_index);
    req.set_events(events);
    reader_ = stub->ReadRecording(&ctx_, req);
  }
  ~StreamSource() override {
    if (!done_) {
      ctx_.TryCancel();
      reader_->Finish().ok();
    }
  }

  Result<size_t> Read(char* out, size_t n) override {
    while (pos_ == msg_.data().size()) {
      if (done_) return size_t{0};
      msg_.Clear();
      pos_ = 0;
      if (!reader_->Read(&msg_)) {
        done_ = true;
        MEZ_RETURN_IF_ERROR(FromGrpc(reader_->Finish(), client_->server(),
                                     client_->refused_hint()));
        return size_t{0};
      }
      if (msg_.has_session() && info_ != nullptr) *info_ = msg_.session();
    }
    size_t k = std::min(n, msg_.data().size() - pos_);
    std::memcpy(out, msg_.data().data() + pos_, k);
    pos_ += k;
    return k;
  }

  // Waits for the first message so that errors surface at open time.
  Status Prime() {
    char c;
    return Read(&c, 0).status();
  }

 private:
  const ClusterClient* client_;
  pb::SessionInfo* info_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<pb::RecordingBytes>> reader_;
  pb::RecordingBytes msg_;
  size_t pos_ = 0;
  bool done_ = false;
};

// One unary call on `stub` with the client's token and `timeout`.
template <typename Stub, typename Method, typename Req, typename Resp>
Status Unary(const ClusterClient& c, Stub* stub, Method method, const Req& req,
             Resp* resp, Timeout timeout) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx, timeout);
  return FromGrpc((stub->*method)(&ctx, req, resp), c.server(),
                  c.refused_hint());
}

}  // namespace

ClusterClient::ClusterClient(std::shared_ptr<grpc::Channel> channel,
                             std::shared_ptr<BearerToken> token,
                             std::string server)
    : channel_(std::move(channel)),
      token_(std::move(token)),
      server_(std::move(server)),
      stubs_(std::make_unique<Stubs>()) {
  stubs_->cluster = pb::Cluster::NewStub(channel_);
  stubs_->recording = pb::Recording::NewStub(channel_);
  stubs_->web = pb::Web::NewStub(channel_);
}

ClusterClient::~ClusterClient() = default;

Result<std::unique_ptr<ClusterClient>> ClusterClient::Connect(
    const auth::Identity& identity) {
  auto c = std::make_unique<ClusterClient>(
      OpenChannel(identity.auth_addr,
                  ChannelCredentialsFor(identity.tls_ca_pem),
                  kCliMaxReceiveBytes),
      std::make_shared<BearerToken>(identity.token), identity.auth_addr);
  c->identity_ = identity;
  c->refused_hint_ =
      "your identity was refused: run 'msh login' with a fresh identity file";
  return c;
}

void ClusterClient::Prepare(grpc::ClientContext* ctx, Timeout timeout) const {
  if (token_) token_->Authorize(ctx);
  if (timeout.count() > 0) {
    ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  }
}

#define MEZ_CLUSTER_UNARY(Name, Req, Resp)                                    \
  Status ClusterClient::Name(const pb::Req& req, pb::Resp* resp,              \
                             Timeout timeout) const {                         \
    return Unary(*this, stubs_->cluster.get(), &pb::Cluster::Stub::Name, req, \
                 resp, timeout);                                              \
  }
MEZ_CLUSTER_UNARY(WhoAmI, WhoAmIRequest, WhoAmIResponse)
MEZ_CLUSTER_UNARY(ListSessions, ListSessionsRequest, ListSessionsResponse)
MEZ_CLUSTER_UNARY(GetSession, GetSessionRequest, SessionInfo)
MEZ_CLUSTER_UNARY(ListAudit, ListAuditRequest, ListAuditResponse)
MEZ_CLUSTER_UNARY(GetConfig, GetConfigRequest, ConfigValue)
MEZ_CLUSTER_UNARY(SetConfig, SetConfigRequest, ConfigValue)
MEZ_CLUSTER_UNARY(AddUser, AddUserRequest, AddUserResponse)
MEZ_CLUSTER_UNARY(ListUsers, ListUsersRequest, ListUsersResponse)
MEZ_CLUSTER_UNARY(RemoveUser, RemoveUserRequest, RemoveUserResponse)
MEZ_CLUSTER_UNARY(ReissueUser, ReissueUserRequest, ReissueUserResponse)
MEZ_CLUSTER_UNARY(AddNode, AddNodeRequest, AddNodeResponse)
MEZ_CLUSTER_UNARY(ListNodes, ListNodesRequest, ListNodesResponse)
MEZ_CLUSTER_UNARY(RemoveNode, RemoveNodeRequest, RemoveNodeResponse)
MEZ_CLUSTER_UNARY(ExportCA, ExportCARequest, ExportCAResponse)
MEZ_CLUSTER_UNARY(SignUserCert, SignUserCertRequest, SignUserCertResponse)
MEZ_CLUSTER_UNARY(ResolveNode, ResolveNodeRequest, NodeInfo)
MEZ_CLUSTER_UNARY(JoinNode, JoinNodeRequest, JoinNodeResponse)

Status ClusterClient::CreateSignInCode(const pb::CreateSignInCodeRequest& req,
                                       pb::CreateSignInCodeResponse* resp,
                                       Timeout timeout) const {
  return Unary(*this, stubs_->web.get(), &pb::Web::Stub::CreateSignInCode, req,
               resp, timeout);
}
MEZ_CLUSTER_UNARY(NodeAudit, NodeAuditRequest, NodeAuditResponse)
MEZ_CLUSTER_UNARY(ProxyHello, ProxyHelloRequest, ProxyHelloResponse)
MEZ_CLUSTER_UNARY(AuthorizeProxyHop, ProxyHopRequest, NodeInfo)
MEZ_CLUSTER_UNARY(SignUpstreamCert, UpstreamCertRequest, UpstreamCertResponse)
#undef MEZ_CLUSTER_UNARY

Status ClusterClient::EndRecordingSession(
    const pb::EndRecordingSessionRequest& req,
    pb::EndRecordingSessionResponse* resp, Timeout timeout) const {
  return Unary(*this, stubs_->recording.get(),
               &pb::Recording::Stub::EndRecordingSession, req, resp, timeout);
}

Status ClusterClient::GetUploadStatus(const pb::UploadStatusRequest& req,
                                      pb::UploadStatus* resp,
                                      Timeout timeout) const {
  return Unary(*this, stubs_->recording.get(),
               &pb::Recording::Stub::GetUploadStatus, req, resp, timeout);
}

struct RecordStream::Impl {
  const ClusterClient* client;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientWriter<pb::RecordFrame>> writer;
};

RecordStream::RecordStream(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
RecordStream::~RecordStream() = default;

bool RecordStream::Write(const pb::RecordFrame& frame, bool more_follow) {
  grpc::WriteOptions options;
  if (more_follow) options.set_buffer_hint();
  return impl_->writer->Write(frame, options);
}

bool RecordStream::AwaitAccepted(std::chrono::microseconds timeout) {
  // mezrecd answers the header with initial metadata once it opened the
  // recording. A service that neither answers nor fails is given up on.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, timeout, [&] { return done; })) {
      impl_->ctx.TryCancel();
    }
  });
  impl_->writer->WaitForInitialMetadata();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  return impl_->ctx.GetServerInitialMetadata().count("mezite-accepted") > 0;
}

bool RecordStream::WritesDone() { return impl_->writer->WritesDone(); }

Status RecordStream::Finish() {
  return FromGrpc(impl_->writer->Finish(), impl_->client->server(),
                  impl_->client->refused_hint());
}

void RecordStream::TryCancel() { impl_->ctx.TryCancel(); }

std::unique_ptr<RecordStream> ClusterClient::Record(
    pb::RecordSummary* summary) const {
  auto impl = std::make_unique<RecordStream::Impl>();
  impl->client = this;
  Prepare(&impl->ctx, Timeout(0));
  impl->writer = stubs_->recording->Record(&impl->ctx, summary);
  return std::make_unique<RecordStream>(std::move(impl));
}

struct UploadStream::Impl {
  const ClusterClient* client;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientWriter<pb::UploadFrame>> writer;
};

UploadStream::UploadStream(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
UploadStream::~UploadStream() = default;

bool UploadStream::Write(const pb::UploadFrame& frame) {
  return impl_->writer->Write(frame);
}

bool UploadStream::WritesDone() { return impl_->writer->WritesDone(); }

Status UploadStream::Finish() {
  return FromGrpc(impl_->writer->Finish(), impl_->client->server(),
                  impl_->client->refused_hint());
}

void UploadStream::TryCancel() { impl_->ctx.TryCancel(); }

std::unique_ptr<UploadStream> ClusterClient::Upload(
    pb::UploadStatus* reply) const {
  auto impl = std::make_unique<UploadStream::Impl>();
  impl->client = this;
  Prepare(&impl->ctx, Timeout(0));
  impl->writer = stubs_->recording->Upload(&impl->ctx, reply);
  return std::make_unique<UploadStream>(std::move(impl));
}

Result<std::unique_ptr<record::ByteSource>> ClusterClient::ReadRecording(
    const std::string& id, uint64_t offset, pb::SessionInfo* info) const {
  auto src = std::make_unique<StreamSource>(this, stubs_->cluster.get(), id,
                                            offset, info);
  MEZ_RETURN_IF_ERROR(src->Prime());
  return std::unique_ptr<record::ByteSource>(std::move(src));
}

Result<std::unique_ptr<record::ByteSource>> ClusterClient::ReadEvents(
    const std::string& id, pb::SessionInfo* info) const {
  auto src = std::make_unique<StreamSource>(this, stubs_->cluster.get(), id, 0,
                                            info, false, Timeout(0), true);
  MEZ_RETURN_IF_ERROR(src->Prime());
  return std::unique_ptr<record::ByteSource>(std::move(src));
}

Result<std::optional<std::string>> ClusterClient::ReadSeekIndex(
    const std::string& id, Timeout timeout) const {
  StreamSource src(this, stubs_->cluster.get(), id, 0, nullptr, true, timeout);
  std::string body;
  char buf[1 << 16];
  for (;;) {
    auto n = src.Read(buf, sizeof(buf));
    if (!n.ok()) {
      if (n.status().code() == Code::kNotFound) {
        return std::optional<std::string>();
      }
      return n.status();
    }
    if (*n == 0) break;
    if (body.size() + *n > kMaxSeekIndexBody) {
      return DataLoss("the seek index of session " + id + " is larger than " +
                      std::to_string(kMaxSeekIndexBody) + " bytes");
    }
    body.append(buf, *n);
  }
  return std::optional<std::string>(std::move(body));
}

}  // namespace mez::rpc
