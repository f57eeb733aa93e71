// Recording.Upload and EndRecordingSession attacked through the real gRPC
// API of the real mezrecd binary (issue #14, item 1): a node that uploads a
// spool naming another node's session, a live session, or a garbage user
// token must leave the stored recording, its catalog row and the audit log
// exactly as they were; a removed node cannot end recordings.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "libmez/catalog/catalog.h"
#include "libmez/spool/spool.h"
#include "libmez/util/file.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

namespace pb = mezite::v1;

// The user_token a Record or spool header carries for `user`'s session on
// `node`. TODO(merge): slice D makes ingest require a "session" grant;
// then this returns server.Grant(user, node).
std::string HeaderToken(const Mezrecd& server, const std::string& user,
                        const std::string& node) {
  return server.Grant(user, node);
}

std::string Text(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : std::string();
}

// A spool file's bytes: `header` and then `frames`, with the end marker.
std::string SpoolBytes(const std::string& dir, const pb::RecordFrame& header,
                       const std::vector<pb::RecordFrame>& frames) {
  std::string path = dir + "/tmp.spool";
  unlink(path.c_str());
  auto w = spool::SpoolWriter::Create(path, header);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  for (const auto& f : frames) EXPECT_TRUE((*w)->Append(f).ok());
  EXPECT_TRUE((*w)->End().ok());
  w->reset();
  std::string bytes = *ReadFile(path);
  unlink(path.c_str());
  return bytes;
}

class UploadTrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Mezrecd>(dir_.path() + "/data");
    ASSERT_TRUE(server_->Start()) << server_->log();
    for (const char* n : {"web-01", "web-02"}) {
      std::string err;
      server_->RegisterNode(n, "127.0.0.1:22", &err);
      ASSERT_EQ(err, "") << "registering " << n;
    }
    stub_ = server_->Stub();
    web01_ = server_->Token(auth::Role::kNode, "web-01");
    web02_ = server_->Token(auth::Role::kNode, "web-02");
  }
  void TearDown() override {
    stub_.reset();
    if (server_) server_->Stop();
  }

  std::unique_ptr<catalog::Catalog> Catalog() {
    auto c = catalog::OpenSqliteCatalog(server_->data_dir() + "/catalog.db");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  // The row, the recording's bytes and the session's audit events, as one
  // string to compare before and after an attack.
  std::string Snapshot(const std::string& id) {
    auto cat = Catalog();
    auto s = cat->GetSession(id);
    if (!s.ok()) return "no row: " + s.status().ToString();
    std::string out = s->id + "|" + s->user + "|" + s->node + "|" + s->kind +
                      "|" + std::string(catalog::SessionStatusName(s->status)) +
                      "|" + s->storage_key + "|" + std::to_string(s->bytes) +
                      "|" + std::to_string(s->started_us) + "|" +
                      std::to_string(s->ended_us) + "\n";
    auto file = ReadFile(server_->data_dir() + "/recordings/" + s->storage_key);
    out += file.ok() ? *file : "no file: " + file.status().ToString();
    catalog::AuditFilter f;
    f.session_id = id;
    auto events = cat->ListAudit(f);
    for (const auto& e : *events) {
      if (e.type.rfind("session.", 0) == 0) {
        out += "\n" + e.type + " " + e.node + " " + e.details;
      }
    }
    return out;
  }

  // Records a short shell session of web-01 to its end (complete).
  void RecordComplete(const std::string& id) {
    RecordCall call(stub_.get(), web01_);
    ASSERT_TRUE(call.Send(HeaderFrame(id, Alice(), pb::SESSION_KIND_SHELL)));
    ASSERT_TRUE(
        call.Send(ChunkFrame(1000, pb::DIRECTION_OUT, "real output\r\n")));
    ASSERT_TRUE(call.Send(ExitFrame(2000, 0)));
    grpc::Status s = call.Close();
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  std::string Alice() { return HeaderToken(*server_, "alice", "web-01"); }

  pb::RecordFrame SpoolHeader(const std::string& id, const std::string& token,
                              const std::string& node) {
    pb::RecordFrame h = HeaderFrame(id, token, pb::SESSION_KIND_SHELL);
    h.mutable_header()->set_node(node);
    h.mutable_header()->set_started_at_us(
        std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count() -
        1'000'000);
    return h;
  }

  grpc::Status Upload(const std::string& node_token, const std::string& id,
                      const std::string& spool, pb::UploadStatus* resp) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + node_token);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    auto w = stub_->Upload(&ctx, resp);
    pb::UploadFrame f;
    f.mutable_start()->set_session_id(id);
    f.mutable_start()->set_total_size(spool.size());
    auto sha = Sha256HexOf(spool);
    f.mutable_start()->set_sha256(sha);
    f.mutable_start()->set_offset(0);
    w->Write(f);
    f.set_data(spool);
    w->Write(f);
    w->WritesDone();
    return w->Finish();
  }

  std::string Sha256HexOf(const std::string& bytes) {
    std::string path = dir_.path() + "/sha.tmp";
    WriteFileOrDie(path, bytes);
    return *spool::FileSha256(path);
  }

  // A made-up payload for session `id` from `node`.
  std::string Forged(const std::string& id, const std::string& token,
                     const std::string& node) {
    return SpoolBytes(dir_.path(), SpoolHeader(id, token, node),
                      {ChunkFrame(1000, pb::DIRECTION_OUT, "FORGED\r\n"),
                       ExitFrame(2000, 0)});
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> server_;
  std::unique_ptr<pb::Recording::Stub> stub_;
  std::string web01_, web02_;
};

// web-02 names web-01's live and completed sessions in an upload, with a
// garbage user token and with a valid one: refused each time, and the rows,
// the files and the audit log stay byte for byte as they were.
TEST_F(UploadTrustTest, AnotherNodeCannotDeleteOrReplaceASession) {
  RecordComplete("done-1");
  RecordCall live(stub_.get(), web01_);
  ASSERT_TRUE(
      live.Send(HeaderFrame("live-1", Alice(), pb::SESSION_KIND_SHELL)));
  live.writer->WaitForInitialMetadata();
  ASSERT_TRUE(live.Send(ChunkFrame(1000, pb::DIRECTION_OUT, "live\r\n")));
  // The live chunk is in the file before the attack starts.
  std::string live_cast =
      server_->data_dir() + "/recordings/alice/shell/live-1.cast";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Text(live_cast).find("live") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_NE(Text(live_cast).find("live"), std::string::npos);

  for (const char* id : {"done-1", "live-1"}) {
    std::string before = Snapshot(id);
    ASSERT_EQ(before.find("no "), std::string::npos) << before;
    for (const std::string& token : {std::string("garbage"), Alice()}) {
      for (const char* named : {"web-01", "web-02"}) {
        pb::UploadStatus resp;
        grpc::Status s = Upload(web02_, id, Forged(id, token, named), &resp);
        EXPECT_FALSE(s.ok())
            << id << " token=" << token.substr(0, 8) << " named " << named;
        EXPECT_FALSE(resp.complete()) << id;
        EXPECT_EQ(Snapshot(id), before) << id << " named " << named;
      }
    }
  }
  // The live stream is untouched and still ends complete.
  ASSERT_TRUE(live.Send(ExitFrame(2000, 0)));
  grpc::Status s = live.Close();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Catalog()->GetSession("live-1")->status,
            catalog::SessionStatus::kComplete);
  auto cast =
      ReadFile(server_->data_dir() + "/recordings/alice/shell/live-1.cast");
  ASSERT_TRUE(cast.ok());
  EXPECT_EQ(cast->find("FORGED"), std::string::npos);
  EXPECT_NE(cast->find("live\\r\\n"), std::string::npos) << *cast;
}

// The owning node with a garbage user token deletes nothing, not even its
// own incomplete session; its own live session is never touched; a
// complete one is never replaced; an incomplete one is completed from the
// node's full copy only with a valid token.
TEST_F(UploadTrustTest, OwnNodeReplacesOnlyAVerifiedIncompleteSession) {
  {
    RecordCall cut(stub_.get(), web01_);
    ASSERT_TRUE(
        cut.Send(HeaderFrame("cut-1", Alice(), pb::SESSION_KIND_SHELL)));
    cut.writer->WaitForInitialMetadata();
    ASSERT_TRUE(cut.Send(ChunkFrame(1000, pb::DIRECTION_OUT, "part")));
    cut.ctx.TryCancel();
    cut.Close();
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Catalog()->GetSession("cut-1")->status ==
             catalog::SessionStatus::kRecording &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string before = Snapshot("cut-1");
  ASSERT_NE(before.find("|incomplete|"), std::string::npos) << before;
  pb::UploadStatus resp;
  EXPECT_FALSE(
      Upload(web01_, "cut-1", Forged("cut-1", "garbage", "web-01"), &resp)
          .ok());
  EXPECT_EQ(Snapshot("cut-1"), before);
  // Another user's token for alice's session: refused as well.
  std::string bob = HeaderToken(*server_, "bob", "web-01");
  EXPECT_FALSE(
      Upload(web01_, "cut-1", Forged("cut-1", bob, "web-01"), &resp).ok());
  EXPECT_EQ(Snapshot("cut-1"), before);

  // The full copy with a valid token completes it.
  std::string full =
      SpoolBytes(dir_.path(), SpoolHeader("cut-1", Alice(), "web-01"),
                 {ChunkFrame(1000, pb::DIRECTION_OUT, "part"),
                  ChunkFrame(2000, pb::DIRECTION_OUT, "-and-the-rest\r\n"),
                  ExitFrame(3000, 0)});
  grpc::Status s = Upload(web01_, "cut-1", full, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(resp.complete());
  auto row = Catalog()->GetSession("cut-1");
  EXPECT_EQ(row->status, catalog::SessionStatus::kComplete);
  EXPECT_EQ(row->node, "web-01");
  auto cast =
      ReadFile(server_->data_dir() + "/recordings/alice/shell/cut-1.cast");
  ASSERT_TRUE(cast.ok());
  EXPECT_NE(cast->find("part"), std::string::npos);
  EXPECT_NE(cast->find("-and-the-rest"), std::string::npos);

  // Complete now: another upload (other content) replaces nothing.
  std::string complete = Snapshot("cut-1");
  Upload(web01_, "cut-1", Forged("cut-1", Alice(), "web-01"), &resp);
  EXPECT_EQ(Snapshot("cut-1"), complete);
}

// A node's spool header cannot name another node for a new session: the
// recording's node comes from the credential.
TEST_F(UploadTrustTest, NewSessionNodeComesFromTheCredential) {
  pb::UploadStatus resp;
  grpc::Status s =
      Upload(web02_, "new-1", Forged("new-1", Alice(), "web-01"), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Catalog()->GetSession("new-1").status().code(), Code::kNotFound);
  s = Upload(web02_, "new-2",
             Forged("new-2", HeaderToken(*server_, "alice", "web-02"), ""),
             &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Catalog()->GetSession("new-2")->node, "web-02");
}

// EndRecordingSession runs the caller check that Record and Upload run: a
// removed node gets UNAUTHENTICATED.
TEST_F(UploadTrustTest, RemovedNodeCannotEndRecordings) {
  auto end = [&]() {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + web02_);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    pb::EndRecordingSessionRequest req;
    req.set_connection_id("conn-1");
    pb::EndRecordingSessionResponse resp;
    return stub_->EndRecordingSession(&ctx, req, &resp);
  };
  grpc::Status s = end();
  EXPECT_TRUE(s.ok()) << s.error_message();
  {
    auto cluster = pb::Cluster::NewStub(server_->Channel());
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization",
                    "Bearer " + server_->Token(auth::Role::kAdmin, "admin"));
    pb::RemoveNodeRequest req;
    req.set_name("web-02");
    pb::RemoveNodeResponse resp;
    grpc::Status rm = cluster->RemoveNode(&ctx, req, &resp);
    ASSERT_TRUE(rm.ok()) << rm.error_message();
  }
  s = end();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << s.error_message();
}

}  // namespace
}  // namespace mez::testing
