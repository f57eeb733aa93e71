// Enhanced recording events end to end: a real mezrecd, a node sending
// events frames over real gRPC (alone and in batches), read back with
// `msh sessions show` and the ReadRecording RPC (plain and gzip+encrypted),
// audited and listed by `mezctl audit ls`, refused from a proxy, on tcpip
// and when hostile, and readable only by their owner and admins.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "libmez/spool/spool.h"
#include "libmez/store/s3_client.h"
#include "libmez/util/file.h"
#include "tests/cli_fixture.h"
#include "tests/s3_server.h"

namespace mez::testing {
namespace {

using mezite::v1::RecordFrame;
using nlohmann::json;

RecordFrame EventsFrame(int64_t offset_us, std::vector<std::string> lines) {
  RecordFrame f;
  f.mutable_events()->set_offset_us(offset_us);
  for (auto& l : lines) f.mutable_events()->add_lines(std::move(l));
  return f;
}

// An exec `after_us` after `start_us`.
std::string Exec(int seq, int64_t start_us, int64_t after_us,
                 const std::string& path, const std::string& arg) {
  return json{{"type", "exec"},
              {"seq", seq},
              {"time_unix_ns", (start_us + after_us) * 1000},
              {"pid", 100 + seq},
              {"ppid", 1},
              {"uid", 0},
              {"euid", 0},
              {"path", path},
              {"cwd", "/root"},
              {"argv", json::array({path.substr(path.rfind('/') + 1), arg})}}
      .dump();
}

class EventsE2eTest : public CliTest {
 protected:
  // Records session `id` for alice on web-01 with a command, a file, a
  // connection (in a batch) and a second command before them in time.
  void RecordWithEvents(Mezrecd* server, const std::string& id) {
    std::string err;
    server->RegisterNode("web-01", "127.0.0.1:22", &err);
    ASSERT_EQ(err, "");
    auto stub = server->Stub();
    RecordCall call(stub.get(), server->Token(auth::Role::kNode, "web-01"));
    RecordFrame h = HeaderFrame(id, server->Grant("alice", "web-01"),
                                mezite::v1::SESSION_KIND_SHELL);
    int64_t start = static_cast<int64_t>(time(nullptr)) * 1'000'000;
    h.mutable_header()->set_started_at_us(start);
    h.mutable_header()->set_enhanced(true);
    ASSERT_TRUE(call.Send(h));
    ASSERT_TRUE(call.Send(ChunkFrame(1000, mezite::v1::DIRECTION_OUT, "$ ")));
    ASSERT_TRUE(call.Send(EventsFrame(
        2'000'000, {Exec(2, start, 2'000'000, "/usr/bin/curl", "\x1b[31m")})));
    RecordFrame batch;
    *batch.mutable_batch()->add_frames() =
        ChunkFrame(2'100'000, mezite::v1::DIRECTION_OUT, "ok\r\n");
    *batch.mutable_batch()->add_frames() =
        EventsFrame(2'200'000, {json{{"type", "file"},
                                     {"seq", 3},
                                     {"op", "open"},
                                     {"path", "/etc/shadow"},
                                     {"flags", json::array({"O_RDONLY"})},
                                     {"pid", 102},
                                     {"errno", 13},
                                     {"error", "EACCES"}}
                                    .dump(),
                                json{{"type", "connect"},
                                     {"seq", 4},
                                     {"family", "ipv4"},
                                     {"local_addr", "127.0.0.1"},
                                     {"local_port", 40000},
                                     {"remote_addr", "127.0.0.1"},
                                     {"remote_port", 22},
                                     {"established", true},
                                     {"pid", 102}}
                                    .dump(),
                                Exec(1, start, 500'000, "/usr/bin/ls", "-la")});
    ASSERT_TRUE(call.Send(batch));
    ASSERT_TRUE(call.Send(ExitFrame(3'000'000, 0)));
    grpc::Status s = call.Close();
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // ReadRecording with `events` as `token`.
  grpc::Status ReadEvents(Mezrecd* server, const std::string& token,
                          const std::string& id, std::string* body) {
    auto stub = mezite::v1::Cluster::NewStub(server->Channel());
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    mezite::v1::ReadRecordingRequest req;
    req.set_id(id);
    req.set_events(true);
    auto reader = stub->ReadRecording(&ctx, req);
    mezite::v1::RecordingBytes msg;
    while (reader->Read(&msg)) body->append(msg.data());
    return reader->Finish();
  }
  // The status of a Record stream of `frames` sent as `token`.
  grpc::Status Send(const std::string& token, std::vector<RecordFrame> frames) {
    auto stub = server_->Stub();
    RecordCall call(stub.get(), token);
    for (const auto& f : frames) {
      if (!call.Send(f)) break;
    }
    return call.Close();
  }
};

TEST_F(EventsE2eTest, MshSessionsShowListsTheEventsInTimeOrder) {
  std::string alice = AddUser("alice");
  ASSERT_NO_FATAL_FAILURE(RecordWithEvents(server_.get(), "ev1"));
  auto r = Cli(MSH_PATH, "sessions show ev1", alice);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Session:  ev1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("User:     alice"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4 events"), std::string::npos) << r.out;
  // In time order (ls came in last but ran first), with offsets.
  size_t ls = r.out.find("0:00.500  exec      /usr/bin/ls  ls -la");
  size_t curl = r.out.find("0:02.000  exec      /usr/bin/curl");
  size_t file = r.out.find("open /etc/shadow  O_RDONLY  EACCES");
  size_t conn = r.out.find("127.0.0.1:40000 -> 127.0.0.1:22  established");
  ASSERT_NE(ls, std::string::npos) << r.out;
  ASSERT_NE(curl, std::string::npos) << r.out;
  ASSERT_NE(file, std::string::npos) << r.out;
  ASSERT_NE(conn, std::string::npos) << r.out;
  EXPECT_LT(ls, curl);
  EXPECT_LT(curl, file);
  EXPECT_LT(file, conn);
  // A terminal escape in an argument is shown, not sent to the terminal.
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  EXPECT_NE(r.out.find("\\x1b[31m"), std::string::npos) << r.out;

  auto js = Cli(MSH_PATH, "sessions show ev1 --format=json", alice);
  ASSERT_EQ(js.exit_code, 0) << js.out;
  std::vector<json> lines;
  size_t start = 0;
  while (start < js.out.size()) {
    size_t nl = js.out.find('\n', start);
    lines.push_back(json::parse(js.out.substr(start, nl - start)));
    start = nl + 1;
  }
  ASSERT_EQ(lines.size(), 4u);  // As stored: in the order they came.
  EXPECT_EQ(lines[0]["type"], "exec");
  EXPECT_EQ(lines[0]["offset_us"], 2'000'000);
  EXPECT_EQ(lines[3]["path"], "/usr/bin/ls");
  EXPECT_EQ(lines[3]["offset_us"], 500'000);
}

TEST_F(EventsE2eTest, OnlyTheOwnerAndAdminsReadTheEvents) {
  AddUser("alice");
  std::string bob = AddUser("bob");
  ASSERT_NO_FATAL_FAILURE(RecordWithEvents(server_.get(), "ev2"));
  auto r = Cli(MSH_PATH, "sessions show ev2", bob);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("/usr/bin/curl"), std::string::npos) << r.out;
  std::string body;
  grpc::Status s = ReadEvents(
      server_.get(), server_->Token(auth::Role::kUser, "bob"), "ev2", &body);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(body.empty());
  body.clear();
  s = ReadEvents(server_.get(), server_->AdminToken(), "ev2", &body);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(body.find("/usr/bin/curl"), std::string::npos);
  // The events or the seek index, not both.
  {
    auto stub = mezite::v1::Cluster::NewStub(server_->Channel());
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + server_->AdminToken());
    mezite::v1::ReadRecordingRequest req;
    req.set_id("ev2");
    req.set_events(true);
    req.set_seek_index(true);
    auto reader = stub->ReadRecording(&ctx, req);
    mezite::v1::RecordingBytes msg;
    while (reader->Read(&msg)) {
    }
    EXPECT_EQ(reader->Finish().error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  // A session without events: NOT_FOUND, and msh says so.
  Record("plain1", "alice");
  body.clear();
  s = ReadEvents(server_.get(), server_->AdminToken(), "plain1", &body);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
}

TEST_F(EventsE2eTest, AuditLsFiltersTheEventRows) {
  AddUser("alice");
  ASSERT_NO_FATAL_FAILURE(RecordWithEvents(server_.get(), "ev3"));
  auto r = Mezctl(
      "audit ls --type=session.command --session=ev3 --format=json "
      "--limit=0");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  json rows = json::parse(r.out);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  for (const auto& row : rows) {
    EXPECT_EQ(row["type"], "session.command");
    EXPECT_EQ(row["user"], "alice");
    EXPECT_EQ(row["session_id"], "ev3");
  }
  r = Mezctl("audit ls --type=session.file --user=alice --format=json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ASSERT_EQ(json::parse(r.out).size(), 1u) << r.out;
  r = Mezctl("audit ls --type=session.network --session=ev3 --format=json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ASSERT_EQ(json::parse(r.out).size(), 1u) << r.out;
  r = Mezctl("audit ls --type=session.start --session=ev3 --format=json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("enhanced_recording"), std::string::npos) << r.out;
}

TEST_F(EventsE2eTest, GzipAndEncryptedEventsAreSealedAndReadBack) {
  Mezrecd enc(
      dir_.File("data-enc"), {"--gzip"},
      {{"MEZITE_RECORDING_ENC_KEY",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef"
        "f"}});
  ASSERT_TRUE(enc.Start()) << enc.log();
  ASSERT_NO_FATAL_FAILURE(RecordWithEvents(&enc, "ev4"));
  std::string path = dir_.File("data-enc/recordings/alice/shell/ev4.events");
  auto raw = ReadFile(path);
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  EXPECT_NE(raw->find("mezite_encryption"), std::string::npos);
  EXPECT_EQ(raw->find("/usr/bin/curl"), std::string::npos);
  std::string body;
  grpc::Status s = ReadEvents(&enc, enc.AdminToken(), "ev4", &body);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(body.find("\"path\":\"/usr/bin/curl\""), std::string::npos) << body;
  // As sent (nlohmann sorts keys), with offset_us put first.
  EXPECT_NE(body.find("{\"offset_us\":500000,\"argv\":[\"ls\",\"-la\"]"),
            std::string::npos)
      << body;
}

// A live session's events can be shown while it records, also when
// encrypted (the file has no final record yet).
TEST_F(EventsE2eTest, ALiveEncryptedSessionsEventsSoFarAreShown) {
  EXPECT_EQ(server_->Stop(), 0);
  server_ = std::make_unique<Mezrecd>(
      dir_.File("data-live"), std::vector<std::string>{},
      std::map<std::string, std::string>{
          {"MEZITE_RECORDING_ENC_KEY", std::string(64, 'a')}});
  ASSERT_TRUE(server_->Start()) << server_->log();
  admin_id_ = dir_.File("data-live/admin.identity");
  std::string alice = AddUser("alice");
  std::string err;
  server_->RegisterNode("web-01", "127.0.0.1:22", &err);
  ASSERT_EQ(err, "");
  auto stub = server_->Stub();
  RecordCall call(stub.get(), server_->Token(auth::Role::kNode, "web-01"));
  RecordFrame h = HeaderFrame("live1", server_->Grant("alice", "web-01"),
                              mezite::v1::SESSION_KIND_SHELL);
  int64_t start = static_cast<int64_t>(time(nullptr)) * 1'000'000;
  h.mutable_header()->set_started_at_us(start);
  ASSERT_TRUE(call.Send(h));
  ASSERT_TRUE(call.Send(
      EventsFrame(1000, {Exec(1, start, 300'000, "/usr/bin/vim", "notes")})));
  // Written when the frame is handled: poll, with a deadline.
  CommandResult r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    r = Cli(MSH_PATH, "sessions show live1", alice);
  } while (r.out.find("/usr/bin/vim") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("0:00.300  exec      /usr/bin/vim  vim notes"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("still recording"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Status:   recording"), std::string::npos) << r.out;
  ASSERT_TRUE(call.Close().ok());
}

// Keys of unexpected types (the lines are the node's, checked only for
// type and seq) are shown as they are, never a crash.
TEST_F(EventsE2eTest, OddlyTypedKeysAreShownNotFatal) {
  std::string alice = AddUser("alice");
  std::string err;
  server_->RegisterNode("web-01", "127.0.0.1:22", &err);
  ASSERT_EQ(err, "");
  auto stub = server_->Stub();
  RecordCall call(stub.get(), server_->Token(auth::Role::kNode, "web-01"));
  ASSERT_TRUE(call.Send(HeaderFrame("odd1", server_->Grant("alice", "web-01"),
                                    mezite::v1::SESSION_KIND_SHELL)));
  ASSERT_TRUE(call.Send(EventsFrame(
      1000,
      {R"({"type":"exec","seq":1,"path":5,"argv":"x","argv_cut_bytes":"lots"})",
       R"({"type":"connect","seq":2,"established":"yes","remote_port":[1]})",
       R"({"type":"file","seq":3,"flags":{"a":1},"op":null})"})));
  ASSERT_TRUE(call.Close().ok());
  auto r = Cli(MSH_PATH, "sessions show odd1", alice);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("3 events"), std::string::npos) << r.out;
}

// Node mode: a spool whose frames include events, uploaded through the
// real Upload RPC as the node, is stored with its events like a live
// stream.
TEST_F(EventsE2eTest, AnUploadedSpoolCarryingEventsStoresThem) {
  std::string err;
  server_->RegisterNode("web-01", "127.0.0.1:22", &err);
  ASSERT_EQ(err, "");
  int64_t start = (static_cast<int64_t>(time(nullptr)) - 10) * 1'000'000;
  RecordFrame h = HeaderFrame("up1", server_->Grant("alice", "web-01"),
                              mezite::v1::SESSION_KIND_EXEC);
  h.mutable_header()->set_started_at_us(start);
  h.mutable_header()->set_enhanced(true);
  std::string path = dir_.File("up1.spool");
  {
    auto w = spool::SpoolWriter::Create(path, h);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE((*w)->Append(EventsFrame(1000, {Exec(1, start, 700'000,
                                                     "/usr/bin/make", "all")}))
                    .ok());
    ASSERT_TRUE(
        (*w)->Append(ChunkFrame(2000, mezite::v1::DIRECTION_OUT, "built\n"))
            .ok());
    ASSERT_TRUE((*w)->Append(ExitFrame(3000, 0)).ok());
    ASSERT_TRUE((*w)->End().ok());
  }
  std::string spool = *ReadFile(path);
  auto stub = server_->Stub();
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization",
                  "Bearer " + server_->Token(auth::Role::kNode, "web-01"));
  mezite::v1::UploadStatus resp;
  auto w = stub->Upload(&ctx, &resp);
  mezite::v1::UploadFrame f;
  f.mutable_start()->set_session_id("up1");
  f.mutable_start()->set_total_size(spool.size());
  f.mutable_start()->set_sha256(*spool::FileSha256(path));
  ASSERT_TRUE(w->Write(f));
  f.set_data(spool);
  ASSERT_TRUE(w->Write(f));
  w->WritesDone();
  grpc::Status s = w->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(resp.complete());
  EXPECT_TRUE(
      ReadFile(dir_.File("data/recordings/alice/exec/up1.events")).ok());
  std::string body;
  s = ReadEvents(server_.get(), server_->AdminToken(), "up1", &body);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(body.find("{\"offset_us\":700000,"), std::string::npos) << body;
  EXPECT_NE(body.find("/usr/bin/make"), std::string::npos) << body;
  auto r =
      Mezctl("audit ls --type=session.command --session=up1 --format=json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(json::parse(r.out).size(), 1u) << r.out;
}

// With the s3 backend the events go to an object beside the recording's,
// through the same store, and are read back from it.
TEST_F(EventsE2eTest, EventsGoToS3BesideTheRecording) {
  S3Server s3(MEZ_START_S3);
  ASSERT_TRUE(s3.ok()) << s3.error();
  store::S3Options o;
  o.endpoint = s3.endpoint();
  o.region = s3.region();
  o.access_key = s3.access_key();
  o.secret_key = s3.secret_key();
  o.bucket = "mez-events";
  o.force_path_style = true;
  auto client = store::S3Client::New(o);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE((*client)->CreateBucket().ok());
  Mezrecd server(dir_.File("data-s3"), {"--gzip"},
                 {{"MEZITE_RECORDING_BACKEND", "s3"},
                  {"MEZITE_S3_BUCKET", o.bucket},
                  {"MEZITE_S3_REGION", s3.region()},
                  {"MEZITE_S3_ACCESS_KEY", s3.access_key()},
                  {"MEZITE_S3_SECRET_KEY", s3.secret_key()},
                  {"MEZITE_S3_ENDPOINT", s3.endpoint()},
                  {"MEZITE_S3_FORCE_PATH_STYLE", "true"},
                  {"MEZITE_S3_PREFIX", "rec/"}});
  ASSERT_TRUE(server.Start()) << server.log();
  ASSERT_NO_FATAL_FAILURE(RecordWithEvents(&server, "ev5"));
  auto head = (*client)->HeadObject("rec/alice/shell/ev5.events.gz");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  auto obj = (*client)->GetObject("rec/alice/shell/ev5.events.gz");
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_EQ(obj->substr(0, 2), "\x1f\x8b");
  std::string body;
  grpc::Status s = ReadEvents(&server, server.AdminToken(), "ev5", &body);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(body.find("\"path\":\"/etc/shadow\""), std::string::npos) << body;
  EXPECT_EQ(server.Stop(), 0);
}

TEST_F(EventsE2eTest, BadEventsFramesAreRefusedWithAClearStatus) {
  std::string err;
  server_->RegisterNode("web-01", "127.0.0.1:22", &err);
  ASSERT_EQ(err, "");
  std::string node = server_->Token(auth::Role::kNode, "web-01");
  std::string grant = server_->Grant("alice", "web-01");
  auto shell = [&](const std::string& id) {
    return HeaderFrame(id, grant, mezite::v1::SESSION_KIND_SHELL);
  };
  struct Case {
    std::vector<RecordFrame> frames;
    std::string words;
  };
  std::vector<std::string> many(5000, R"({"type":"exit","seq":1})");
  std::vector<Case> cases = {
      {{EventsFrame(1, {R"({"type":"exit","seq":1})"})}, "before the header"},
      {{shell("b1"), EventsFrame(1, {"not json"})}, "not valid JSON"},
      {{shell("b2"), EventsFrame(1, {R"({"type":"rm -rf","seq":1})"})},
       "unknown type"},
      {{shell("b3"), EventsFrame(1, {R"({"type":"exec"})"})}, "seq"},
      {{shell("b4"), EventsFrame(1, many)}, "over the limit"},
      {{shell("b5"), EventsFrame(1, {R"({"type":"exec","seq":1,"a":")" +
                                     std::string(300 * 1024, 'a') + "\"}"})},
       "over the limit"},
      // An unknown type quoted in the refusal, cut inside a character:
      // the message (and the audit row that carries it) stays UTF-8.
      {{shell("b7"),
        EventsFrame(1, {R"({"type":"aéééééééééééééééééééé","seq":1})"})},
       "unknown type"},
      {{HeaderFrame("b6", grant, mezite::v1::SESSION_KIND_TCPIP),
        EventsFrame(1, {R"({"type":"exit","seq":1})"})},
       "tcpip"},
  };
  for (auto& c : cases) {
    grpc::Status s = Send(node, c.frames);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.words << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(c.words), std::string::npos)
        << s.error_message();
  }
  // Nothing of them stored as events, and the server serves on.
  auto files = ListFiles(dir_.File("data/recordings"));
  for (const auto& [f, size] : files) {
    EXPECT_EQ(f.find(".events"), std::string::npos) << f;
  }
  ASSERT_NO_FATAL_FAILURE(RecordWithEvents(server_.get(), "after"));
}

}  // namespace
}  // namespace mez::testing
