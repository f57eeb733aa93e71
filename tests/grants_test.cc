// Recording grants against a real mezrecd over real gRPC, as an attacker
// holding a node's credential or a lifted certificate would go (issue 14,
// items 6, 9 and 12): what a certificate carries, which user_token a
// recording accepts, where the recording's node and start come from, and
// that every read of a recording is audited.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "libmez/auth/ssh_cert.h"
#include "libmez/auth/token.h"
#include "libmez/spool/spool.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

namespace pb = mezite::v1;
using json = nlohmann::json;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class GrantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Mezrecd>(dir_.File("data"));
    ASSERT_TRUE(server_->Start()) << server_->log();
    for (const char* n : {"web-01", "web-02"}) {
      std::string err;
      server_->RegisterNode(n, "127.0.0.1:22", &err);
      ASSERT_EQ(err, "") << n;
    }
    ASSERT_FALSE(server_->IdentityId(auth::Role::kUser, "alice").empty());
    stub_ = server_->Stub();
    cluster_ = pb::Cluster::NewStub(server_->Channel());
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << server_->log();
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + token);
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(30));
    return ctx;
  }
  std::string Admin() const {
    return server_->Token(auth::Role::kAdmin, "admin");
  }
  // One Record call with `header`; its status.
  grpc::Status Record(const std::string& caller, const pb::RecordFrame& header,
                      const std::string& output = "hello\r\n") {
    RecordCall call(stub_.get(), caller);
    if (call.Send(header)) {
      call.Send(ChunkFrame(1000, pb::DIRECTION_OUT, output));
    }
    return call.Close();
  }
  Result<pb::SessionInfo> Session(const std::string& id) {
    pb::GetSessionRequest req;
    req.set_id(id);
    pb::SessionInfo info;
    grpc::Status s = cluster_->GetSession(Ctx(Admin()).get(), req, &info);
    if (!s.ok()) return Status(Code::kNotFound, s.error_message());
    return info;
  }
  std::vector<pb::AuditEventInfo> Audit(const std::string& type) {
    pb::ListAuditRequest req;
    req.set_type(type);
    pb::ListAuditResponse resp;
    grpc::Status s = cluster_->ListAudit(Ctx(Admin()).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.events().begin(), resp.events().end()};
  }
  grpc::Status SignUserCert(const std::string& token, const std::string& node,
                            pb::SignUserCertResponse* resp) {
    auto key = auth::GenerateSshUserKey();
    EXPECT_TRUE(key.ok());
    pb::SignUserCertRequest req;
    req.set_public_key_blob(key->second);
    req.set_login("root");
    req.set_node(node);
    return cluster_->SignUserCert(Ctx(token).get(), req, resp);
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> server_;
  std::unique_ptr<pb::Recording::Stub> stub_;
  std::unique_ptr<pb::Cluster::Stub> cluster_;
};

TEST_F(GrantsTest, ACertificateCarriesAGrantForItsNodeNeverTheApiToken) {
  std::string api = server_->Token(auth::Role::kUser, "alice");
  pb::SignUserCertResponse cert;
  grpc::Status s = SignUserCert(api, "web-01", &cert);
  ASSERT_TRUE(s.ok()) << s.error_message();

  // Decode the certificate as a node would and verify what it carries.
  std::string line = cert.certificate_line();
  size_t sp = line.find(' ');
  auto blob =
      Base64Decode(line.substr(sp + 1, line.find(' ', sp + 1) - sp - 1));
  ASSERT_TRUE(blob.ok());
  auto parsed = auth::ParseSshCert(*blob);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->principals, std::vector<std::string>{"root"});
  auto ext = parsed->extensions.find(std::string(auth::kMeziteTokenExtension));
  ASSERT_NE(ext, parsed->extensions.end());
  std::string grant = ext->second;
  EXPECT_NE(grant, api);
  auto pem = ReadFile(dir_.File("data/jwt.key"));
  auto name = ReadFile(dir_.File("data/cluster_name"));
  ASSERT_TRUE(pem.ok() && name.ok());
  std::string issuer = *name;
  while (!issuer.empty() && issuer.back() == '\n') issuer.pop_back();
  auto signer = auth::TokenSigner::FromPem(*pem);
  auto verifier =
      auth::TokenVerifier::FromPublicPem((*signer)->PublicKeyPem(), issuer);
  ASSERT_TRUE(verifier.ok());
  auto claims = (*verifier)->Verify(grant, NowUs() / 1'000'000);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->role, auth::Role::kSession);
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->uid, server_->IdentityId(auth::Role::kUser, "alice"));
  EXPECT_EQ(claims->audience, "web-01");
  EXPECT_EQ(claims->logins, std::vector<std::string>{"root"});
  // The certificate is short; the grant lives as long as the caller's
  // login (here 1 h), so channels opened late in a long connection are
  // still recorded.
  auto api_claims = (*verifier)->Verify(api, NowUs() / 1'000'000);
  ASSERT_TRUE(api_claims.ok()) << api_claims.status().ToString();
  EXPECT_EQ(claims->expires_at, api_claims->expires_at);
  EXPECT_LE(static_cast<int64_t>(parsed->valid_before) - claims->issued_at,
            600);

  // A grant lifted from a certificate is no bearer credential.
  pb::WhoAmIResponse me;
  EXPECT_FALSE(
      cluster_->WhoAmI(Ctx(grant).get(), pb::WhoAmIRequest(), &me).ok());
  pb::SignUserCertResponse again;
  EXPECT_FALSE(SignUserCert(grant, "web-01", &again).ok());
  EXPECT_FALSE(SignUserCert(grant, "web-02", &again).ok());

  // A certificate is for one registered node.
  EXPECT_EQ(SignUserCert(api, "", &again).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SignUserCert(api, "nowhere", &again).error_code(),
            grpc::StatusCode::NOT_FOUND);
  auto issued = Audit("cert.issue");
  ASSERT_EQ(issued.size(), 1u);
  EXPECT_EQ(json::parse(issued[0].details())["node"], "web-01");
}

TEST_F(GrantsTest, TheRecordingsNodeIsTheCallersCredentialNotTheHeader) {
  std::string web02 = server_->Token(auth::Role::kNode, "web-02");
  auto h = HeaderFrame("misattributed", server_->Grant("alice", "web-02"),
                       pb::SESSION_KIND_SHELL);
  h.mutable_header()->set_node("web-01");
  grpc::Status s = Record(web02, h);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto row = Session("misattributed");
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  EXPECT_EQ(row->node(), "web-02");
}

TEST_F(GrantsTest, ANodeCannotUseAnotherNodesGrantOrAnApiToken) {
  std::string web02 = server_->Token(auth::Role::kNode, "web-02");
  grpc::Status s =
      Record(web02, HeaderFrame("stolen", server_->Grant("alice", "web-01"),
                                pb::SESSION_KIND_SHELL));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << s.error_message();
  s = Record(web02,
             HeaderFrame("api", server_->Token(auth::Role::kUser, "alice"),
                         pb::SESSION_KIND_SHELL));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << s.error_message();
  EXPECT_NE(s.error_message().find("recording grant"), std::string::npos);
  EXPECT_FALSE(Session("stolen").ok());
  EXPECT_FALSE(Session("api").ok());
}

TEST_F(GrantsTest, ARemovedUsersGrantRecordsNoLiveSession) {
  std::string grant = server_->Grant("carol", "web-01");
  ASSERT_FALSE(grant.empty());
  pb::RemoveUserRequest rm;
  rm.set_name("carol");
  pb::RemoveUserResponse rm_resp;
  ASSERT_TRUE(cluster_->RemoveUser(Ctx(Admin()).get(), rm, &rm_resp).ok());
  grpc::Status s =
      Record(server_->Token(auth::Role::kNode, "web-01"),
             HeaderFrame("after-rm", grant, pb::SESSION_KIND_SHELL));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << s.error_message();
  EXPECT_FALSE(Session("after-rm").ok());
}

TEST_F(GrantsTest, AProxyNamesOnlyARegisteredAgentlessNode) {
  std::string proxy = server_->Token(auth::Role::kProxy, "px1");
  auto h = HeaderFrame("px-agent", server_->Grant("alice", "web-01"),
                       pb::SESSION_KIND_SHELL);
  h.mutable_header()->set_node("web-01");  // Runs mezd: records itself.
  grpc::Status s = Record(proxy, h);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << s.error_message();
  h = HeaderFrame("px-none", server_->Grant("alice", "nowhere"),
                  pb::SESSION_KIND_SHELL);
  h.mutable_header()->set_node("nowhere");
  s = Record(proxy, h);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_FALSE(Session("px-agent").ok());
  EXPECT_FALSE(Session("px-none").ok());
}

TEST_F(GrantsTest, AnUploadBackdatedBeforeItsGrantIsRefused) {
  std::string web01 = server_->Token(auth::Role::kNode, "web-01");
  std::string grant = server_->Grant("alice", "web-01");
  auto upload = [&](const std::string& sid, int64_t started_us) {
    std::string path = dir_.File(sid + ".spool");
    auto h = HeaderFrame(sid, grant, pb::SESSION_KIND_SHELL);
    h.mutable_header()->set_started_at_us(started_us);
    auto w = spool::SpoolWriter::Create(path, h);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_TRUE(
        (*w)->Append(ChunkFrame(1000, pb::DIRECTION_OUT, "$ id\r\n")).ok());
    EXPECT_TRUE((*w)->End().ok());
    std::string spool = *ReadFile(path);
    auto sha = spool::FileSha256(path);
    pb::UploadStatus resp;
    auto ctx = Ctx(web01);
    auto up = stub_->Upload(ctx.get(), &resp);
    pb::UploadFrame f;
    f.mutable_start()->set_session_id(sid);
    f.mutable_start()->set_total_size(spool.size());
    f.mutable_start()->set_sha256(*sha);
    up->Write(f);
    f.set_data(spool);
    up->Write(f);
    up->WritesDone();
    return up->Finish();
  };
  // 13 hours before the certificate existed, as in the report.
  grpc::Status s = upload("backdated", NowUs() - 13 * 3600'000'000LL);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(Session("backdated").ok());
  // The same spool dated within the grant is stored (the control).
  s = upload("in-window", NowUs() - 1'000'000);
  EXPECT_TRUE(s.ok()) << s.error_message();
  auto row = Session("in-window");
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  EXPECT_EQ(row->status(), "complete");
}

TEST_F(GrantsTest, EveryReadOfARecordingIsAuditedAtAnyOffset) {
  ASSERT_TRUE(Record(server_->Token(auth::Role::kNode, "web-01"),
                     HeaderFrame("read-me", server_->Grant("alice", "web-01"),
                                 pb::SESSION_KIND_SHELL))
                  .ok());
  for (uint64_t offset : {uint64_t{1}, uint64_t{0}}) {
    pb::ReadRecordingRequest req;
    req.set_id("read-me");
    req.set_offset(offset);
    auto ctx = Ctx(Admin());
    auto reader = cluster_->ReadRecording(ctx.get(), req);
    pb::RecordingBytes msg;
    std::string got;
    while (reader->Read(&msg)) got += msg.data();
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_FALSE(got.empty());
  }
  auto reads = Audit("session.recording.access");
  ASSERT_EQ(reads.size(), 2u);
  // Newest first.
  EXPECT_EQ(json::parse(reads[1].details())["offset"], 1);
  EXPECT_EQ(json::parse(reads[0].details())["offset"], 0);
  EXPECT_EQ(reads[1].session_id(), "read-me");
  EXPECT_EQ(reads[1].user(), "admin");
}

}  // namespace
}  // namespace mez::testing
