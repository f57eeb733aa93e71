// UploadManager driven directly: pieces, resume offsets, hash checks,
// malformed spools, and the replay through a real IngestManager, LocalStore
// and SQLite catalog. The spool format's own tests: libmez/spool/.
#include "libmez/ingest/upload.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "libmez/ingest/proto_convert.h"
#include "libmez/spool/spool.h"
#include "libmez/util/file.h"

namespace mez::ingest {
namespace {

namespace pb = mezite::v1;

pb::RecordFrame Header(const std::string& id, const std::string& token,
                       int64_t started_us) {
  pb::RecordFrame f;
  auto* h = f.mutable_header();
  h->set_session_id(id);
  h->set_connection_id("conn1");
  h->set_user_token(token);
  h->set_started_at_us(started_us);
  h->set_kind(pb::SESSION_KIND_SHELL);
  h->set_width(80);
  h->set_height(24);
  h->set_node("web-01");
  h->set_login("root");
  return f;
}

pb::RecordFrame Chunk(int64_t us, const std::string& data) {
  pb::RecordFrame f;
  f.mutable_chunk()->set_offset_us(us);
  f.mutable_chunk()->set_direction(pb::DIRECTION_OUT);
  f.mutable_chunk()->set_data(data);
  return f;
}

pb::RecordFrame Exit(int64_t us, int status) {
  pb::RecordFrame f;
  f.mutable_exit()->set_offset_us(us);
  f.mutable_exit()->set_exit_status(status);
  return f;
}

// An events frame of one line (docs/formats/enhanced-events.md).
pb::RecordFrame Events(int64_t us, const std::string& line) {
  pb::RecordFrame f;
  f.mutable_events()->set_offset_us(us);
  f.mutable_events()->add_lines(line);
  return f;
}

class UploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mez_spool_test.XXXXXX";
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
    // alice's recording grant for web-01, as her certificate carries it.
    catalog::User alice;
    alice.name = "alice";
    alice.logins = {"root"};
    alice.role = "user";
    alice.id = catalog::NewIdentityId();
    ASSERT_TRUE(catalog_->CreateUser(alice).ok());
    auth::Claims grant;
    grant.subject = "alice";
    grant.role = auth::Role::kSession;
    grant.uid = alice.id;
    grant.audience = "web-01";
    grant.logins = {"root"};
    alice_ = *auth::IssueToken(*signer_, "mezite", grant, 600, &clock_);
    IngestOptions o;
    o.store = store_.get();
    o.catalog = catalog_.get();
    o.verifier = verifier_.get();
    o.clock = &clock_;
    ingest_ = std::make_unique<IngestManager>(o);
    UploadOptions u;
    u.root = dir_ + "/uploads";
    u.ingest = ingest_.get();
    u.catalog = catalog_.get();
    u.store = store_.get();
    u.verifier = verifier_.get();
    u.clock = &clock_;
    uploads_ = std::move(UploadManager::New(u).value());
  }
  void TearDown() override {
    uploads_.reset();
    ingest_.reset();
    ASSERT_EQ(std::system(("rm -rf " + dir_).c_str()), 0);
  }
  // A spool of a short shell session; returns its path.
  // `events`: event lines, each sent as an events frame after the first
  // chunk.
  std::string MakeSpool(const std::string& id, bool end = true,
                        const std::vector<std::string>& events = {}) {
    std::string path = dir_ + "/" + id + ".spool";
    auto w = spool::SpoolWriter::Create(
        path, Header(id, alice_, clock_.WallMicros() - 5'000'000));
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_TRUE((*w)->Append(Chunk(1000, "$ echo hi\r\nhi\r\n")).ok());
    for (const auto& e : events) {
      EXPECT_TRUE((*w)->Append(Events(1500, e)).ok());
    }
    EXPECT_TRUE((*w)->Append(Chunk(2500, "\033[31mred\033[0m\r\n")).ok());
    EXPECT_TRUE((*w)->Append(Exit(3000, 0)).ok());
    if (end) {
      EXPECT_TRUE((*w)->End().ok());
    }
    return path;
  }
  Result<UploadState> Upload(const std::string& path, uint64_t from,
                             uint64_t to) {
    std::string bytes = *ReadFile(path);
    std::string sha = *spool::FileSha256(path);
    std::string id = path.substr(path.rfind('/') + 1);
    id = id.substr(0, id.find('.'));
    MEZ_ASSIGN_OR_RETURN(auto w,
                         uploads_->Begin(node_, id, bytes.size(), sha, from));
    MEZ_RETURN_IF_ERROR(
        w->Append(std::string_view(bytes).substr(from, to - from)));
    return w->Finish();
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<auth::TokenSigner> signer_;
  std::unique_ptr<auth::TokenVerifier> verifier_;
  std::unique_ptr<store::LocalStore> store_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<IngestManager> ingest_;
  std::unique_ptr<UploadManager> uploads_;
  std::string alice_;
  Caller node_{"web-01", auth::Role::kNode};
};

TEST_F(UploadTest, UploadInPiecesReplaysToTheSameCastAsALiveStream) {
  std::string path = MakeSpool("s4");
  uint64_t size = ReadFile(path)->size();
  std::string sha = *spool::FileSha256(path);

  auto st = uploads_->GetStatus(node_, "s4", size, sha);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->received, 0u);
  EXPECT_FALSE(st->complete);

  auto first = Upload(path, 0, 20);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->received, 20u);
  EXPECT_FALSE(first->complete);
  // Resuming anywhere but where the server's copy ends is refused.
  auto wrong = Upload(path, 10, size);
  EXPECT_EQ(wrong.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(wrong.status().message().find("holds 20 bytes"), std::string::npos)
      << wrong.status().ToString();

  auto done = Upload(path, 20, size);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(done->complete);
  EXPECT_EQ(done->storage_key, "alice/shell/s4.cast");
  EXPECT_EQ(done->sha256, sha);

  // The same frames through a live stream give the same bytes.
  StreamHeader h = HeaderFromProto(Header("live", alice_, 0).header());
  h.started_at_us = clock_.WallMicros() - 5'000'000;
  auto live = ingest_->Begin(h, node_);
  ASSERT_TRUE(live.ok()) << live.status().ToString();
  ASSERT_TRUE(
      (*live)->Chunk(1000, Direction::kOut, "$ echo hi\r\nhi\r\n").ok());
  ASSERT_TRUE(
      (*live)->Chunk(2500, Direction::kOut, "\033[31mred\033[0m\r\n").ok());
  ASSERT_TRUE((*live)->Exit(3000, 0).ok());
  ASSERT_TRUE((*live)->Finish(true).ok());
  std::string uploaded = *ReadFile(dir_ + "/rec/alice/shell/s4.cast");
  std::string streamed = *ReadFile(dir_ + "/rec/alice/shell/live.cast");
  EXPECT_EQ(uploaded, streamed);

  auto row = catalog_->GetSession("s4");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->status, catalog::SessionStatus::kComplete);
  EXPECT_EQ(row->ended_us, row->started_us + 3000);

  // Asking again (the node lost the answer) says complete; no second copy.
  auto again = uploads_->GetStatus(node_, "s4", size, sha);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->complete);
  EXPECT_EQ(again->storage_key, "alice/shell/s4.cast");
  EXPECT_EQ(Upload(path, 0, size).status().code(), Code::kAlreadyExists);
}

TEST_F(UploadTest, HashMismatchDropsTheCopy) {
  std::string path = MakeSpool("s5");
  std::string bytes = *ReadFile(path);
  std::string sha = *spool::FileSha256(path);
  auto w = uploads_->Begin(node_, "s5", bytes.size(), sha, 0);
  ASSERT_TRUE(w.ok());
  std::string flipped = bytes;
  flipped[flipped.size() - 6] ^= 1;
  ASSERT_TRUE((*w)->Append(flipped).ok());
  auto r = (*w)->Finish();
  EXPECT_EQ(r.status().code(), Code::kDataLoss);
  EXPECT_NE(r.status().message().find("again"), std::string::npos);
  auto st = uploads_->GetStatus(node_, "s5", bytes.size(), sha);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->received, 0u);
  EXPECT_FALSE(catalog_->GetSession("s5").ok());
}

TEST_F(UploadTest, MalformedSpoolIsRefusedAndKeptAside) {
  std::string path = dir_ + "/s6.spool";
  std::string head =
      ReadFile(MakeSpool("s6x"))->substr(0, spool::kSpoolHeaderBytes);
  ASSERT_TRUE(AtomicWriteFile(
                  path, head + std::string("\x03\0\0\0", 4) + "\xff\xff\xff")
                  .ok());
  auto r = Upload(path, 0, ReadFile(path)->size());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("refused"), std::string::npos);
  struct stat st;
  EXPECT_EQ(stat((dir_ + "/uploads/web-01/s6.bad").c_str(), &st), 0);
}

TEST_F(UploadTest, BadRequestsAreRefusedWithoutTouchingDisk) {
  std::string sha(64, 'a');
  EXPECT_EQ(uploads_->Begin(node_, "../x", 100, sha, 0).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(uploads_->Begin(node_, "s7", 100, "ABC", 0).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(uploads_->Begin(node_, "s7", 5, sha, 0).status().code(),
            Code::kInvalidArgument);
  Caller user{"alice", auth::Role::kUser};
  EXPECT_EQ(uploads_->Begin(user, "s7", 100, sha, 0).status().code(),
            Code::kPermissionDenied);
  Caller odd{"../etc", auth::Role::kNode};
  EXPECT_EQ(uploads_->Begin(odd, "s7", 100, sha, 0).status().code(),
            Code::kInvalidArgument);
  // One piece at a time per session.
  auto a = uploads_->Begin(node_, "s7", 100, sha, 0);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(uploads_->Begin(node_, "s7", 100, sha, 0).status().code(),
            Code::kFailedPrecondition);
  EXPECT_EQ((*a)->Append(std::string(101, 'x')).code(), Code::kOutOfRange);
}

TEST_F(UploadTest, ReplayCutShortIsRedone) {
  std::string path = MakeSpool("s8");
  // A replay that died half way: a row still "recording" and a file.
  StreamHeader h = HeaderFromProto(Header("s8", alice_, 0).header());
  h.started_at_us = clock_.WallMicros() - 5'000'000;
  {
    auto partial = ingest_->Begin(h, node_);
    ASSERT_TRUE(partial.ok());
    ASSERT_TRUE((*partial)->Chunk(1000, Direction::kOut, "$ ec").ok());
    // Abandoned without Finish, as a crash would leave it.
    ASSERT_TRUE(catalog_->MarkInterruptedSessions(clock_.WallMicros()).ok());
    ASSERT_TRUE((*partial)->Finish(false).ok());
  }
  auto done = Upload(path, 0, ReadFile(path)->size());
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(done->complete);
  std::string cast = *ReadFile(dir_ + "/rec/alice/shell/s8.cast");
  EXPECT_NE(cast.find("\\u001b[31mred"), std::string::npos) << cast;
  auto row = catalog_->GetSession("s8");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->status, catalog::SessionStatus::kComplete);
}

TEST_F(UploadTest, TokenIsCheckedAtTheSessionStart) {
  // The session started while the grant was valid; it expired since.
  std::string path = MakeSpool("s9");
  clock_.Advance(7200LL * 1'000'000);
  auto done = Upload(path, 0, ReadFile(path)->size());
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(done->complete);
}

// Node mode: events frames in the spool are stored beside the recording
// as a live stream's are.
TEST_F(UploadTest, UploadedEventsAreStoredBesideTheRecording) {
  int64_t start = clock_.WallMicros() - 5'000'000;
  std::string exec = "{\"type\":\"exec\",\"seq\":1,\"time_unix_ns\":" +
                     std::to_string((start + 1200) * 1000) +
                     ",\"pid\":7,\"path\":\"/usr/bin/echo\",\"argv\":[\"echo\","
                     "\"hi\"]}";
  std::string path = MakeSpool("e1", true, {exec});
  auto done = Upload(path, 0, ReadFile(path)->size());
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  auto events = ReadFile(dir_ + "/rec/alice/shell/e1.events");
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  EXPECT_NE(events->find("{\\\"offset_us\\\":1200,\\\"type\\\":\\\"exec\\\""),
            std::string::npos)
      << *events;
  catalog::AuditFilter f;
  f.type = "session.command";
  f.session_id = "e1";
  EXPECT_EQ(catalog_->ListAudit(f)->size(), 1u);
}

// A bad events line anywhere refuses the spool before the replay touches
// anything: no session row, no file.
TEST_F(UploadTest, ABadEventsLineRefusesTheSpoolBeforeAnythingIsStored) {
  std::string path = MakeSpool("e2", true, {"{\"type\":\"exec\"}"});
  auto r = Upload(path, 0, ReadFile(path)->size());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("seq"), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(catalog_->GetSession("e2").status().code(), Code::kNotFound);
  EXPECT_NE(access((dir_ + "/rec/alice/shell/e2.cast").c_str(), F_OK), 0);
}

// A proxy's upload (an agentless node) cannot carry events.
TEST_F(UploadTest, AProxysSpoolWithEventsIsRefused) {
  std::string path = MakeSpool("e3", true, {"{\"type\":\"loss\",\"seq\":0}"});
  std::string bytes = *ReadFile(path);
  Caller proxy{"proxy-1", auth::Role::kProxy};
  auto w =
      uploads_->Begin(proxy, "e3", bytes.size(), *spool::FileSha256(path), 0);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE((*w)->Append(bytes).ok());
  auto r = (*w)->Finish();
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("node's agent"), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(catalog_->GetSession("e3").status().code(), Code::kNotFound);
}

// An incomplete recording replaced by its upload loses its old events file
// with it (store::DeleteRecording), and gets the upload's.
TEST_F(UploadTest, ReplacingARecordingReplacesItsEventsFile) {
  StreamHeader h = HeaderFromProto(Header("e4", alice_, 0).header());
  h.started_at_us = clock_.WallMicros() - 5'000'000;
  {
    auto partial = ingest_->Begin(h, node_);
    ASSERT_TRUE(partial.ok());
    std::vector<std::string_view> lines = {
        "{\"type\":\"exec\",\"seq\":1,\"path\":\"/old/prog\"}"};
    ASSERT_TRUE((*partial)->Events(100, lines).ok());
    ASSERT_TRUE((*partial)->Finish(false).ok());
  }
  ASSERT_NE(ReadFile(dir_ + "/rec/alice/shell/e4.events")->find("/old/prog"),
            std::string::npos);
  std::string path = MakeSpool("e4");  // Without events.
  auto done = Upload(path, 0, ReadFile(path)->size());
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_NE(access((dir_ + "/rec/alice/shell/e4.events").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace mez::ingest
