// IngestManager with real storage (LocalStore), a real SQLite catalog and
// real tokens, driven directly (no gRPC) so that timing is under a fake
// clock.
#include "libmez/rpc/ingest.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "libmez/record/gzip.h"
#include "libmez/record/pcap_reader.h"
#include "libmez/util/file.h"

namespace mez::rpc {
namespace {

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mez_ingest_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto pem = auth::GenerateEd25519Pem();
    ASSERT_TRUE(pem.ok());
    signer_ = std::move(auth::TokenSigner::FromPem(*pem).value());
    verifier_ = std::move(
        auth::TokenVerifier::FromPublicPem(signer_->PublicKeyPem(), "mezite")
            .value());
    store_ = std::move(store::LocalStore::New(dir_ + "/rec").value());
    catalog_ = std::move(catalog::OpenSqliteCatalog(dir_ + "/c.db").value());
    alice_ = *auth::IssueToken(*signer_, "mezite", auth::Role::kUser, "alice",
                               {"root"}, 3600, &clock_);
  }
  void TearDown() override {
    manager_.reset();
    ASSERT_EQ(std::system(("rm -rf " + dir_).c_str()), 0);
  }
  void Make(RecordingConfig rec = {}) {
    IngestOptions o;
    o.recording = rec;
    o.store = store_.get();
    o.catalog = catalog_.get();
    o.verifier = verifier_.get();
    o.clock = &clock_;
    manager_ = std::make_unique<IngestManager>(o);
  }
  StreamHeader Tcpip(const std::string& id, const std::string& conn = "c1") {
    StreamHeader h;
    h.session_id = id;
    h.connection_id = conn;
    h.user_token = alice_;
    h.kind = 3;
    h.dst_host = "db.internal";
    h.dst_port = 5432;
    h.node = "web-01";
    return h;
  }
  std::unique_ptr<IngestStream> Begin(const StreamHeader& h) {
    auto s = manager_->Begin(h, Caller{"web-01", auth::Role::kNode});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  record::Reassembly Flows(const std::string& key) {
    auto reader = record::PcapReader::OpenFile(dir_ + "/rec/" + key);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    auto flows = record::ReassembleFlows(reader->get());
    EXPECT_TRUE(flows.ok()) << flows.status().ToString();
    return flows.ok() ? *flows : record::Reassembly{};
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<auth::TokenSigner> signer_;
  std::unique_ptr<auth::TokenVerifier> verifier_;
  std::unique_ptr<store::LocalStore> store_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<IngestManager> manager_;
  std::string alice_;
};

TEST_F(IngestTest, IdlePcapIsClosedAfterTheTimeout) {
  RecordingConfig rec;
  rec.pcap_idle_timeout_us = 60'000'000;
  Make(rec);
  for (const char* id : {"a", "b"}) {
    auto s = Begin(Tcpip(id));
    ASSERT_TRUE(
        s->Chunk(10, ChunkDirection::kIn, std::string("hi ") + id).ok());
    ASSERT_TRUE(s->Finish(true).ok());
  }
  EXPECT_EQ(manager_->open_pcaps(), 1);
  clock_.Advance(59'000'000);
  manager_->Tick();
  EXPECT_EQ(manager_->open_pcaps(), 1);
  clock_.Advance(1'000'000);
  manager_->Tick();
  EXPECT_EQ(manager_->open_pcaps(), 0);
  auto flows = Flows("alice/tcpip/c1_db.internal_5432.pcap");
  ASSERT_EQ(flows.flows.size(), 2u);
  EXPECT_EQ(flows.flows[1].client_to_server, "hi b");
  EXPECT_TRUE(flows.flows[0].client_fin);
  EXPECT_TRUE(flows.flows[0].server_fin);
}

TEST_F(IngestTest, EndConnectionWaitsForOpenChannelsThenStartsANewFile) {
  Make();
  auto s = Begin(Tcpip("a"));
  ASSERT_TRUE(s->Chunk(1, ChunkDirection::kOut, "payload").ok());
  EXPECT_EQ(manager_->EndConnection("c1"), 1);
  EXPECT_EQ(manager_->open_pcaps(), 1);  // "a" is still writing.
  ASSERT_TRUE(s->Chunk(2, ChunkDirection::kOut, " more").ok());
  ASSERT_TRUE(s->Finish(true).ok());
  EXPECT_EQ(manager_->open_pcaps(), 0);
  EXPECT_EQ(
      Flows("alice/tcpip/c1_db.internal_5432.pcap").flows[0].server_to_client,
      "payload more");
  // The same connection and destination later: a new file, not an append.
  auto t = Begin(Tcpip("b"));
  EXPECT_EQ(t->storage_key(), "alice/tcpip/c1_db.internal_5432.1.pcap");
  ASSERT_TRUE(t->Finish(true).ok());
  // The catalog names the file that was written, not the first choice.
  auto row = catalog_->GetSession("b");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->storage_key, "alice/tcpip/c1_db.internal_5432.1.pcap");
}

TEST_F(IngestTest, RefusedForwardIsSynAnsweredByRst) {
  Make();
  auto s = Begin(Tcpip("a"));
  ASSERT_TRUE(s->Exit(5, 1).ok());
  ASSERT_TRUE(s->Finish(true).ok());
  manager_->EndConnection("c1");
  auto flows = Flows("alice/tcpip/c1_db.internal_5432.pcap");
  ASSERT_EQ(flows.flows.size(), 1u);
  EXPECT_TRUE(flows.flows[0].refused);
}

TEST_F(IngestTest, EmptyChunkHalfClosesOneDirection) {
  Make();
  auto s = Begin(Tcpip("a"));
  ASSERT_TRUE(s->Chunk(1, ChunkDirection::kIn, "request").ok());
  ASSERT_TRUE(s->Chunk(2, ChunkDirection::kIn, "").ok());
  EXPECT_FALSE(s->Chunk(3, ChunkDirection::kIn, "late").ok());
  ASSERT_TRUE(s->Chunk(4, ChunkDirection::kOut, "response").ok());
  ASSERT_TRUE(s->Finish(true).ok());
  manager_->EndConnection("c1");
  auto f = Flows("alice/tcpip/c1_db.internal_5432.pcap").flows.at(0);
  EXPECT_EQ(f.client_to_server, "request");
  EXPECT_EQ(f.server_to_client, "response");
  EXPECT_TRUE(f.client_fin);
}

TEST_F(IngestTest, GzipIsFlushedWithinASecondByTheTimer) {
  RecordingConfig rec;
  rec.gzip = true;
  Make(rec);
  StreamHeader h = Tcpip("g");
  h.kind = 1;
  h.width = 80;
  h.height = 24;
  auto s = Begin(h);
  std::string path = dir_ + "/rec/alice/shell/g.cast.gz";
  auto readable = [&] {
    record::GunzipSource src(
        std::make_unique<record::StringSource>(*ReadFile(path)));
    std::string out;
    char buf[4096];
    for (;;) {
      auto n = src.Read(buf, sizeof(buf));
      if (!n.ok() || *n == 0) break;
      out.append(buf, *n);
    }
    return out;
  };
  ASSERT_TRUE(s->Chunk(100, ChunkDirection::kOut, "marker-1").ok());
  manager_->Tick();
  EXPECT_EQ(readable().find("marker-1"), std::string::npos);
  clock_.Advance(1'000'000);
  manager_->Tick();
  EXPECT_NE(readable().find("marker-1"), std::string::npos);
  ASSERT_TRUE(s->Finish(true).ok());
}

TEST_F(IngestTest, AStreamDroppedWithoutFinishIsIncomplete) {
  Make();
  StreamHeader h = Tcpip("gone");
  h.kind = 2;
  h.command = "sleep 100";
  {
    auto s = Begin(h);
    ASSERT_TRUE(s->Chunk(1, ChunkDirection::kOut, "partial").ok());
  }
  auto row = catalog_->GetSession("gone");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->status, catalog::SessionStatus::kIncomplete);
  EXPECT_EQ(row->bytes, 7u);
  EXPECT_EQ(manager_->open_streams(), 0);
}

TEST_F(IngestTest, RecordingDisabledStoresNothingButAudits) {
  RecordingConfig rec;
  rec.enabled = false;
  Make(rec);
  StreamHeader h = Tcpip("off");
  h.kind = 2;
  h.command = "id";
  auto s = Begin(h);
  ASSERT_TRUE(s->Chunk(1, ChunkDirection::kOut, "uid=0").ok());
  ASSERT_TRUE(s->Finish(true).ok());
  EXPECT_EQ(
      std::system(("test -z \"$(find " + dir_ + "/rec -type f)\"").c_str()), 0);
  catalog::AuditFilter f;
  f.session_id = "off";
  EXPECT_EQ(catalog_->ListAudit(f)->size(), 2u);
}

}  // namespace
}  // namespace mez::rpc
