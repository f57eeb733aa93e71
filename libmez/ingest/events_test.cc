// Enhanced recording events at ingest: each check of an events frame (a
// test per check), the events file beside the recording (plain, gzip,
// encrypted) read back as playback reads it, the audit rows and their
// bounds, and the streams that may not carry events. Real LocalStore,
// SQLite catalog and tokens; no gRPC (tests/mezrecd_events_test.cc has it).
#include "libmez/ingest/events.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "libmez/ingest/ingest.h"
#include "libmez/record/event_lines.h"
#include "libmez/record/plain_cast.h"
#include "libmez/record/seal.h"

namespace mez::ingest {
namespace {

using nlohmann::json;

const Caller kNode{"web-01", auth::Role::kNode};
constexpr int64_t kStartUs = 1'700'000'000'000'000;

Status Check(std::vector<std::string_view> lines) {
  return CheckEventLines(lines, 0, kStartUs).status();
}

void ExpectRefused(const std::vector<std::string_view>& lines,
                   const std::string& words) {
  Status s = Check(lines);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << words;
  EXPECT_NE(s.message().find(words), std::string::npos) << s.ToString();
}

TEST(EventLinesTest, AWellFormedLineIsAccepted) {
  EXPECT_TRUE(Check({R"({"type":"exit","seq":3,"pid":1})"}).ok());
}

TEST(EventLinesTest, TooManyLinesAreRefused) {
  std::vector<std::string_view> lines(kMaxEventLines + 1,
                                      R"({"type":"exit","seq":1})");
  ExpectRefused(lines, "over the limit");
  lines.pop_back();
  EXPECT_TRUE(Check(lines).ok());
}

TEST(EventLinesTest, ALineOverTheSizeLimitIsRefused) {
  std::string big = R"({"type":"exec","seq":1,"x":")" +
                    std::string(kMaxEventLineBytes, 'a') + "\"}";
  ExpectRefused({big}, "over the limit");
  // The largest legitimate exec: 16,384 argv bytes all escaped (\u0001).
  std::string argv;
  for (int i = 0; i < 16384; ++i) argv += "\\u0001";
  std::string exec = R"({"type":"exec","seq":1,"argv":[")" + argv + "\"]}";
  EXPECT_TRUE(Check({exec}).ok());
}

TEST(EventLinesTest, EmptyLinesAndLineBreaksAreRefused) {
  ExpectRefused({""}, "empty");
  ExpectRefused({"{\"type\":\"exit\",\n\"seq\":1}"}, "line break");
}

TEST(EventLinesTest, DeepNestingIsRefusedBeforeParsing) {
  std::string deep = R"({"type":"exit","seq":1,"x":)" + std::string(100, '[') +
                     std::string(100, ']') + "}";
  ExpectRefused({deep}, "nested deeper");
  // Brackets inside strings do not count.
  EXPECT_TRUE(Check({R"({"type":"exit","seq":1,"x":"[[[[[[[[[["})"}).ok());
}

TEST(EventLinesTest, NotJsonOrNotAnObjectIsRefused) {
  ExpectRefused({"{\"type\":"}, "not valid JSON");
  ExpectRefused({"{\"type\":\"exit\",\"seq\":1,\"p\":\"\xff\"}"},
                "not valid JSON");
  ExpectRefused({"[1,2]"}, "not a JSON object");
}

TEST(EventLinesTest, TypeMustBeKnown) {
  ExpectRefused({R"({"seq":1})"}, "no string \"type\"");
  ExpectRefused({R"({"type":7,"seq":1})"}, "no string \"type\"");
  ExpectRefused({R"({"type":"reboot","seq":1})"}, "unknown type");
}

TEST(EventLinesTest, SeqMustBeANonNegativeInteger) {
  ExpectRefused({R"({"type":"exit"})"}, "seq");
  ExpectRefused({R"({"type":"exit","seq":"1"})"}, "seq");
  ExpectRefused({R"({"type":"exit","seq":1.5})"}, "seq");
  ExpectRefused({R"({"type":"exit","seq":-1})"}, "seq");
}

TEST(EventLinesTest, AnOffsetKeyOfTheSendersIsRefused) {
  ExpectRefused({R"({"type":"exit","seq":1,"offset_us":5})"}, "offset_us");
}

TEST(EventLinesTest, ANegativeFrameOffsetIsRefused) {
  std::vector<std::string_view> lines = {R"({"type":"exit","seq":1})"};
  EXPECT_EQ(CheckEventLines(lines, -1, kStartUs).status().code(),
            Code::kInvalidArgument);
}

TEST(EventLinesTest, TheOffsetComesFromTheEventsTime) {
  std::string at = R"({"type":"exit","seq":1,"time_unix_ns":)" +
                   std::to_string((kStartUs + 2'500'000) * 1000) + "}";
  std::string before = R"({"type":"exit","seq":2,"time_unix_ns":1})";
  std::vector<std::string_view> lines = {at, before,
                                         R"({"type":"exit","seq":3})"};
  auto r = CheckEventLines(lines, 777, kStartUs);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].offset_us, 2'500'000);
  EXPECT_EQ((*r)[1].offset_us, 0);    // Before the start: at the start.
  EXPECT_EQ((*r)[2].offset_us, 777);  // No time: the frame's offset.
  EXPECT_EQ(StoredLine((*r)[0]),
            R"({"offset_us":2500000,"type":"exit","seq":1,"time_unix_ns":)" +
                std::to_string((kStartUs + 2'500'000) * 1000) + "}");
}

TEST(EventLinesTest, AProcessLeftRunningIsAuditedAsUntracked) {
  std::string arg(5000, 'x');
  std::string line = R"({"type":"untracked","seq":7,"pid":42,"ppid":1,)"
                     R"("uid":1000,"path":"/usr/bin/sleep","argv":["sleep",)"
                     R"("60",")" +
                     arg + R"("]})";
  auto r = CheckEventLines({line}, 0, kStartUs);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(AuditTypeOf("untracked"), "session.untracked");
  json d = AuditDetailsOf((*r)[0]);
  EXPECT_EQ(d["pid"], 42);
  EXPECT_EQ(d["path"], "/usr/bin/sleep");
  // argv to its audit bound: the long argument is left out.
  EXPECT_EQ(d["argv"], json::array({"sleep", "60"}));
}

TEST(EventLinesTest, AuditArgvIsCutAtItsLimitAndTheCutCounted) {
  std::string arg(3000, 'a');
  std::string line = R"({"type":"exec","seq":1,"pid":9,"uid":1000,)"
                     R"("path":"/usr/bin/echo","cwd":"/tmp","argv":["echo",")" +
                     arg + "\",\"" + arg + "\",\"z\"]}";
  auto r = CheckEventLines({line}, 0, kStartUs);
  ASSERT_TRUE(r.ok());
  json d = AuditDetailsOf((*r)[0]);
  EXPECT_EQ(d["path"], "/usr/bin/echo");
  EXPECT_EQ(d["cwd"], "/tmp");
  EXPECT_EQ(d["pid"], 9);
  EXPECT_EQ(d["uid"], 1000);
  ASSERT_EQ(d["argv"].size(), 3u);
  size_t kept = 0;
  for (const auto& a : d["argv"]) kept += a.get<std::string>().size() + 1;
  EXPECT_LE(kept, kMaxAuditArgvBytes);
  // 5 + 3001 + 3001 + 2 bytes in all (with NULs); the row keeps `kept`
  // of them but the cut argument's NUL; the rest is counted.
  EXPECT_EQ(d["argv_audit_cut_bytes"].get<uint64_t>(),
            5 + 3001 + 3001 + 2 - (kept - 1));
}

class IngestEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mez_events_test.XXXXXX";
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
    auth::Claims c;
    c.subject = "alice";
    c.role = auth::Role::kSession;
    c.uid = alice.id;
    c.audience = "web-01";
    c.logins = {"root"};
    grant_ = *auth::IssueToken(*signer_, "mezite", c, 600, &clock_);
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
    o.retry_thread = false;
    o.verifier = verifier_.get();
    o.clock = &clock_;
    manager_ = std::make_unique<IngestManager>(o);
  }
  StreamHeader Shell(const std::string& id) {
    StreamHeader h;
    h.session_id = id;
    h.user_token = grant_;
    h.kind = ChannelKind::kShell;
    h.width = 80;
    h.height = 24;
    h.started_at_us = clock_.WallMicros();
    h.enhanced = true;
    return h;
  }
  std::string ExecLine(int seq, int64_t after_us, const std::string& path) {
    return R"({"type":"exec","seq":)" + std::to_string(seq) +
           R"(,"time_unix_ns":)" +
           std::to_string((clock_.WallMicros() + after_us) * 1000) +
           R"(,"pid":42,"uid":0,"path":")" + path +
           R"(","cwd":"/root","argv":["x","y"]})";
  }
  // The stored events as playback reads them: decompressed, decrypted.
  std::vector<json> ReadBack(const std::string& key,
                             const std::optional<std::string>& enc) {
    std::vector<json> out;
    auto src = store_->Open(key);
    EXPECT_TRUE(src.ok()) << src.status().ToString();
    if (!src.ok()) return out;
    auto plain = record::OpenPlainCast(std::move(src).value(), enc);
    EXPECT_TRUE(plain.ok()) << plain.status().ToString();
    if (!plain.ok()) return out;
    auto lines = record::NewEventLinesSource(std::move(plain).value());
    std::string body;
    char buf[4096];
    for (;;) {
      auto n = lines->Read(buf, sizeof(buf));
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (!n.ok() || *n == 0) break;
      body.append(buf, *n);
    }
    size_t start = 0;
    while (start < body.size()) {
      size_t nl = body.find('\n', start);
      out.push_back(json::parse(body.substr(start, nl - start)));
      start = nl + 1;
    }
    return out;
  }
  std::vector<catalog::AuditEvent> Audit(const std::string& type,
                                         const std::string& session) {
    catalog::AuditFilter f;
    f.type = type;
    f.session_id = session;
    auto rows = catalog_->ListAudit(f);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<catalog::AuditEvent>{};
  }
  // Records session `id` with three events frames and returns the key of
  // its events file.
  void RecordWithEvents(const std::string& id) {
    auto s = manager_->Begin(Shell(id), kNode);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->Chunk(1000, Direction::kOut, "$ ").ok());
    std::string e1 = ExecLine(1, 1'500'000, "/usr/bin/secret-tool");
    std::string e2 =
        R"({"type":"file","seq":2,"op":"open","path":"/etc/passwd","flags":["O_RDONLY"],"pid":42,"count":5,"last_time_unix_ns":7})";
    std::string e3 =
        R"({"type":"connect","seq":3,"family":"ipv4","remote_addr":"127.0.0.1","remote_port":22,"established":true,"pid":42})";
    ASSERT_TRUE((*s)->Events(2000, {e1}).ok());
    ASSERT_TRUE((*s)->Events(3000, {e2, e3}).ok());
    ASSERT_TRUE(
        (*s)->Events(4000, {R"({"type":"loss","seq":3,"lost_file":2})"}).ok());
    ASSERT_TRUE((*s)->Finish(true).ok());
  }
  void ExpectStored(const std::vector<json>& got) {
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0]["offset_us"], 1'500'000);
    EXPECT_EQ(got[0]["type"], "exec");
    EXPECT_EQ(got[0]["path"], "/usr/bin/secret-tool");
    EXPECT_EQ(got[1]["type"], "file");
    EXPECT_EQ(got[1]["offset_us"], 3000);  // No time: the frame's.
    EXPECT_EQ(got[2]["type"], "connect");
    EXPECT_EQ(got[3]["lost_file"], 2);
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<auth::TokenSigner> signer_;
  std::unique_ptr<auth::TokenVerifier> verifier_;
  std::unique_ptr<store::LocalStore> store_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<IngestManager> manager_;
  std::string grant_;
};

TEST_F(IngestEventsTest, PlainEventsAreStoredBesideTheRecording) {
  Make();
  RecordWithEvents("p1");
  EXPECT_EQ(store::EventsKey("alice/shell/p1.cast"), "alice/shell/p1.events");
  ExpectStored(ReadBack("alice/shell/p1.events", std::nullopt));
}

TEST_F(IngestEventsTest, GzipEventsAreStoredCompressed) {
  RecordingConfig rec;
  rec.gzip = true;
  Make(rec);
  RecordWithEvents("g1");
  std::string raw;
  {
    auto f = record::FileSource::Open(dir_ + "/rec/alice/shell/g1.events.gz");
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    char b[2];
    ASSERT_EQ(*(*f)->Read(b, 2), 2u);
    raw.assign(b, 2);
  }
  EXPECT_EQ(raw, "\x1f\x8b");
  ExpectStored(ReadBack("alice/shell/g1.events.gz", std::nullopt));
}

TEST_F(IngestEventsTest, EncryptedEventsOpenOnlyWithTheKey) {
  RecordingConfig rec;
  rec.gzip = true;
  rec.encryption_key = std::string(32, '\x07');
  Make(rec);
  RecordWithEvents("x1");
  std::string key = "alice/shell/x1.events";  // Sealed: no .gz.
  auto f = record::FileSource::Open(dir_ + "/rec/" + key);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  std::string raw(1 << 16, '\0');
  raw.resize(*(*f)->Read(raw.data(), raw.size()));
  EXPECT_NE(raw.find("mezite_encryption"), std::string::npos);
  EXPECT_EQ(raw.find("secret-tool"), std::string::npos) << raw;
  ExpectStored(ReadBack(key, rec.encryption_key));
  auto src = store_->Open(key);
  ASSERT_TRUE(src.ok());
  EXPECT_FALSE(
      record::OpenPlainCast(std::move(src).value(), std::nullopt).ok());
}

TEST_F(IngestEventsTest, EventsAreAuditedWithTheSessionAndUser) {
  Make();
  RecordWithEvents("a1");
  auto start = Audit("session.start", "a1");
  ASSERT_EQ(start.size(), 1u);
  EXPECT_EQ(json::parse(start[0].details)["enhanced_recording"], "on");
  auto cmd = Audit("session.command", "a1");
  ASSERT_EQ(cmd.size(), 1u);
  EXPECT_EQ(cmd[0].user, "alice");
  EXPECT_EQ(cmd[0].node, "web-01");
  json d = json::parse(cmd[0].details);
  EXPECT_EQ(d["path"], "/usr/bin/secret-tool");
  EXPECT_EQ(d["argv"], json::array({"x", "y"}));
  EXPECT_EQ(d["cwd"], "/root");
  EXPECT_EQ(d["pid"], 42);
  EXPECT_EQ(d["uid"], 0);
  auto file = Audit("session.file", "a1");
  ASSERT_EQ(file.size(), 1u);
  EXPECT_EQ(json::parse(file[0].details)["path"], "/etc/passwd");
  // Five identical opens collapsed into the one event: the row says so.
  EXPECT_EQ(json::parse(file[0].details)["count"], 5);
  EXPECT_EQ(json::parse(file[0].details)["last_time_unix_ns"], 7);
  auto net = Audit("session.network", "a1");
  ASSERT_EQ(net.size(), 1u);
  EXPECT_EQ(json::parse(net[0].details)["op"], "connect");
  EXPECT_EQ(json::parse(net[0].details)["remote_port"], 22);
  auto lost = Audit("session.events_lost", "a1");
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(json::parse(lost[0].details)["lost_file"], 2);
  EXPECT_TRUE(Audit("session.events_omitted", "a1").empty());
  auto end = Audit("session.end", "a1");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(json::parse(end[0].details)["events"], 4);
}

TEST_F(IngestEventsTest, DegradedModeSaysEnhancedRecordingWasOff) {
  Make();
  StreamHeader h = Shell("off1");
  h.enhanced = false;
  auto s = manager_->Begin(h, kNode);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Finish(true).ok());
  auto start = Audit("session.start", "off1");
  ASSERT_EQ(start.size(), 1u);
  EXPECT_EQ(json::parse(start[0].details)["enhanced_recording"], "off");
  h = Shell("none1");
  h.enhanced.reset();
  s = manager_->Begin(h, kNode);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Finish(true).ok());
  EXPECT_FALSE(json::parse(Audit("session.start", "none1")[0].details)
                   .contains("enhanced_recording"));
}

TEST_F(IngestEventsTest, FileAuditRowsAreBoundedAndTheRestCounted) {
  Make();
  auto s = manager_->Begin(Shell("b1"), kNode);
  ASSERT_TRUE(s.ok());
  std::vector<std::string> lines;
  for (uint64_t i = 0; i < kMaxFileAuditRows + 25; ++i) {
    lines.push_back(R"({"type":"file","seq":)" + std::to_string(i + 1) +
                    R"(,"op":"open","path":"/usr/lib/x.so"})");
  }
  std::vector<std::string_view> views(lines.begin(), lines.end());
  ASSERT_TRUE((*s)->Events(10, views).ok());
  ASSERT_TRUE((*s)->Finish(true).ok());
  EXPECT_EQ(Audit("session.file", "b1").size(), kMaxFileAuditRows);
  auto omitted = Audit("session.events_omitted", "b1");
  ASSERT_EQ(omitted.size(), 1u);
  json d = json::parse(omitted[0].details);
  EXPECT_EQ(d["omitted"]["session.file"], 25);
  EXPECT_EQ(d["limits"]["session.file"], kMaxFileAuditRows);
  // The events file holds all of them.
  EXPECT_EQ(ReadBack("alice/shell/b1.events", std::nullopt).size(),
            kMaxFileAuditRows + 25);
}

TEST_F(IngestEventsTest, ABadFrameStoresNothingOfIt) {
  Make();
  auto s = manager_->Begin(Shell("bad1"), kNode);
  ASSERT_TRUE(s.ok());
  std::string good = ExecLine(1, 0, "/bin/true");
  Status r = (*s)->Events(5, {good, R"({"type":"exec","seq":"x"})"});
  EXPECT_EQ(r.code(), Code::kInvalidArgument);
  ASSERT_TRUE((*s)->Finish(false).ok());
  EXPECT_TRUE(Audit("session.command", "bad1").empty());
  EXPECT_NE(access((dir_ + "/rec/alice/shell/bad1.events").c_str(), F_OK), 0);
}

TEST_F(IngestEventsTest, AProxysStreamCannotCarryEvents) {
  Make();
  catalog::Node plain;
  plain.name = "plain-1";
  plain.addr = "127.0.0.1:2222";
  plain.openssh = true;
  ASSERT_TRUE(catalog_->CreateNode(plain).ok());
  auth::Claims c = *verifier_->Verify(grant_, clock_.WallMicros() / 1'000'000);
  c.audience = "plain-1";
  std::string grant = *auth::IssueToken(*signer_, "mezite", c, 600, &clock_);
  Caller proxy{"px1", auth::Role::kProxy};
  StreamHeader h = Shell("px");
  h.user_token = grant;
  h.node = "plain-1";
  // A proxy's header cannot claim enhanced recording...
  EXPECT_EQ(manager_->CheckHeader(h, proxy).code(), Code::kInvalidArgument);
  h.enhanced.reset();
  auto s = manager_->Begin(h, proxy);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  // ...nor send events.
  Status r = (*s)->Events(1, {R"({"type":"exit","seq":1})"});
  EXPECT_EQ(r.code(), Code::kInvalidArgument);
  EXPECT_NE(r.message().find("node's agent"), std::string::npos) << r.message();
  ASSERT_TRUE((*s)->Finish(false).ok());
}

TEST_F(IngestEventsTest, ATcpipStreamCannotCarryEvents) {
  Make();
  StreamHeader h = Shell("t1");
  h.kind = ChannelKind::kTcpip;
  h.connection_id = "c1";
  h.dst_host = "db";
  h.dst_port = 5432;
  auto s = manager_->Begin(h, kNode);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Status r = (*s)->Events(1, {R"({"type":"exit","seq":1})"});
  EXPECT_EQ(r.code(), Code::kInvalidArgument);
  EXPECT_NE(r.message().find("tcpip"), std::string::npos) << r.message();
  ASSERT_TRUE((*s)->Finish(false).ok());
}

TEST_F(IngestEventsTest, DeletingARecordingDeletesItsEventsFile) {
  Make();
  RecordWithEvents("d1");
  ASSERT_EQ(access((dir_ + "/rec/alice/shell/d1.events").c_str(), F_OK), 0);
  ASSERT_TRUE(store::DeleteRecording(store_.get(), "alice/shell/d1.cast").ok());
  EXPECT_NE(access((dir_ + "/rec/alice/shell/d1.events").c_str(), F_OK), 0);
  EXPECT_NE(access((dir_ + "/rec/alice/shell/d1.cast").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace mez::ingest
