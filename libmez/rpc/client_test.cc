// rpc::ClusterClient against a small real gRPC server on 127.0.0.1: the
// bearer metadata it sends (and a renewal reaching the next call), the
// mapping of every gRPC status the callers rely on, a server that is not
// there, and the Record and Upload streams.
#include "libmez/rpc/client.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "libmez/rpc/channel.h"
#include "libmez/rpc/client_streams.h"
#include "libmez/rpc/grpc_status.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "mezite/v1/recording.grpc.pb.h"

namespace mez::rpc {
namespace {

namespace pb = mezite::v1;

std::string Authorization(grpc::ServerContext* ctx) {
  auto it = ctx->client_metadata().find("authorization");
  if (it == ctx->client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// GetConfig echoes the caller's authorization metadata as the value, or
// fails with the gRPC code named by the key ("code:14" is UNAVAILABLE).
class EchoCluster : public pb::Cluster::Service {
 public:
  grpc::Status GetConfig(grpc::ServerContext* ctx,
                         const pb::GetConfigRequest* req,
                         pb::ConfigValue* resp) override {
    if (req->key().rfind("code:", 0) == 0) {
      return grpc::Status(
          static_cast<grpc::StatusCode>(std::stoi(req->key().substr(5))),
          "refused by the test server");
    }
    resp->set_key(req->key());
    resp->set_value(Authorization(ctx));
    return grpc::Status::OK;
  }
};

// Record accepts a header from a caller with the right token (initial
// metadata "mezite-accepted"), then counts chunk bytes. Upload refuses a
// start frame without a session id as malformed.
class EchoRecording : public pb::Recording::Service {
 public:
  grpc::Status Record(grpc::ServerContext* ctx,
                      grpc::ServerReader<pb::RecordFrame>* reader,
                      pb::RecordSummary* summary) override {
    pb::RecordFrame frame;
    if (!reader->Read(&frame) || !frame.has_header()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no header");
    }
    if (Authorization(ctx) != "Bearer node-token") {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "not a node's credential");
    }
    ctx->AddInitialMetadata("mezite-accepted", "1");
    reader->SendInitialMetadata();
    summary->set_session_id(frame.header().session_id());
    while (reader->Read(&frame)) {
      summary->set_frames(summary->frames() + 1);
      summary->set_bytes(summary->bytes() + frame.chunk().data().size());
    }
    return grpc::Status::OK;
  }
  grpc::Status Upload(grpc::ServerContext*,
                      grpc::ServerReader<pb::UploadFrame>* reader,
                      pb::UploadStatus* reply) override {
    pb::UploadFrame frame;
    if (!reader->Read(&frame) || frame.start().session_id().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no session id");
    }
    reply->set_session_id(frame.start().session_id());
    while (reader->Read(&frame)) {
      reply->set_received(reply->received() + frame.data().size());
    }
    reply->set_complete(true);
    return grpc::Status::OK;
  }
};

class ClusterClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&cluster_);
    builder.RegisterService(&recording_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    addr_ = "127.0.0.1:" + std::to_string(port);
    token_ = std::make_shared<BearerToken>("node-token");
    client_ = std::make_unique<ClusterClient>(OpenPlaintextChannel(addr_),
                                              token_, addr_);
  }
  void TearDown() override {
    client_.reset();
    server_->Shutdown();
  }

  Status GetConfig(const std::string& key, std::string* value = nullptr) {
    pb::GetConfigRequest req;
    req.set_key(key);
    pb::ConfigValue resp;
    Status s = client_->GetConfig(req, &resp, std::chrono::seconds(5));
    if (value != nullptr) *value = resp.value();
    return s;
  }

  EchoCluster cluster_;
  EchoRecording recording_;
  std::unique_ptr<grpc::Server> server_;
  std::string addr_;
  std::shared_ptr<BearerToken> token_;
  std::unique_ptr<ClusterClient> client_;
};

TEST_F(ClusterClientTest, SendsTheBearerTokenAndItsRenewal) {
  std::string value;
  ASSERT_TRUE(GetConfig("k", &value).ok());
  EXPECT_EQ(value, "Bearer node-token");
  token_->Set("renewed");  // JoinNode's renewal: the next call has it.
  ASSERT_TRUE(GetConfig("k", &value).ok());
  EXPECT_EQ(value, "Bearer renewed");
}

TEST_F(ClusterClientTest, MapsTheCodesCallersRelyOn) {
  const std::map<grpc::StatusCode, Code> expected = {
      {grpc::StatusCode::UNAVAILABLE, Code::kUnavailable},
      {grpc::StatusCode::DEADLINE_EXCEEDED, Code::kUnavailable},
      {grpc::StatusCode::UNAUTHENTICATED, Code::kUnauthenticated},
      {grpc::StatusCode::PERMISSION_DENIED, Code::kPermissionDenied},
      {grpc::StatusCode::NOT_FOUND, Code::kNotFound},
      {grpc::StatusCode::INVALID_ARGUMENT, Code::kInvalidArgument},
      {grpc::StatusCode::ALREADY_EXISTS, Code::kAlreadyExists},
      {grpc::StatusCode::FAILED_PRECONDITION, Code::kFailedPrecondition},
      {grpc::StatusCode::DATA_LOSS, Code::kDataLoss},
      {grpc::StatusCode::INTERNAL, Code::kInternal},
      {grpc::StatusCode::UNKNOWN, Code::kInternal},
  };
  for (const auto& [grpc_code, code] : expected) {
    Status s = GetConfig("code:" + std::to_string(static_cast<int>(grpc_code)));
    EXPECT_EQ(s.code(), code)
        << static_cast<int>(grpc_code) << " " << s.ToString();
    EXPECT_NE(s.message().find("refused by the test server"), std::string::npos)
        << s.ToString();
  }
  // Connection problems name the server; the rest keep the server's words.
  Status unavailable = GetConfig("code:14");
  EXPECT_NE(unavailable.message().find("cannot reach mezrecd at " + addr_),
            std::string::npos)
      << unavailable.ToString();
  EXPECT_EQ(GetConfig("code:5").message(), "refused by the test server");
}

TEST(GrpcStatusTest, RefusedHintOnlyOnUnauthenticated) {
  grpc::Status refused(grpc::StatusCode::UNAUTHENTICATED, "token expired");
  EXPECT_EQ(FromGrpc(refused, "a:1", "run msh login").message(),
            "token expired (run msh login)");
  grpc::Status denied(grpc::StatusCode::PERMISSION_DENIED, "no");
  EXPECT_EQ(FromGrpc(denied, "a:1", "run msh login").message(), "no");
  EXPECT_TRUE(FromGrpc(grpc::Status::OK, "a:1").ok());
  grpc::Status gone(grpc::StatusCode::UNAVAILABLE, "connection refused");
  EXPECT_EQ(FromGrpc(gone, "").message(),
            "cannot reach mezrecd: connection refused");
}

TEST_F(ClusterClientTest, ConnectSendsTheIdentityAndExplainsARefusal) {
  auth::Identity id;
  id.auth_addr = addr_;
  id.token = "user-token";
  auto c = ClusterClient::Connect(id);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->identity().token, "user-token");
  pb::GetConfigRequest req;
  req.set_key("k");
  pb::ConfigValue resp;
  ASSERT_TRUE((*c)->GetConfig(req, &resp).ok());
  EXPECT_EQ(resp.value(), "Bearer user-token");
  req.set_key("code:16");  // UNAUTHENTICATED
  Status s = (*c)->GetConfig(req, &resp);
  EXPECT_EQ(s.code(), Code::kUnauthenticated);
  EXPECT_NE(s.message().find("msh login"), std::string::npos) << s.ToString();
}

TEST_F(ClusterClientTest, ServerNotThereIsUnavailableNamingIt) {
  server_->Shutdown();
  Status s = GetConfig("k");
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find(addr_), std::string::npos) << s.ToString();
}

TEST_F(ClusterClientTest, RecordStreamIsAcceptedAndSummarized) {
  pb::RecordSummary summary;
  auto stream = client_->Record(&summary);
  pb::RecordFrame header;
  header.mutable_header()->set_session_id("s1");
  ASSERT_TRUE(stream->Write(header));
  ASSERT_TRUE(stream->AwaitAccepted(std::chrono::seconds(10)));
  pb::RecordFrame chunk;
  chunk.mutable_chunk()->set_data("hello");
  ASSERT_TRUE(stream->Write(chunk, /*more_follow=*/true));
  ASSERT_TRUE(stream->Write(chunk));
  ASSERT_TRUE(stream->WritesDone());
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(summary.session_id(), "s1");
  EXPECT_EQ(summary.frames(), 2u);
  EXPECT_EQ(summary.bytes(), 10u);
}

TEST_F(ClusterClientTest, RecordStreamRefusedIsNotAccepted) {
  token_->Set("user-token");
  pb::RecordSummary summary;
  auto stream = client_->Record(&summary);
  pb::RecordFrame header;
  header.mutable_header()->set_session_id("s1");
  stream->Write(header);
  EXPECT_FALSE(stream->AwaitAccepted(std::chrono::seconds(10)));
  Status s = stream->Finish();
  EXPECT_EQ(s.code(), Code::kPermissionDenied) << s.ToString();
  EXPECT_EQ(s.message(), "not a node's credential");
}

TEST_F(ClusterClientTest, UploadStreamMapsARefusalToInvalidArgument) {
  pb::UploadStatus reply;
  auto good = client_->Upload(&reply);
  pb::UploadFrame frame;
  frame.mutable_start()->set_session_id("s1");
  ASSERT_TRUE(good->Write(frame));
  frame.set_data("abc");
  ASSERT_TRUE(good->Write(frame));
  ASSERT_TRUE(good->WritesDone());
  ASSERT_TRUE(good->Finish().ok());
  EXPECT_EQ(reply.received(), 3u);
  EXPECT_TRUE(reply.complete());

  auto bad = client_->Upload(&reply);
  bad->Write(pb::UploadFrame());
  bad->WritesDone();
  Status s = bad->Finish();
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
}

}  // namespace
}  // namespace mez::rpc
