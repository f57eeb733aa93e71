// mezrecd scaled out: the S3 recording backend (a real SigV4-checking Swift
// + s3api server, scripts/start-s3), crash recovery from mezrecd's local S3
// spool, and two replicas sharing one PostgreSQL catalog and one bucket.
// Real mezrecd processes, real gRPC over loopback TLS. The S3 server starts
// once for the whole binary (one ctest entry); PostgreSQL on first use.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "libmez/record/asciicast_reader.h"
#include "libmez/record/pcap_reader.h"
#include "libmez/record/seal.h"
#include "libmez/record/sink.h"
#include "libmez/spool/spool.h"
#include "libmez/store/s3_client.h"
#include "libmez/util/file.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "tests/forward_util.h"
#include "tests/mezd_harness.h"
#include "tests/mezrecd_harness.h"
#include "tests/postgres_server.h"
#include "tests/s3_server.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

using mezite::v1::DIRECTION_ERR;
using mezite::v1::DIRECTION_IN;
using mezite::v1::DIRECTION_OUT;
using mezite::v1::SESSION_KIND_EXEC;
using mezite::v1::SESSION_KIND_SHELL;
using mezite::v1::SESSION_KIND_TCPIP;

constexpr char kKeyHex[] =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
constexpr size_t kChunk = 256 << 10;

S3Server* s3_server = nullptr;

class S3Environment : public ::testing::Environment {
 public:
  void SetUp() override { s3_server = new S3Server(MEZ_START_S3); }
  void TearDown() override {
    delete s3_server;
    s3_server = nullptr;
  }
};
[[maybe_unused]] auto* const s3_environment =
    ::testing::AddGlobalTestEnvironment(new S3Environment);

// Calls `done` until it returns true or `seconds` pass.
bool PollUntil(const std::function<bool()>& done, int seconds = 60) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// Incompressible text that is valid UTF-8 and needs no JSON escaping.
std::string RandomText(size_t n, uint32_t seed) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = kAlphabet[rng() % 64];
  return s;
}

std::string AdminToken(const Mezrecd& s) {
  return s.Token(auth::Role::kAdmin, "admin");
}

// The decoded stream of Cluster.ReadRecording, checking its offsets.
grpc::Status ReadRecording(const Mezrecd& server, const std::string& id,
                           std::string* out,
                           mezite::v1::SessionInfo* info = nullptr) {
  auto stub = mezite::v1::Cluster::NewStub(server.Channel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + AdminToken(server));
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(120));
  mezite::v1::ReadRecordingRequest req;
  req.set_id(id);
  auto reader = stub->ReadRecording(&ctx, req);
  mezite::v1::RecordingBytes m;
  out->clear();
  bool offsets_ok = true;
  while (reader->Read(&m)) {
    if (m.has_session() && info != nullptr) *info = m.session();
    offsets_ok &= m.offset() == out->size();
    out->append(m.data());
  }
  grpc::Status s = reader->Finish();
  if (s.ok() && !offsets_ok) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS, "offsets out of order");
  }
  return s;
}

struct Cast {
  record::AsciicastInfo info;
  std::vector<record::AsciicastEvent> events;
  bool truncated = false;
  std::string Output() const {
    std::string out;
    for (const auto& e : events) {
      if (e.code == "o") out += e.data;
    }
    return out;
  }
};

Result<Cast> ParseCast(std::string text) {
  MEZ_ASSIGN_OR_RETURN(auto reader,
                       record::AsciicastReader::Open(
                           std::make_unique<record::StringSource>(text)));
  Cast cast;
  cast.info = reader->info();
  record::AsciicastEvent e;
  for (;;) {
    MEZ_ASSIGN_OR_RETURN(bool more, reader->Next(&e));
    if (!more) break;
    cast.events.push_back(e);
  }
  cast.truncated = reader->truncated();
  return cast;
}

std::string Unquote(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

// One TCP flow carrying `up` and `down`; `key` opens an encrypted pcap.
void CheckPcap(std::unique_ptr<record::ByteSource> src,
               const std::optional<std::string>& key, const std::string& up,
               const std::string& down) {
  record::PcapReaderOptions o;
  if (key) o.key = *key;
  auto pcap = record::PcapReader::Open(std::move(src), o);
  ASSERT_TRUE(pcap.ok()) << pcap.status().ToString();
  auto flows = record::ReassembleFlows(pcap->get());
  ASSERT_TRUE(flows.ok()) << flows.status().ToString();
  ASSERT_EQ(flows->flows.size(), 1u);
  EXPECT_EQ(flows->flows[0].client_to_server, up);
  EXPECT_EQ(flows->flows[0].server_to_client, down);
}

class ScaleoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(s3_server, nullptr);
    ASSERT_TRUE(s3_server->ok()) << s3_server->error();
    // One bucket per test: "mez-" + the test's name, lowercased.
    bucket_ = "mez-";
    for (char c : std::string(
             ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
      bucket_ += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    store::S3Options o;
    o.endpoint = s3_server->endpoint();
    o.region = s3_server->region();
    o.access_key = s3_server->access_key();
    o.secret_key = s3_server->secret_key();
    o.bucket = bucket_;
    o.force_path_style = true;
    o.initial_backoff_ms = 20;
    auto c = store::S3Client::New(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    s3_ = std::move(c).value();
    Status s = s3_->CreateBucket();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // mezrecd's settings for this test's bucket.
  std::map<std::string, std::string> S3Env(const std::string& prefix) const {
    return {{"MEZITE_RECORDING_BACKEND", "s3"},
            {"MEZITE_S3_BUCKET", bucket_},
            {"MEZITE_S3_REGION", s3_server->region()},
            {"MEZITE_S3_ACCESS_KEY", s3_server->access_key()},
            {"MEZITE_S3_SECRET_KEY", s3_server->secret_key()},
            {"MEZITE_S3_ENDPOINT", s3_server->endpoint()},
            {"MEZITE_S3_FORCE_PATH_STYLE", "true"},
            {"MEZITE_S3_PREFIX", prefix}};
  }

  // Starts a mezrecd in dir_/<name> with web-01 registered.
  std::unique_ptr<Mezrecd> StartServer(const std::string& name,
                                       std::map<std::string, std::string> env) {
    auto server = std::make_unique<Mezrecd>(
        dir_.path() + "/" + name, std::vector<std::string>{}, std::move(env));
    EXPECT_TRUE(server->Start()) << server->log();
    if (!server->running()) return nullptr;
    std::string err;
    server->RegisterNode("web-01", "127.0.0.1:22", &err);
    EXPECT_EQ(err, "") << "registering web-01";
    return server;
  }

  // Records a shell session (several chunks, a resize, exit 0) and returns
  // what the viewer saw.
  std::string RecordShell(const Mezrecd& server, const std::string& id,
                          const std::string& node = "web-01") {
    auto stub = server.Stub();
    RecordCall call(stub.get(), server.Token(auth::Role::kNode, node));
    auto h = HeaderFrame(id, server.Grant("alice", node), SESSION_KIND_SHELL);
    h.mutable_header()->set_node(node);
    EXPECT_TRUE(call.Send(h));
    std::string shown;
    const char* parts[] = {"$ ", "echo \xC5", "\xBC\xC3\xB3\xC5\x82w\r\n",
                           "\x1b[1;32mok\x1b[0m\r\n", "$ exit\r\n"};
    int64_t t = 0;
    for (const char* p : parts) {
      t += 20'000;
      EXPECT_TRUE(call.Send(ChunkFrame(t, DIRECTION_OUT, p)));
      shown += p;
    }
    EXPECT_TRUE(call.Send(ResizeFrame(t + 1, 100, 30)));
    EXPECT_TRUE(call.Send(ExitFrame(t + 2, 0)));
    grpc::Status s = call.Close();
    EXPECT_TRUE(s.ok()) << s.error_message() << "\n" << server.log();
    EXPECT_EQ(call.summary.session_id(), id);
    EXPECT_EQ(call.summary.bytes(), shown.size());
    last_key_ = call.summary.storage_key();
    return shown;
  }

  bool ObjectExists(const std::string& key) {
    return s3_->HeadObject(key).ok();
  }

  TempDir dir_;
  std::string bucket_;
  std::unique_ptr<store::S3Client> s3_;
  std::string last_key_;  // Of the last RecordShell.
};

struct Mode {
  std::string name;
  std::map<std::string, std::string> env;
  std::string cast_suffix;
};

TEST_F(ScaleoutTest, S3BackendRoundTripsShellExecAndTcpip) {
  const std::vector<Mode> modes = {
      {"plain", {}, ".cast"},
      {"gzip", {{"MEZITE_RECORDING_GZIP", "true"}}, ".cast.gz"},
      {"enc", {{"MEZITE_RECORDING_ENC_KEY", kKeyHex}}, ".cast"},
  };
  for (const Mode& mode : modes) {
    SCOPED_TRACE(mode.name);
    const std::string prefix = "rec-" + mode.name + "/";
    auto env = S3Env(prefix);
    env.insert(mode.env.begin(), mode.env.end());
    auto server = StartServer(mode.name, env);
    ASSERT_NE(server, nullptr);
    auto stub = server->Stub();
    const std::string node = server->Token(auth::Role::kNode, "web-01");
    const std::string alice = server->Grant("alice", "web-01");

    // Shell.
    const std::string shell_id = "shell-" + mode.name;
    std::string shown = RecordShell(*server, shell_id);
    const std::string shell_key = "alice/shell/" + shell_id + mode.cast_suffix;
    EXPECT_EQ(last_key_, shell_key);
    auto obj = s3_->GetObject(prefix + shell_key);
    ASSERT_TRUE(obj.ok()) << obj.status().ToString() << "\n" << server->log();
    if (mode.name == "gzip") {
      ASSERT_GE(obj->size(), 2u);
      EXPECT_EQ(static_cast<unsigned char>((*obj)[0]), 0x1f);
      EXPECT_EQ(static_cast<unsigned char>((*obj)[1]), 0x8b);
    } else if (mode.name == "enc") {
      EXPECT_EQ(obj->find("[1;32m"), std::string::npos);
      EXPECT_NE(obj->find("\"mezite_encryption\""), std::string::npos)
          << obj->substr(0, 300);
    } else {
      EXPECT_NE(obj->find("[1;32m"), std::string::npos);
    }
    std::string text;
    mezite::v1::SessionInfo info;
    grpc::Status rs = ReadRecording(*server, shell_id, &text, &info);
    ASSERT_TRUE(rs.ok()) << rs.error_message();
    EXPECT_EQ(info.storage_key(), shell_key);
    EXPECT_EQ(info.status(), "complete");
    EXPECT_EQ(info.encrypted(), mode.name == "enc");
    auto cast = ParseCast(text);
    ASSERT_TRUE(cast.ok()) << cast.status().ToString() << "\n" << text;
    EXPECT_FALSE(cast->truncated);
    EXPECT_EQ(cast->info.width, 80);
    EXPECT_EQ(cast->Output(), shown);
    ASSERT_GE(cast->events.size(), 2u);
    const auto& resize = cast->events[cast->events.size() - 2];
    EXPECT_EQ(resize.code, "r");
    EXPECT_EQ(resize.data, "100x30");
    EXPECT_EQ(cast->events.back().code, "x");
    EXPECT_EQ(cast->events.back().data, "0");

    // Exec.
    const std::string exec_id = "exec-" + mode.name;
    {
      RecordCall call(stub.get(), node);
      ASSERT_TRUE(call.Send(HeaderFrame(exec_id, alice, SESSION_KIND_EXEC)));
      ASSERT_TRUE(call.Send(ChunkFrame(1000, DIRECTION_OUT, "Linux ")));
      ASSERT_TRUE(call.Send(ChunkFrame(1500, DIRECTION_OUT, "web-01\n")));
      ASSERT_TRUE(call.Send(ChunkFrame(2000, DIRECTION_ERR, "warning: x\n")));
      ASSERT_TRUE(call.Send(ResizeFrame(2500, 120, 40)));
      ASSERT_TRUE(call.Send(ExitFrame(3000, 3)));
      grpc::Status s = call.Close();
      ASSERT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(call.summary.storage_key(),
                "alice/exec/" + exec_id + mode.cast_suffix);
    }
    EXPECT_TRUE(
        ObjectExists(prefix + "alice/exec/" + exec_id + mode.cast_suffix));
    rs = ReadRecording(*server, exec_id, &text);
    ASSERT_TRUE(rs.ok()) << rs.error_message();
    cast = ParseCast(text);
    ASSERT_TRUE(cast.ok()) << cast.status().ToString() << "\n" << text;
    EXPECT_EQ(cast->info.command, "uname -a");
    std::string all;
    for (const auto& e : cast->events) {
      if (e.code != "x" && e.code != "r") all += e.data;
    }
    EXPECT_EQ(all, "Linux web-01\nwarning: x\n");
    ASSERT_FALSE(cast->events.empty());
    EXPECT_EQ(cast->events.back().code, "x");
    EXPECT_EQ(cast->events.back().data, "3");

    // A tcpip channel: its pcap is completed by EndRecordingSession.
    const std::string chan_id = "chan-" + mode.name;
    const std::string conn = "conn-" + mode.name;
    const std::string up = "SELECT 1;\n";
    const std::string down = RandomText(70'000, 7);
    std::string pcap_key;
    {
      RecordCall call(stub.get(), node);
      auto h = HeaderFrame(chan_id, alice, SESSION_KIND_TCPIP);
      h.mutable_header()->set_connection_id(conn);
      h.mutable_header()->set_src_host("127.0.0.1");
      h.mutable_header()->set_src_port(40000);
      ASSERT_TRUE(call.Send(h));
      ASSERT_TRUE(call.Send(ChunkFrame(100, DIRECTION_IN, up)));
      ASSERT_TRUE(call.Send(ChunkFrame(200, DIRECTION_OUT, down)));
      grpc::Status s = call.Close();
      ASSERT_TRUE(s.ok()) << s.error_message();
      pcap_key = call.summary.storage_key();
    }
    EXPECT_EQ(
        pcap_key.rfind("alice/tcpip/" + conn + "_db.internal_5432.pcap", 0), 0u)
        << pcap_key;
    {
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", "Bearer " + node);
      mezite::v1::EndRecordingSessionRequest req;
      req.set_connection_id(conn);
      mezite::v1::EndRecordingSessionResponse resp;
      grpc::Status s = stub->EndRecordingSession(&ctx, req, &resp);
      ASSERT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(resp.closed_files(), 1u);
    }
    EXPECT_EQ(pcap_key, "alice/tcpip/" + conn + "_db.internal_5432.pcap" +
                            (mode.name == "gzip" ? ".gz" : ""));
    std::optional<std::string> key;
    if (mode.name == "enc") key = *record::ParseKeyHex(kKeyHex);
    auto pcap_obj = s3_->GetObject(prefix + pcap_key);
    ASSERT_TRUE(pcap_obj.ok()) << pcap_obj.status().ToString();
    {
      SCOPED_TRACE("the pcap object in the bucket");
      CheckPcap(record::OpenRecordingBytes(*pcap_obj), key, up, down);
    }
    rs = ReadRecording(*server, chan_id, &text);
    EXPECT_TRUE(rs.ok()) << rs.error_message();
    if (rs.ok()) {
      SCOPED_TRACE("the pcap from ReadRecording");
      CheckPcap(std::make_unique<record::StringSource>(text), key, up, down);
    }

    stub.reset();
    EXPECT_EQ(server->Stop(), 0) << server->log();
  }
}

TEST_F(ScaleoutTest, FiftyMegabyteRecordingGoesMultipart) {
  const std::string prefix = "big/";
  auto server = StartServer("big", S3Env(prefix));
  ASSERT_NE(server, nullptr);
  auto stub = server->Stub();
  constexpr int kChunks = 200;  // 50 MiB.
  std::string sent;
  {
    RecordCall call(stub.get(), server->Token(auth::Role::kNode, "web-01"));
    ASSERT_TRUE(call.Send(HeaderFrame("big-1", server->Grant("alice", "web-01"),
                                      SESSION_KIND_SHELL)));
    for (int i = 0; i < kChunks; ++i) {
      std::string data = RandomText(kChunk, 1000 + i);
      ASSERT_TRUE(call.Send(ChunkFrame((i + 1) * 1000, DIRECTION_OUT, data)))
          << "chunk " << i;
      sent += data;
    }
    ASSERT_TRUE(call.Send(ExitFrame(kChunks * 1000 + 1, 0)));
    grpc::Status s = call.Close();
    ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << server->log();
    EXPECT_EQ(call.summary.bytes(), sent.size());
  }
  auto head = s3_->HeadObject(prefix + "alice/shell/big-1.cast");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_GT(head->size, sent.size());
  std::string etag = Unquote(head->etag);
  size_t dash = etag.rfind('-');
  ASSERT_NE(dash, std::string::npos) << "not a multipart ETag: " << etag;
  EXPECT_GE(std::stoi(etag.substr(dash + 1)), 2) << etag;

  std::string text;
  grpc::Status rs = ReadRecording(*server, "big-1", &text);
  ASSERT_TRUE(rs.ok()) << rs.error_message();
  EXPECT_EQ(text.size(), head->size);
  auto cast = ParseCast(std::move(text));
  ASSERT_TRUE(cast.ok()) << cast.status().ToString();
  EXPECT_FALSE(cast->truncated);
  EXPECT_EQ(cast->events.size(), kChunks + 1u);
  std::string out = cast->Output();
  EXPECT_EQ(out.size(), sent.size());
  EXPECT_TRUE(out == sent) << "50 MiB output differs";
  stub.reset();
  EXPECT_EQ(server->Stop(), 0) << server->log();
}

// kill -9 while a recording is being uploaded in parts: the restarted
// mezrecd completes the object from its local spool with exactly what it
// had written, and leaves no spool and no multipart upload behind.
TEST_F(ScaleoutTest, KilledMidUploadCompletesFromLocalSpoolOnRestart) {
  const std::string prefix = "crash/";
  auto server = StartServer("crash", S3Env(prefix));
  ASSERT_NE(server, nullptr);
  const std::string spool = server->data_dir() + "/s3-spool";
  const std::string key = "alice/shell/crash-1.cast";
  constexpr int kChunks = 120;  // 30 MiB.
  std::vector<std::string> sent;
  {
    auto stub = server->Stub();
    RecordCall call(stub.get(), server->Token(auth::Role::kNode, "web-01"));
    ASSERT_TRUE(call.Send(HeaderFrame(
        "crash-1", server->Grant("alice", "web-01"), SESSION_KIND_SHELL)));
    for (int i = 0; i < kChunks; ++i) {
      sent.push_back(RandomText(kChunk, 5000 + i));
      ASSERT_TRUE(
          call.Send(ChunkFrame((i + 1) * 1000, DIRECTION_OUT, sent.back())))
          << "chunk " << i;
    }
    bool in_progress = PollUntil([&] {
      auto ups = s3_->ListMultipartUploads(prefix);
      if (!ups.ok()) return false;
      for (const auto& u : *ups) {
        if (u.key == prefix + key) return true;
      }
      return false;
    });
    ASSERT_TRUE(in_progress) << server->log();
    EXPECT_FALSE(ObjectExists(prefix + key));
    EXPECT_FALSE(ListFiles(spool).empty());
    server->Kill9();
    call.ctx.TryCancel();
    EXPECT_FALSE(call.Close().ok());
  }

  ASSERT_TRUE(server->Start()) << server->log();
  ASSERT_TRUE(PollUntil([&] { return ObjectExists(prefix + key); }))
      << server->log();
  EXPECT_TRUE(PollUntil([&] { return ListFiles(spool).empty(); }))
      << "left in " << spool << ": " << ListFiles(spool).size() << " files";
  auto ups = s3_->ListMultipartUploads(prefix);
  ASSERT_TRUE(ups.ok()) << ups.status().ToString();
  EXPECT_TRUE(ups->empty()) << ups->size() << " multipart uploads left";

  auto obj = s3_->GetObject(prefix + key);
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  // A part had been uploaded, so at least 5 MiB had been written.
  EXPECT_GE(obj->size(), 5u << 20);
  RecordProperty("recovered_object_bytes", std::to_string(obj->size()));
  auto cast = ParseCast(*obj);
  ASSERT_TRUE(cast.ok()) << cast.status().ToString();
  // Every whole event is the next chunk sent; only a partial last line
  // (dropped by the reader) may follow.
  RecordProperty("recovered_events", std::to_string(cast->events.size()));
  ASSERT_LE(cast->events.size(), sent.size());
  ASSERT_GE(cast->events.size(), (5u << 20) / kChunk - 1);
  for (size_t i = 0; i < cast->events.size(); ++i) {
    ASSERT_EQ(cast->events[i].code, "o") << "event " << i;
    ASSERT_TRUE(cast->events[i].data == sent[i]) << "event " << i;
  }
  // The object is the asciicast the server wrote, cut at a line boundary
  // or in the middle of the next event line.
  if (!cast->truncated) {
    EXPECT_EQ(obj->back(), '\n');
  }

  // Played through the RPC: the same bytes, marked incomplete.
  std::string text;
  mezite::v1::SessionInfo info;
  grpc::Status rs = ReadRecording(*server, "crash-1", &text, &info);
  ASSERT_TRUE(rs.ok()) << rs.error_message();
  EXPECT_TRUE(text == *obj) << text.size() << " vs " << obj->size();
  EXPECT_EQ(info.status(), "incomplete");
  EXPECT_EQ(server->Stop(), 0) << server->log();
}

// Copies what makes two data dirs one cluster (libmez/auth/keys.cc): the
// name, the token and SSH CA keys, the TLS CA. Each replica makes its own
// TLS server certificate and admin.identity.
void CopyClusterKeys(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  fs::create_directories(to);
  fs::permissions(to, fs::perms::owner_all);
  for (const char* f : {"cluster_name", "jwt.key", "user_ca.key", "host_ca.key",
                        "tls_ca.key", "tls_ca.crt"}) {
    fs::copy_file(from + "/" + f, to + "/" + f);
    fs::permissions(to + "/" + f,
                    fs::perms::owner_read | fs::perms::owner_write);
  }
}

grpc::Status Upload(const Mezrecd& server, const std::string& node_token,
                    const std::string& session_id, const std::string& spool,
                    const std::string& sha, uint64_t offset,
                    mezite::v1::UploadStatus* resp) {
  auto stub = server.Stub();
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + node_token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto w = stub->Upload(&ctx, resp);
  mezite::v1::UploadFrame f;
  f.mutable_start()->set_session_id(session_id);
  f.mutable_start()->set_total_size(spool.size());
  f.mutable_start()->set_sha256(sha);
  f.mutable_start()->set_offset(offset);
  w->Write(f);
  for (uint64_t at = offset; at < spool.size(); at += kChunk) {
    f.set_data(spool.substr(at, kChunk));
    if (!w->Write(f)) break;
  }
  w->WritesDone();
  return w->Finish();
}

grpc::Status GetUploadStatus(const Mezrecd& server,
                             const std::string& node_token,
                             const std::string& session_id,
                             const std::string& spool, const std::string& sha,
                             mezite::v1::UploadStatus* resp) {
  auto stub = server.Stub();
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + node_token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  mezite::v1::UploadStatusRequest req;
  req.set_session_id(session_id);
  req.set_total_size(spool.size());
  req.set_sha256(sha);
  return stub->GetUploadStatus(&ctx, req, resp);
}

TEST_F(ScaleoutTest, TwoReplicasShareCatalogBucketAndUploads) {
  auto pg = SharedPostgresServer();
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  auto url = (*pg)->CreateSchema();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  auto env = S3Env("shared/");
  env["MEZITE_DB_URL"] = *url;

  auto a = StartServer("a", env);
  ASSERT_NE(a, nullptr);
  CopyClusterKeys(a->data_dir(), dir_.path() + "/b");
  auto b = StartServer("b", env);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a->addr(), b->addr());
  EXPECT_NE(ReadFile(b->data_dir() + "/admin.identity")->find(b->addr()),
            std::string::npos);

  // Recorded through A, listed and played through B.
  std::string shown = RecordShell(*a, "repl-shell");
  EXPECT_TRUE(ObjectExists("shared/alice/shell/repl-shell.cast"));
  {
    auto cluster = mezite::v1::Cluster::NewStub(b->Channel());
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + AdminToken(*b));
    mezite::v1::ListSessionsRequest req;
    mezite::v1::ListSessionsResponse resp;
    grpc::Status s = cluster->ListSessions(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    bool found = false;
    for (const auto& si : resp.sessions()) {
      if (si.id() != "repl-shell") continue;
      found = true;
      EXPECT_EQ(si.status(), "complete");
      EXPECT_EQ(si.user(), "alice");
    }
    EXPECT_TRUE(found);
  }
  std::string text;
  grpc::Status rs = ReadRecording(*b, "repl-shell", &text);
  ASSERT_TRUE(rs.ok()) << rs.error_message();
  auto cast = ParseCast(text);
  ASSERT_TRUE(cast.ok()) << cast.status().ToString();
  EXPECT_EQ(cast->Output(), shown);

  // A setting changed on A is what B reads.
  {
    auto ca = mezite::v1::Cluster::NewStub(a->Channel());
    auto cb = mezite::v1::Cluster::NewStub(b->Channel());
    auto get = [&](std::string* value) {
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", "Bearer " + AdminToken(*b));
      mezite::v1::GetConfigRequest req;
      req.set_key("session_recording");
      mezite::v1::ConfigValue v;
      grpc::Status s = cb->GetConfig(&ctx, req, &v);
      *value = v.value();
      return s;
    };
    auto set = [&](const std::string& value) {
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", "Bearer " + AdminToken(*a));
      mezite::v1::SetConfigRequest req;
      req.set_key("session_recording");
      req.set_value(value);
      mezite::v1::ConfigValue v;
      return ca->SetConfig(&ctx, req, &v);
    };
    std::string before, after;
    ASSERT_TRUE(get(&before).ok());
    EXPECT_NE(before, "off");
    ASSERT_TRUE(set("off").ok());
    ASSERT_TRUE(get(&after).ok());
    EXPECT_EQ(after, "off");
    ASSERT_TRUE(set(before.empty() ? "node-sync" : before).ok());
  }

  // A node registered through A records through B; A plays it.
  {
    std::string err;
    a->RegisterNode("web-02", "127.0.0.1:2222", &err);
    ASSERT_EQ(err, "");
    std::string shown2 = RecordShell(*b, "repl-web02", "web-02");
    rs = ReadRecording(*a, "repl-web02", &text);
    ASSERT_TRUE(rs.ok()) << rs.error_message();
    cast = ParseCast(text);
    ASSERT_TRUE(cast.ok()) << cast.status().ToString();
    EXPECT_EQ(cast->Output(), shown2);
  }

  // A node-mode upload: A dies with half of the spool sent; B takes the
  // rest from the offset it reports and stores the whole session.
  const std::string sid = "repl-upload";
  const std::string spool_path = dir_.path() + "/" + sid + ".spool";
  std::string output;
  {
    auto h = HeaderFrame(sid, a->Grant("alice", "web-01"), SESSION_KIND_SHELL);
    h.mutable_header()->set_started_at_us(
        std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
    auto w = spool::SpoolWriter::Create(spool_path, h);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (int i = 0; i < 16; ++i) {
      std::string data = RandomText(kChunk, 9000 + i);
      output += data;
      ASSERT_TRUE(
          (*w)->Append(ChunkFrame((i + 1) * 1000, DIRECTION_OUT, data)).ok());
    }
    ASSERT_TRUE((*w)->Append(ExitFrame(17'000, 0)).ok());
    ASSERT_TRUE((*w)->End().ok());
  }
  std::string spool = *ReadFile(spool_path);
  auto sha = spool::FileSha256(spool_path);
  ASSERT_TRUE(sha.ok());
  const std::string node = a->Token(auth::Role::kNode, "web-01");
  {
    auto stub = a->Stub();
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + node);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(60));
    mezite::v1::UploadStatus resp;
    auto w = stub->Upload(&ctx, &resp);
    mezite::v1::UploadFrame f;
    f.mutable_start()->set_session_id(sid);
    f.mutable_start()->set_total_size(spool.size());
    f.mutable_start()->set_sha256(*sha);
    f.mutable_start()->set_offset(0);
    ASSERT_TRUE(w->Write(f));
    const uint64_t half = spool.size() / 2;
    for (uint64_t at = 0; at < half; at += kChunk) {
      f.set_data(spool.substr(at, std::min<uint64_t>(kChunk, half - at)));
      ASSERT_TRUE(w->Write(f));
    }
    const std::string part = a->data_dir() + "/uploads/web-01/" + sid + ".part";
    EXPECT_TRUE(PollUntil([&] {
      auto files = ListFiles(a->data_dir() + "/uploads");
      auto it = files.find("web-01/" + sid + ".part");
      return it != files.end() && it->second > 0;
    })) << "no partial copy at "
        << part;
    a->Kill9();
    ctx.TryCancel();
    EXPECT_FALSE(w->Finish().ok());
  }
  mezite::v1::UploadStatus st;
  grpc::Status s = GetUploadStatus(*b, node, sid, spool, *sha, &st);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(st.complete());
  ASSERT_LE(st.received(), spool.size());
  RecordProperty("replica_b_received", std::to_string(st.received()));
  RecordProperty("spool_size", std::to_string(spool.size()));
  s = Upload(*b, node, sid, spool, *sha, st.received(), &st);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << b->log();
  EXPECT_TRUE(st.complete());
  EXPECT_EQ(st.received(), spool.size());
  EXPECT_EQ(st.storage_key(), "alice/shell/" + sid + ".cast");
  ASSERT_TRUE(GetUploadStatus(*b, node, sid, spool, *sha, &st).ok());
  EXPECT_TRUE(st.complete());
  EXPECT_TRUE(ObjectExists("shared/alice/shell/" + sid + ".cast"));
  mezite::v1::SessionInfo info;
  rs = ReadRecording(*b, sid, &text, &info);
  ASSERT_TRUE(rs.ok()) << rs.error_message();
  EXPECT_EQ(info.status(), "complete");
  cast = ParseCast(text);
  ASSERT_TRUE(cast.ok()) << cast.status().ToString();
  EXPECT_TRUE(cast->Output() == output)
      << cast->Output().size() << " of " << output.size() << " bytes";
  EXPECT_EQ(b->Stop(), 0) << b->log();
}

// The status `server` lists for session `id`; "" when it lists none.
std::string ListedStatus(const Mezrecd& server, const std::string& id) {
  auto cluster = mezite::v1::Cluster::NewStub(server.Channel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + AdminToken(server));
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  mezite::v1::ListSessionsRequest req;
  mezite::v1::ListSessionsResponse resp;
  if (!cluster->ListSessions(&ctx, req, &resp).ok()) return "";
  for (const auto& si : resp.sessions()) {
    if (si.id() == id) return si.status();
  }
  return "";
}

// A replica killed while it records a live stream leaves that session
// "recording" in the shared catalog; another replica, once the dead one's
// lease is older than its replicaLeaseTimeout, marks it incomplete, and
// leaves its own live session alone.
TEST_F(ScaleoutTest, CrashedReplicasLiveSessionIsMarkedIncompleteByAnother) {
  auto pg = SharedPostgresServer();
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  auto url = (*pg)->CreateSchema();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  auto env = S3Env("lease/");
  env["MEZITE_DB_URL"] = *url;
  auto a = StartServer("a", env);
  ASSERT_NE(a, nullptr);
  CopyClusterKeys(a->data_dir(), dir_.path() + "/b");
  env["MEZITE_REPLICA_LEASE_TIMEOUT"] = "2s";
  auto b = StartServer("b", env);
  ASSERT_NE(b, nullptr);

  // One live stream on each replica.
  auto open = [](const Mezrecd& server, RecordCall* call,
                 const std::string& id) {
    auto h =
        HeaderFrame(id, server.Grant("alice", "web-01"), SESSION_KIND_SHELL);
    EXPECT_TRUE(call->Send(h));
    EXPECT_TRUE(call->Send(ChunkFrame(1000, DIRECTION_OUT, "$ top\r\n")));
  };
  auto stub_a = a->Stub();
  auto call_a = std::make_unique<RecordCall>(
      stub_a.get(), a->Token(auth::Role::kNode, "web-01"));
  open(*a, call_a.get(), "lease-a");
  auto stub_b = b->Stub();
  RecordCall call_b(stub_b.get(), b->Token(auth::Role::kNode, "web-01"));
  open(*b, &call_b, "lease-b");
  ASSERT_TRUE(PollUntil(
      [&] {
        return ListedStatus(*b, "lease-a") == "recording" &&
               ListedStatus(*b, "lease-b") == "recording";
      },
      30))
      << "lease-a: " << ListedStatus(*b, "lease-a")
      << ", lease-b: " << ListedStatus(*b, "lease-b");

  a->Kill9();
  call_a->ctx.TryCancel();
  EXPECT_FALSE(call_a->Close().ok());
  call_a.reset();
  EXPECT_TRUE(PollUntil(
      [&] { return ListedStatus(*b, "lease-a") == "incomplete"; }, 30))
      << "lease-a is '" << ListedStatus(*b, "lease-a") << "'\n"
      << b->log();
  EXPECT_NE(b->log().find("marked incomplete"), std::string::npos) << b->log();

  // More than a lease timeout later, B's own stream is still live, takes
  // frames and ends complete.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(ListedStatus(*b, "lease-b"), "recording");
  EXPECT_TRUE(call_b.Send(ChunkFrame(2000, DIRECTION_OUT, "load 0.01\r\n")));
  EXPECT_TRUE(call_b.Send(ExitFrame(3000, 0)));
  grpc::Status s = call_b.Close();
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << b->log();
  EXPECT_EQ(ListedStatus(*b, "lease-b"), "complete");
  std::string text;
  grpc::Status rs = ReadRecording(*b, "lease-b", &text);
  ASSERT_TRUE(rs.ok()) << rs.error_message();
  auto cast = ParseCast(text);
  ASSERT_TRUE(cast.ok()) << cast.status().ToString();
  EXPECT_EQ(cast->Output(), "$ top\r\nload 0.01\r\n");

  // The agent's node-mode copy of the interrupted session, uploaded to B,
  // replaces what A left: the session ends complete.
  const std::string spool_path = dir_.path() + "/lease-a.spool";
  std::string output;
  {
    auto h =
        HeaderFrame("lease-a", b->Grant("alice", "web-01"), SESSION_KIND_SHELL);
    h.mutable_header()->set_started_at_us(
        std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
    auto w = spool::SpoolWriter::Create(spool_path, h);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (int i = 0; i < 3; ++i) {
      std::string data = RandomText(1000, 7000 + i);
      output += data;
      ASSERT_TRUE(
          (*w)->Append(ChunkFrame((i + 1) * 1000, DIRECTION_OUT, data)).ok());
    }
    ASSERT_TRUE((*w)->Append(ExitFrame(4000, 0)).ok());
    ASSERT_TRUE((*w)->End().ok());
  }
  std::string spool = *ReadFile(spool_path);
  auto sha = spool::FileSha256(spool_path);
  ASSERT_TRUE(sha.ok());
  mezite::v1::UploadStatus st;
  s = Upload(*b, b->Token(auth::Role::kNode, "web-01"), "lease-a", spool, *sha,
             0, &st);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << b->log();
  EXPECT_TRUE(st.complete());
  EXPECT_EQ(ListedStatus(*b, "lease-a"), "complete");
  rs = ReadRecording(*b, "lease-a", &text);
  ASSERT_TRUE(rs.ok()) << rs.error_message();
  cast = ParseCast(text);
  ASSERT_TRUE(cast.ok()) << cast.status().ToString();
  EXPECT_EQ(cast->Output(), output);
  EXPECT_EQ(b->Stop(), 0) << b->log();
}

// A permanent S3 error in the middle of live sessions: the bucket is
// deleted while a recording is being uploaded in parts (Swift's s3api
// deletes a bucket's unfinished multipart uploads with it). That session
// does not run on unrecorded: its next part fails, and its Record stream
// with it, carrying a message that names MEZITE_S3_BUCKET (a node-sync
// mezd ends the user's session on that and shows the message;
// MezdModesTest covers mezd's side). A small session, which never filled
// a part, learns it at its end. Each is marked incomplete with one log
// line naming the setting, and with the bucket back the next session is
// recorded.
TEST_F(ScaleoutTest, DeletedBucketFailsLiveStreamsNamingTheSetting) {
  const std::string prefix = "gone/";
  auto server = StartServer("gone", S3Env(prefix));
  ASSERT_NE(server, nullptr);
  auto stub = server->Stub();
  const std::string node = server->Token(auth::Role::kNode, "web-01");
  const std::string alice = server->Grant("alice", "web-01");
  RecordCall small(stub.get(), node);
  ASSERT_TRUE(small.Send(HeaderFrame("gone-small", alice, SESSION_KIND_EXEC)));
  ASSERT_TRUE(small.Send(ChunkFrame(1000, DIRECTION_OUT, "hello\n")));

  const std::string id = "gone-1";
  const std::string key = prefix + "alice/shell/" + id + ".cast";
  RecordCall call(stub.get(), node);
  ASSERT_TRUE(call.Send(HeaderFrame(id, alice, SESSION_KIND_SHELL)));
  int chunks = 0;
  auto send_chunk = [&] {
    ++chunks;
    return call.Send(ChunkFrame(chunks * 1000, DIRECTION_OUT,
                                RandomText(kChunk, 20'000 + chunks)));
  };
  // 6 MiB: the first 5 MiB part starts the multipart upload.
  for (int i = 0; i < 24; ++i) ASSERT_TRUE(send_chunk()) << "chunk " << i;
  ASSERT_TRUE(PollUntil([&] {
    auto ups = s3_->ListMultipartUploads(prefix);
    if (!ups.ok()) return false;
    for (const auto& u : *ups) {
      if (u.key == key) return true;
    }
    return false;
  })) << server->log();
  EXPECT_EQ(ListedStatus(*server, id), "recording");

  Status deleted;
  ASSERT_TRUE(PollUntil([&] {
    deleted = s3_->DeleteBucket();
    return deleted.ok();
  })) << deleted.ToString();

  // The session goes on printing. Bounded by bytes, not time: up to
  // 100 MiB more, while the next part (5 MiB on) must fail.
  bool stream_failed = false;
  for (int i = 0; i < 400 && !stream_failed; ++i) stream_failed = !send_chunk();
  EXPECT_TRUE(stream_failed)
      << "the stream took " << chunks << " chunks with the bucket gone";
  RecordProperty("chunks_sent", std::to_string(chunks));
  const std::string cause =
      "bucket " + bucket_ + " does not exist: check MEZITE_S3_BUCKET";
  grpc::Status s = call.Close();
  ASSERT_FALSE(s.ok()) << "the session ended as if recorded\n" << server->log();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << s.error_message();
  // What a node-sync mezd shows the user, after "session recording failed".
  EXPECT_NE(s.error_message().find(cause), std::string::npos)
      << s.error_message();

  // The small session ends: its only upload, at the end, fails.
  EXPECT_TRUE(small.Send(ExitFrame(2000, 0)));
  grpc::Status small_s = small.Close();
  EXPECT_FALSE(small_s.ok()) << server->log();
  EXPECT_NE(small_s.error_message().find(cause), std::string::npos)
      << small_s.error_message();

  for (const std::string& sid : {id, std::string("gone-small")}) {
    EXPECT_TRUE(PollUntil(
        [&] { return ListedStatus(*server, sid) == "incomplete"; }, 30))
        << sid << ": '" << ListedStatus(*server, sid) << "'\n"
        << server->log();
  }
  // One line per session in mezrecd's log says what to fix.
  std::vector<std::string> named;
  std::istringstream log(server->log());
  for (std::string line; std::getline(log, line);) {
    if (line.find(cause) != std::string::npos) named.push_back(line);
  }
  ASSERT_EQ(named.size(), 2u) << server->log();
  EXPECT_NE(named[0].find("Record from web-01 refused"), std::string::npos)
      << named[0];
  EXPECT_NE(named[1].find("session gone-small: writing s3://" + bucket_ +
                          "/gone/alice/exec/gone-small.cast"),
            std::string::npos)
      << named[1];
  RecordProperty("log_line", named[0]);

  // mezrecd is not stuck on the error: with the bucket back, the next
  // session is recorded whole.
  ASSERT_TRUE(s3_->CreateBucket().ok());
  RecordShell(*server, "gone-2");
  auto obj = s3_->GetObject(prefix + "alice/shell/gone-2.cast");
  ASSERT_TRUE(obj.ok()) << obj.status().ToString() << "\n" << server->log();
  EXPECT_EQ(ListedStatus(*server, "gone-2"), "complete");
  stub.reset();
  EXPECT_EQ(server->Stop(), 0) << server->log();
}

// The same with a real mezd recording in node-sync and a user on msh ssh:
// deleting the bucket mid-session ends the user's session, and the reason
// on their terminal names the setting to fix. Never runs unrecorded.
TEST_F(ScaleoutTest, DeletedBucketEndsARealNodeSyncSession) {
  const std::string prefix = "gone-real/";
  auto server = StartServer("gone-real", S3Env(prefix));
  ASSERT_NE(server, nullptr);
  std::string error;
  TestUser alice;
  ASSERT_TRUE(AddUserAndLogin(*server, dir_.path(), "alice", CurrentLogin(),
                              &alice, &error))
      << error;
  MezdOptions mo;
  mo.node_name = "web-real";
  mo.env = {"MEZITE_RECORDING_MODE=node-sync"};
  auto mezd = StartRegisteredNode(server.get(), dir_.path(), mo, &error);
  ASSERT_NE(mezd, nullptr) << error;
  std::string log = dir_.File("real-session.log");
  // Output without end for this test's purpose (bounded at 130 MB of text
  // should the recording never fail).
  Background session("HOME=" + ShellQuote(alice.home) + " MEZ_IDENTITY= " +
                         ShellQuote(MSH_PATH) + " ssh web-real " +
                         ShellQuote("head -c 100000000 /dev/urandom | base64; "
                                    "echo finished-unrecorded"),
                     log);
  // The first 5 MiB part started a multipart upload.
  ASSERT_TRUE(PollUntil([&] {
    auto ups = s3_->ListMultipartUploads(prefix);
    return ups.ok() && !ups->empty();
  })) << server->log();
  Status deleted;
  ASSERT_TRUE(PollUntil([&] {
    deleted = s3_->DeleteBucket();
    return deleted.ok();
  })) << deleted.ToString();
  ASSERT_TRUE(PollUntil([&] { return !session.running(); }, 120))
      << "the session kept running";
  // The user's stderr (merged into the log) carries the reason.
  auto text = ReadFile(log);
  ASSERT_TRUE(text.ok());
  std::string tail_text =
      text->substr(text->size() > 4096 ? text->size() - 4096 : 0);
  EXPECT_NE(tail_text.find("session recording failed"), std::string::npos)
      << tail_text;
  EXPECT_NE(tail_text.find("MEZITE_S3_BUCKET"), std::string::npos) << tail_text;
  EXPECT_EQ(text->find("finished-unrecorded"), std::string::npos);
  // Recreate the bucket for the tests after this one.
  ASSERT_TRUE(PollUntil([&] { return s3_->CreateBucket().ok(); }));
  EXPECT_EQ(mezd->Stop(), 0) << mezd->log();
}

}  // namespace
}  // namespace mez::testing
