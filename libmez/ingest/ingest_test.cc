// IngestManager with real storage (LocalStore), a real SQLite catalog and
// real tokens, driven directly (no gRPC) so that timing is under a fake
// clock.
#include "libmez/ingest/ingest.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>

#include "libmez/record/gzip.h"
#include "libmez/record/pcap_reader.h"
#include "libmez/util/file.h"

namespace mez::ingest {
namespace {

const Caller kWeb01{"web-01", auth::Role::kNode};

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
    catalog::User alice;
    alice.name = "alice";
    alice.logins = {"root"};
    alice.role = "user";
    alice.id = catalog::NewIdentityId();
    ASSERT_TRUE(catalog_->CreateUser(alice).ok());
    alice_id_ = alice.id;
    alice_ = Grant("web-01");
  }
  // alice's recording grant for `node`, as SignUserCert issues it.
  std::string Grant(const std::string& node, int64_t ttl = 600) {
    auth::Claims c;
    c.subject = "alice";
    c.role = auth::Role::kSession;
    c.uid = alice_id_;
    c.audience = node;
    c.logins = {"root"};
    return *auth::IssueToken(*signer_, "mezite", c, ttl, &clock_);
  }
  void TearDown() override {
    manager_.reset();
    ASSERT_EQ(std::system(("rm -rf " + dir_).c_str()), 0);
  }
  void Make(RecordingConfig rec = {}, catalog::Catalog* cat = nullptr,
            std::function<void(const catalog::Session&)> on_end = nullptr) {
    IngestOptions o;
    o.on_end = std::move(on_end);
    o.recording = rec;
    o.store = store_.get();
    o.catalog = cat != nullptr ? cat : catalog_.get();
    o.retry_thread = false;
    o.verifier = verifier_.get();
    o.clock = &clock_;
    manager_ = std::make_unique<IngestManager>(o);
  }
  StreamHeader Tcpip(const std::string& id, const std::string& conn = "c1") {
    StreamHeader h;
    h.session_id = id;
    h.connection_id = conn;
    h.user_token = alice_;
    h.kind = ChannelKind::kTcpip;
    h.dst_host = "db.internal";
    h.dst_port = 5432;
    h.node = "web-01";
    return h;
  }
  std::unique_ptr<IngestStream> Begin(const StreamHeader& h) {
    auto s = manager_->Begin(h, kWeb01);
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
  std::string alice_id_;
  std::string alice_;  // alice's grant for web-01.
};

TEST_F(IngestTest, IdlePcapIsClosedAfterTheTimeout) {
  RecordingConfig rec;
  rec.pcap_idle_timeout_us = 60'000'000;
  Make(rec);
  for (const char* id : {"a", "b"}) {
    auto s = Begin(Tcpip(id));
    ASSERT_TRUE(s->Chunk(10, Direction::kIn, std::string("hi ") + id).ok());
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
  ASSERT_TRUE(s->Chunk(1, Direction::kOut, "payload").ok());
  EXPECT_EQ(manager_->EndConnection(kWeb01, "c1"), 1);
  EXPECT_EQ(manager_->open_pcaps(), 1);  // "a" is still writing.
  ASSERT_TRUE(s->Chunk(2, Direction::kOut, " more").ok());
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
  manager_->EndConnection(kWeb01, "c1");
  auto flows = Flows("alice/tcpip/c1_db.internal_5432.pcap");
  ASSERT_EQ(flows.flows.size(), 1u);
  EXPECT_TRUE(flows.flows[0].refused);
}

TEST_F(IngestTest, EmptyChunkHalfClosesOneDirection) {
  Make();
  auto s = Begin(Tcpip("a"));
  ASSERT_TRUE(s->Chunk(1, Direction::kIn, "request").ok());
  ASSERT_TRUE(s->Chunk(2, Direction::kIn, "").ok());
  EXPECT_FALSE(s->Chunk(3, Direction::kIn, "late").ok());
  ASSERT_TRUE(s->Chunk(4, Direction::kOut, "response").ok());
  ASSERT_TRUE(s->Finish(true).ok());
  manager_->EndConnection(kWeb01, "c1");
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
  h.kind = ChannelKind::kShell;
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
  ASSERT_TRUE(s->Chunk(100, Direction::kOut, "marker-1").ok());
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
  h.kind = ChannelKind::kExec;
  h.command = "sleep 100";
  {
    auto s = Begin(h);
    ASSERT_TRUE(s->Chunk(1, Direction::kOut, "partial").ok());
  }
  auto row = catalog_->GetSession("gone");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->status, catalog::SessionStatus::kIncomplete);
  EXPECT_EQ(row->bytes, 7u);
  EXPECT_EQ(manager_->open_streams(), 0);
}

// Output of a channel without a terminal is stored as a terminal shows it
// ("\n" -> "\r\n"); with a terminal, or an older agent's header that says
// nothing but names a TERM, the bytes are kept.
TEST_F(IngestTest, ExecWithoutATerminalStoresNewlinesAsCrLf) {
  Make();
  struct Case {
    const char* id;
    std::optional<bool> pty;
    const char* term;
    bool translated;
  };
  for (const Case& c :
       {Case{"nopty", false, "", true}, Case{"pty", true, "xterm", false},
        Case{"older-nopty", std::nullopt, "", true},
        Case{"older-pty", std::nullopt, "xterm", false}}) {
    StreamHeader h = Tcpip(c.id);
    h.kind = ChannelKind::kExec;
    h.command = "ls";
    h.pty = c.pty;
    h.term = c.term;
    auto s = Begin(h);
    ASSERT_NE(s, nullptr) << c.id;
    ASSERT_TRUE(s->Chunk(1, Direction::kOut, "a\nb\n").ok());
    ASSERT_TRUE(s->Finish(true).ok());
    auto cast = ReadFile(dir_ + "/rec/alice/exec/" + c.id + ".cast");
    ASSERT_TRUE(cast.ok()) << c.id;
    EXPECT_NE(cast->find(c.translated ? R"("a\r\nb\r\n")" : R"("a\nb\n")"),
              std::string::npos)
        << c.id << ": " << *cast;
  }
}

// mezrecd's seek indexer learns of every ended session, with the row as
// finished (after the file is closed), and nothing else is asked of it.
TEST_F(IngestTest, EndedSessionsAreHandedOnAfterTheFileIsClosed) {
  std::vector<catalog::Session> ended;
  Make({}, nullptr, [&](const catalog::Session& s) {
    // The file is complete by now.
    auto cast = ReadFile(dir_ + "/rec/" + s.storage_key);
    EXPECT_TRUE(cast.ok());
    if (s.id == "done") {
      EXPECT_NE(cast->find("hello"), std::string::npos);
    }
    ended.push_back(s);
  });
  StreamHeader h = Tcpip("done");
  h.kind = ChannelKind::kExec;
  h.command = "echo";
  auto s = Begin(h);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Chunk(1, Direction::kOut, "hello\n").ok());
  ASSERT_TRUE(s->Finish(true).ok());
  ASSERT_TRUE(s->Finish(true).ok());  // Idempotent: told once.
  h.session_id = "cut";
  auto t = Begin(h);
  ASSERT_TRUE(t->Finish(false).ok());
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_EQ(ended[0].id, "done");
  EXPECT_EQ(ended[0].status, catalog::SessionStatus::kComplete);
  EXPECT_EQ(ended[0].bytes, 6u);
  EXPECT_EQ(ended[0].format, "asciicast-v2");
  EXPECT_EQ(ended[0].storage_key, "alice/exec/done.cast");
  EXPECT_EQ(ended[1].status, catalog::SessionStatus::kIncomplete);
}

// session.end names the login, the exit status and the duration, so the
// audit log alone answers "who ran what as whom, for how long, how it ended".
TEST_F(IngestTest, SessionEndCarriesLoginExitStatusAndDuration) {
  Make();
  StreamHeader h = Tcpip("ended");
  h.kind = ChannelKind::kExec;
  h.command = "false";
  h.login = "root";
  auto s = Begin(h);
  ASSERT_NE(s, nullptr);
  clock_.Advance(754'000'000);
  ASSERT_TRUE(s->Exit(754'000'000, 1).ok());
  ASSERT_TRUE(s->Finish(true).ok());
  catalog::AuditFilter f;
  f.session_id = "ended";
  f.type = "session.end";
  auto ends = catalog_->ListAudit(f);
  ASSERT_TRUE(ends.ok());
  ASSERT_EQ(ends->size(), 1u);
  auto d = nlohmann::json::parse((*ends)[0].details);
  EXPECT_EQ(d["login"], "root") << d.dump();
  EXPECT_EQ(d["exit_status"], 1) << d.dump();
  EXPECT_EQ(d["duration_us"], 754'000'000) << d.dump();
  EXPECT_EQ(d["status"], "complete") << d.dump();
}

TEST_F(IngestTest, RecordingDisabledStoresNothingButAudits) {
  RecordingConfig rec;
  rec.enabled = false;
  Make(rec);
  StreamHeader h = Tcpip("off");
  h.kind = ChannelKind::kExec;
  h.command = "id";
  auto s = Begin(h);
  ASSERT_TRUE(s->Chunk(1, Direction::kOut, "uid=0").ok());
  ASSERT_TRUE(s->Finish(true).ok());
  EXPECT_EQ(
      std::system(("test -z \"$(find " + dir_ + "/rec -type f)\"").c_str()), 0);
  catalog::AuditFilter f;
  f.session_id = "off";
  EXPECT_EQ(catalog_->ListAudit(f)->size(), 2u);
}

// ---------------------------------------------------------------------------
// Grants, the recording's node and its start (issue 14, items 6, 7 and 12).

StreamHeader Exec(const std::string& id, const std::string& token) {
  StreamHeader h;
  h.session_id = id;
  h.user_token = token;
  h.kind = ChannelKind::kExec;
  h.command = "id";
  h.node = "web-01";
  return h;
}

TEST_F(IngestTest, AnApiTokenIsNotAGrant) {
  Make();
  std::string api = *auth::IssueToken(*signer_, "mezite", auth::Role::kUser,
                                      "alice", {"root"}, 3600, &clock_);
  auto s = manager_->Begin(Exec("api", api), kWeb01);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kPermissionDenied);
  EXPECT_NE(s.status().message().find("recording grant"), std::string::npos)
      << s.status().ToString();
  EXPECT_FALSE(catalog_->GetSession("api").ok());
}

TEST_F(IngestTest, AGrantForAnotherNodeIsRefused) {
  Make();
  auto s = manager_->Begin(Exec("other", alice_),
                           Caller{"web-02", auth::Role::kNode});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kPermissionDenied);
  EXPECT_NE(s.status().message().find("grant for node 'web-01'"),
            std::string::npos)
      << s.status().ToString();
}

TEST_F(IngestTest, TheNodeComesFromTheCallerNotTheHeader) {
  Make();
  StreamHeader h = Exec("misattributed", Grant("web-02"));
  h.node = "web-01";  // What web-02 writes; ignored.
  auto s = manager_->Begin(h, Caller{"web-02", auth::Role::kNode});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*s)->Finish(true).ok());
  EXPECT_EQ(catalog_->GetSession("misattributed")->node, "web-02");
}

// A second stream naming a live session's id (from another node, with a
// valid grant of its own) is refused and leaves that session alone: it was
// finished as incomplete, with a false session.end, by the refused stream.
TEST_F(IngestTest, ADuplicateIdLeavesTheLiveSessionAlone) {
  Make();
  auto live = Begin(Exec("taken", alice_));
  ASSERT_NE(live, nullptr);
  auto dup = manager_->Begin(Exec("taken", Grant("web-02")),
                             Caller{"web-02", auth::Role::kNode});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);
  auto row = catalog_->GetSession("taken");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->status, catalog::SessionStatus::kRecording);
  EXPECT_EQ(row->ended_us, 0);
  EXPECT_EQ(row->node, "web-01");
  catalog::AuditFilter f;
  f.type = "session.end";
  EXPECT_TRUE(catalog_->ListAudit(f)->empty());
  ASSERT_TRUE(live->Chunk(1, Direction::kOut, "still here").ok());
  ASSERT_TRUE(live->Finish(true).ok());
  EXPECT_EQ(catalog_->GetSession("taken")->status,
            catalog::SessionStatus::kComplete);
}

TEST_F(IngestTest, AProxyNamesOnlyARegisteredAgentlessNode) {
  Make();
  catalog::Node agent, plain;
  agent.name = "web-01";
  agent.addr = "127.0.0.1:22";
  plain.name = "plain-1";
  plain.addr = "127.0.0.1:2222";
  plain.openssh = true;
  ASSERT_TRUE(catalog_->CreateNode(agent).ok());
  ASSERT_TRUE(catalog_->CreateNode(plain).ok());
  Caller proxy{"px1", auth::Role::kProxy};
  auto to_agent = manager_->Begin(Exec("p1", alice_), proxy);
  EXPECT_EQ(to_agent.status().code(), Code::kPermissionDenied)
      << to_agent.status().ToString();
  StreamHeader unknown = Exec("p2", Grant("nowhere"));
  unknown.node = "nowhere";
  EXPECT_EQ(manager_->CheckHeader(unknown, proxy).code(), Code::kNotFound);
  StreamHeader none = Exec("p3", Grant("plain-1"));
  none.node = "";
  EXPECT_EQ(manager_->CheckHeader(none, proxy).code(), Code::kInvalidArgument);
  StreamHeader ok = Exec("p4", Grant("plain-1"));
  ok.node = "plain-1";
  auto s = manager_->Begin(ok, proxy);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*s)->Finish(true).ok());
  EXPECT_EQ(catalog_->GetSession("p4")->node, "plain-1");
}

TEST_F(IngestTest, ARemovedUsersGrantRecordsNoNewLiveSession) {
  Make();
  ASSERT_TRUE(catalog_->DeleteUser("alice", clock_.WallMicros()).ok());
  auto s = manager_->Begin(Exec("gone", alice_), kWeb01);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kUnauthenticated);
  EXPECT_NE(s.status().message().find("removed"), std::string::npos);
  // Nor when the name is added again: the grant names the old id.
  catalog::User again;
  again.name = "alice";
  again.role = "admin";
  ASSERT_TRUE(catalog_->CreateUser(again).ok());
  EXPECT_EQ(manager_->CheckHeader(Exec("gone", alice_), kWeb01).code(),
            Code::kUnauthenticated);
}

TEST_F(IngestTest, ALiveStartFarFromTheServersClockIsRefused) {
  Make();
  StreamHeader h = Exec("skewed", alice_);
  h.started_at_us = clock_.WallMicros() - 3600'000'000LL;
  Status st = manager_->CheckHeader(h, kWeb01);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("clock"), std::string::npos) << st.ToString();
  h.started_at_us = clock_.WallMicros() - 2'000'000;  // Close enough.
  EXPECT_TRUE(manager_->CheckHeader(h, kWeb01).ok());
}

TEST_F(IngestTest, AnUploadStartsWithinItsGrantAndBeforeARemoval) {
  Make();
  int64_t issued = clock_.WallMicros();
  std::string grant = alice_;
  auto upload = [&](const std::string& id, int64_t start) {
    StreamHeader h = Exec(id, grant);
    h.started_at_us = start;
    h.verify_token_at_us = start;
    return h;
  };
  clock_.Advance(3 * 3600'000'000LL);  // Uploaded hours later.
  // Backdated: before the certificate (and its grant) existed.
  Status st =
      manager_->CheckHeader(upload("u1", issued - 13 * 3600'000'000LL), kWeb01);
  EXPECT_FALSE(st.ok());
  st = manager_->CheckHeader(upload("u1", issued - 120'000'000), kWeb01);
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("backdated"), std::string::npos);
  // After the grant expired.
  EXPECT_FALSE(
      manager_->CheckHeader(upload("u2", issued + 601'000'000), kWeb01).ok());
  // In the future.
  EXPECT_EQ(manager_
                ->CheckHeader(
                    upload("u3", clock_.WallMicros() + 3600'000'000LL), kWeb01)
                .code(),
            Code::kInvalidArgument);
  // Within the window: kept, even though alice was removed after it.
  ASSERT_TRUE(catalog_->DeleteUser("alice", issued + 300'000'000).ok());
  auto s = manager_->Begin(upload("u4", issued + 10'000'000), kWeb01);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*s)->Finish(true).ok());
  EXPECT_EQ(catalog_->GetSession("u4")->user, "alice");
  // But not a session claimed to start after her removal.
  st = manager_->CheckHeader(upload("u5", issued + 400'000'000), kWeb01);
  EXPECT_EQ(st.code(), Code::kUnauthenticated) << st.ToString();
}

TEST_F(IngestTest, CheckHeaderHasNoSideEffects) {
  Make();
  ASSERT_TRUE(manager_->CheckHeader(Exec("checked", alice_), kWeb01).ok());
  EXPECT_FALSE(catalog_->GetSession("checked").ok());
  EXPECT_TRUE(catalog_->ListAudit({})->empty());
  EXPECT_EQ(manager_->open_streams(), 0);
}

TEST_F(IngestTest, EndConnectionClosesOnlyTheCallersPcaps) {
  Make();
  auto s = Begin(Tcpip("a"));
  ASSERT_TRUE(s->Chunk(1, Direction::kOut, "payload").ok());
  ASSERT_TRUE(s->Finish(true).ok());
  EXPECT_EQ(manager_->open_pcaps(), 1);
  EXPECT_EQ(manager_->EndConnection(Caller{"web-02", auth::Role::kNode}, "c1"),
            0);
  EXPECT_EQ(manager_->open_pcaps(), 1);
  EXPECT_EQ(manager_->EndConnection(kWeb01, "c1"), 1);
  EXPECT_EQ(manager_->open_pcaps(), 0);
}

// ---------------------------------------------------------------------------
// Audit events and session ends survive a failing catalog.

// A catalog whose AppendAudit and FinishSession fail while `failing` is set
// (as a full disk or a restarting server would); the rest goes through.
class FlakyCatalog : public catalog::Catalog {
 public:
  explicit FlakyCatalog(catalog::Catalog* real) : real_(real) {}
  std::atomic<bool> failing{false};

  Status CreateSession(const catalog::Session& s) override {
    return real_->CreateSession(s);
  }
  Status FinishSession(const std::string& id, int64_t ended_us, uint64_t bytes,
                       catalog::SessionStatus status) override {
    if (failing) return Status(Code::kUnavailable, "disk full (injected)");
    return real_->FinishSession(id, ended_us, bytes, status);
  }
  Status SetSessionStorageKey(const std::string& id,
                              const std::string& key) override {
    return real_->SetSessionStorageKey(id, key);
  }
  Status DeleteSession(const std::string& id) override {
    return real_->DeleteSession(id);
  }
  Status UpdateSessionBytes(const std::string& id, uint64_t bytes) override {
    return real_->UpdateSessionBytes(id, bytes);
  }
  Result<catalog::Session> GetSession(const std::string& id) override {
    return real_->GetSession(id);
  }
  Result<std::vector<catalog::Session>> ListSessions(
      const catalog::SessionFilter& f) override {
    return real_->ListSessions(f);
  }
  Result<int> MarkInterruptedSessions(int64_t now_us) override {
    return real_->MarkInterruptedSessions(now_us);
  }
  Status RenewReplicaLease(const std::string& id, int64_t now_us) override {
    return real_->RenewReplicaLease(id, now_us);
  }
  Status DropReplicaLease(const std::string& id) override {
    return real_->DropReplicaLease(id);
  }
  Result<std::vector<catalog::ReplicaLeaseRow>> ListReplicaLeases() override {
    return real_->ListReplicaLeases();
  }
  Result<int> MarkOrphanedSessions(const std::string& self, int64_t now_us,
                                   int64_t timeout_us) override {
    return real_->MarkOrphanedSessions(self, now_us, timeout_us);
  }
  Result<int64_t> AppendAudit(const catalog::AuditEvent& e) override {
    if (failing) return Status(Code::kUnavailable, "disk full (injected)");
    return real_->AppendAudit(e);
  }
  Result<std::vector<catalog::AuditEvent>> ListAudit(
      const catalog::AuditFilter& f) override {
    return real_->ListAudit(f);
  }
  Result<std::optional<std::string>> GetConfig(const std::string& k) override {
    return real_->GetConfig(k);
  }
  Status SetConfig(const std::string& k, const std::string& v) override {
    return real_->SetConfig(k, v);
  }
  Status CreateUser(const catalog::User& u) override {
    return real_->CreateUser(u);
  }
  Result<catalog::User> GetUser(const std::string& name) override {
    return real_->GetUser(name);
  }
  Result<std::vector<catalog::User>> ListUsers() override {
    return real_->ListUsers();
  }
  Status DeleteUser(const std::string& name, int64_t revoked_us) override {
    return real_->DeleteUser(name, revoked_us);
  }
  Status CreateNode(const catalog::Node& n) override {
    return real_->CreateNode(n);
  }
  Result<catalog::Node> GetNode(const std::string& name) override {
    return real_->GetNode(name);
  }
  Result<std::vector<catalog::Node>> ListNodes() override {
    return real_->ListNodes();
  }
  Status DeleteNode(const std::string& name, int64_t revoked_us) override {
    return real_->DeleteNode(name, revoked_us);
  }
  Result<std::vector<catalog::Revocation>> ListRevocations(int64_t since_us,
                                                           int limit) override {
    return real_->ListRevocations(since_us, limit);
  }
  Result<catalog::Revocation> GetRevocation(const std::string& id) override {
    return real_->GetRevocation(id);
  }
  Status TouchNode(const std::string& name, int64_t seen_us,
                   const std::string& mode, const std::string& addr,
                   const std::string& host_key) override {
    return real_->TouchNode(name, seen_us, mode, addr, host_key);
  }
  Status ConsumeJoinToken(const std::string& name,
                          const std::string& hash) override {
    return real_->ConsumeJoinToken(name, hash);
  }
  Result<catalog::Node> FindNodeByJoinTokenHash(
      const std::string& hash) override {
    return real_->FindNodeByJoinTokenHash(hash);
  }
  Result<uint64_t> CountSessions() override { return real_->CountSessions(); }
  Result<uint64_t> CountAudit() override { return real_->CountAudit(); }
  Status BulkInsertSessions(
      const std::vector<catalog::Session>& sessions) override {
    return real_->BulkInsertSessions(sessions);
  }
  Status BulkInsertAudit(
      const std::vector<catalog::AuditEvent>& events) override {
    return real_->BulkInsertAudit(events);
  }

 private:
  catalog::Catalog* real_;
};

TEST_F(IngestTest, AuditAndSessionEndAreRetriedUntilTheCatalogTakesThem) {
  FlakyCatalog flaky(catalog_.get());
  Make({}, &flaky);
  auto s = manager_->Begin(Exec("flaky", alice_), kWeb01);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*s)->Chunk(1, Direction::kOut, "uid=0").ok());
  flaky.failing = true;
  ASSERT_TRUE((*s)->Finish(true).ok());
  // Nothing could be written; nothing is forgotten either.
  EXPECT_EQ(catalog_->GetSession("flaky")->status,
            catalog::SessionStatus::kRecording);
  EXPECT_EQ(manager_->retrier()->queued(), 2u);    // The end and its audit.
  EXPECT_EQ(manager_->retrier()->RetryNow(), 2u);  // Still failing.
  flaky.failing = false;
  EXPECT_EQ(manager_->retrier()->RetryNow(), 0u);
  auto row = catalog_->GetSession("flaky");
  EXPECT_EQ(row->status, catalog::SessionStatus::kComplete);
  EXPECT_EQ(row->bytes, 5u);
  catalog::AuditFilter f;
  f.session_id = "flaky";
  f.type = "session.end";
  auto ends = catalog_->ListAudit(f);
  ASSERT_EQ(ends->size(), 1u);
  EXPECT_NE((*ends)[0].details.find("complete"), std::string::npos);
}

TEST(CatalogRetrierTest, AFullQueueDropsAndCountsAndOrderIsKept) {
  auto dir = std::string("/tmp/mez_retry_test.XXXXXX");
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  auto real = catalog::OpenSqliteCatalog(dir + "/c.db");
  ASSERT_TRUE(real.ok());
  FlakyCatalog flaky(real->get());
  flaky.failing = true;
  {
    catalog::CatalogRetrierOptions o;
    o.catalog = &flaky;
    o.max_queued = 2;
    o.start_thread = false;
    catalog::CatalogRetrier r(o);
    for (int i = 0; i < 3; ++i) {
      catalog::AuditEvent e;
      e.time_us = 1000 + i;
      e.type = "t" + std::to_string(i);
      EXPECT_FALSE(r.AppendAudit(e).ok());
    }
    EXPECT_EQ(r.queued(), 2u);
    EXPECT_EQ(r.dropped(), 1u);
    flaky.failing = false;
    EXPECT_EQ(r.RetryNow(), 0u);
  }
  auto rows = (*real)->ListAudit({});
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[1].type, "t0");  // Newest first.
  EXPECT_EQ((*rows)[1].time_us, 1000);
  EXPECT_EQ((*rows)[0].type, "t1");
  ASSERT_EQ(std::system(("rm -rf " + dir).c_str()), 0);
}

}  // namespace
}  // namespace mez::ingest
