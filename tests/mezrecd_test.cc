// mezrecd end to end: a real server process, real gRPC over loopback TLS,
// real files checked with asciinema, tshark and our readers.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <set>
#include <thread>

#include "libmez/auth/identity.h"
#include "libmez/auth/keys.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/catalog/catalog.h"
#include "libmez/record/asciicast_reader.h"
#include "libmez/record/pcap_reader.h"
#include "libmez/rpc/cluster_service.h"
#include "libmez/util/file.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "tests/mezrecd_harness.h"
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

class MezrecdTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> args = {},
                   std::map<std::string, std::string> env = {}) {
    server_ =
        std::make_unique<Mezrecd>(data_dir(), std::move(args), std::move(env));
    ASSERT_TRUE(server_->Start()) << server_->log();
    {
      std::string err;
      server_->RegisterNode("web-01", "127.0.0.1:22", &err);
      ASSERT_EQ(err, "") << "registering node web-01";
    }
    stub_ = server_->Stub();
    node_ = server_->Token(auth::Role::kNode, "web-01");
    alice_ = server_->Token(auth::Role::kUser, "alice");
    grant_ = server_->Grant("alice", "web-01");
    ASSERT_FALSE(grant_.empty());
    ASSERT_FALSE(node_.empty());
  }
  // Closes the client channel first: gRPC's shutdown otherwise waits some
  // seconds for an idle connected client to go away.
  void StopServer() {
    stub_.reset();
    EXPECT_EQ(server_->Stop(), 0);
  }
  std::string data_dir() const { return dir_.path() + "/data"; }
  std::string storage() const { return data_dir() + "/recordings"; }

  std::unique_ptr<catalog::Catalog> OpenCatalog() {
    auto c = catalog::OpenSqliteCatalog(data_dir() + "/catalog.db");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  // Records a shell session and returns the output the viewer saw.
  std::string RecordShell(const std::string& id) {
    RecordCall call(stub_.get(), node_);
    EXPECT_TRUE(call.Send(HeaderFrame(id, grant_, SESSION_KIND_SHELL)));
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
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(call.summary.session_id(), id);
    EXPECT_EQ(call.summary.bytes(), shown.size());
    return shown;
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> server_;
  std::unique_ptr<mezite::v1::Recording::Stub> stub_;
  std::string node_, alice_;
  std::string grant_;  // alice's recording grant for web-01.
};

TEST_F(MezrecdTest, CreatesItsDataDirWithKeysAndAdminIdentity) {
  StartServer();
  for (const char* f :
       {"jwt.key", "user_ca.key", "host_ca.key", "tls_ca.crt", "tls_server.crt",
        "tls_server.key", "admin.identity", "catalog.db"}) {
    struct stat st;
    ASSERT_EQ(stat((data_dir() + "/" + f).c_str(), &st), 0) << f;
  }
  struct stat st;
  ASSERT_EQ(stat((data_dir() + "/admin.identity").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string id = *ReadFile(data_dir() + "/admin.identity");
  EXPECT_NE(id.find(server_->addr()), std::string::npos);
  EXPECT_NE(id.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_EQ(server_->Stop(), 0);
}

// Nodes and clients check mezrecd's certificate against the host they
// dial: a name from --tls-names must be in it, checked here by a real TLS
// client (openssl) against the cluster CA; a name not given must not be.
TEST_F(MezrecdTest, TlsNamesAreInTheServedCertificate) {
  StartServer({"--tls-names", "auth.example,10.9.8.7"});
  std::string ca = data_dir() + "/tls_ca.crt";
  auto verify = [&](const std::string& check) {
    return ::mez::testing::Run("openssl s_client -connect " +
                               ShellQuote(server_->addr()) + " -CAfile " +
                               ShellQuote(ca) + " " + check +
                               " -verify_return_error -brief </dev/null 2>&1");
  };
  for (const char* ok :
       {"-verify_hostname auth.example", "-verify_ip 10.9.8.7",
        "-verify_ip 127.0.0.1", "-verify_hostname localhost"}) {
    // s_client exits 1 when mezrecd (gRPC, no ALPN h2 offered) closes the
    // connection after the handshake; the verdict is in its output.
    auto r = verify(ok);
    EXPECT_NE(r.out.find("Verification: OK"), std::string::npos)
        << ok << ": " << r.out;
  }
  for (const char* bad :
       {"-verify_hostname other.example", "-verify_ip 10.9.8.6"}) {
    auto r = verify(bad);
    EXPECT_NE(r.exit_code, 0) << bad << ": " << r.out;
    EXPECT_EQ(r.out.find("Verification: OK"), std::string::npos)
        << bad << ": " << r.out;
  }
  EXPECT_EQ(server_->Stop(), 0);
}

TEST_F(MezrecdTest, ShellStreamLandsInTheLayoutAndPlaysInAsciinema) {
  StartServer();
  std::string shown = RecordShell("sess-shell-1");
  std::string path = storage() + "/alice/shell/sess-shell-1.cast";
  auto played = ::mez::testing::Run("setsid asciinema play -s 1000 -i 0.001 " +
                                    ShellQuote(path));
  EXPECT_EQ(played.exit_code, 0);
  EXPECT_EQ(played.out, shown);
  auto reader = record::AsciicastReader::OpenFile(path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->info().width, 80);
  EXPECT_EQ((*reader)->info().env.at("TERM"), "xterm-256color");

  auto cat = OpenCatalog();
  auto s = cat->GetSession("sess-shell-1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->status, catalog::SessionStatus::kComplete);
  EXPECT_EQ(s->user, "alice");
  EXPECT_EQ(s->node, "web-01");
  EXPECT_EQ(s->storage_key, "alice/shell/sess-shell-1.cast");
  EXPECT_EQ(s->bytes, shown.size());
  catalog::AuditFilter f;
  f.session_id = "sess-shell-1";
  auto events = cat->ListAudit(f);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].type, "session.end");  // Newest first.
  EXPECT_NE((*events)[0].details.find("duration_us"), std::string::npos);
  EXPECT_EQ((*events)[1].type, "session.start");
}

TEST_F(MezrecdTest, ExecStreamKeepsStdoutStderrAndExitStatus) {
  StartServer();
  RecordCall call(stub_.get(), node_);
  ASSERT_TRUE(call.Send(HeaderFrame("sess-exec-1", grant_, SESSION_KIND_EXEC)));
  ASSERT_TRUE(call.Send(ChunkFrame(1000, DIRECTION_OUT, "Linux web-01\n")));
  ASSERT_TRUE(call.Send(ChunkFrame(2000, DIRECTION_ERR, "warning: x\n")));
  ASSERT_TRUE(call.Send(ExitFrame(3000, 3)));
  ASSERT_TRUE(call.Close().ok());
  auto reader = record::AsciicastReader::OpenFile(
      storage() + "/alice/exec/sess-exec-1.cast");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->info().command, "uname -a");
  std::vector<record::AsciicastEvent> events;
  record::AsciicastEvent e;
  while (*(*reader)->Next(&e)) events.push_back(e);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].data, "Linux web-01\n");
  EXPECT_EQ(events[1].data, "warning: x\n");
  EXPECT_EQ(events[2].code, "x");
  EXPECT_EQ(events[2].data, "3");
}

// Three channels of one connection to one destination share one pcap,
// open until EndRecordingSession; tshark follows each stream exactly.
TEST_F(MezrecdTest, TcpipChannelsShareOnePcapUntilEndRecordingSession) {
  StartServer();
  std::vector<std::pair<std::string, std::string>> flows;
  for (int i = 0; i < 3; ++i) {
    std::string id = "chan-" + std::to_string(i);
    RecordCall call(stub_.get(), node_);
    auto h = HeaderFrame(id, grant_, SESSION_KIND_TCPIP);
    h.mutable_header()->set_connection_id("conn-42");
    h.mutable_header()->set_src_host("127.0.0.1");
    h.mutable_header()->set_src_port(65535);  // What ssh -W reports.
    ASSERT_TRUE(call.Send(h));
    std::string up = "query " + std::to_string(i) + ";\n";
    std::string down(2000 + i * 3000, static_cast<char>('a' + i));
    ASSERT_TRUE(call.Send(ChunkFrame(100, DIRECTION_IN, up)));
    ASSERT_TRUE(call.Send(ChunkFrame(200, DIRECTION_OUT, down)));
    ASSERT_TRUE(call.Close().ok());
    EXPECT_EQ(call.summary.storage_key(),
              "alice/tcpip/conn-42_db.internal_5432.pcap");
    flows.push_back({up, down});
  }
  auto files = ListFiles(storage());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files.begin()->first, "alice/tcpip/conn-42_db.internal_5432.pcap");

  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + node_);
  mezite::v1::EndRecordingSessionRequest req;
  req.set_connection_id("conn-42");
  mezite::v1::EndRecordingSessionResponse resp;
  ASSERT_TRUE(stub_->EndRecordingSession(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.closed_files(), 1u);

  std::string pcap = storage() + "/alice/tcpip/conn-42_db.internal_5432.pcap";
  auto conv = ::mez::testing::Run("tshark -r " + ShellQuote(pcap) +
                                  " -q -z conv,tcp 2>&1");
  ASSERT_EQ(conv.exit_code, 0) << conv.out;
  auto reader = record::PcapReader::OpenFile(pcap);
  ASSERT_TRUE(reader.ok());
  auto flows_read = record::ReassembleFlows(reader->get());
  ASSERT_TRUE(flows_read.ok()) << flows_read.status().ToString();
  ASSERT_EQ(flows_read->flows.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    std::string follow = ::mez::testing::Run("tshark -r " + ShellQuote(pcap) +
                                             " -q -z follow,tcp,raw," +
                                             std::to_string(i) + " 2>&1")
                             .out;
    // Each direction's bytes appear hex-encoded in tshark's follow output.
    std::string hex;
    for (unsigned char c : flows[i].first) {
      char b[3];
      std::snprintf(b, sizeof(b), "%02x", c);
      hex += b;
    }
    EXPECT_NE(follow.find(hex), std::string::npos) << "stream " << i;
  }
}

TEST_F(MezrecdTest, GzipRecordingsPlayThroughZcat) {
  StartServer({"--gzip"});
  std::string shown = RecordShell("sess-gz");
  std::string path = storage() + "/alice/shell/sess-gz.cast.gz";
  auto played =
      ::mez::testing::Run("zcat " + ShellQuote(path) +
                          " | setsid asciinema play -s 1000 -i 0.001 -");
  EXPECT_EQ(played.exit_code, 0);
  EXPECT_EQ(played.out, shown);
}

TEST_F(MezrecdTest, EncryptedRecordingsOpenOnlyWithTheKey) {
  StartServer({}, {{"MEZITE_RECORDING_ENC_KEY", kKeyHex}});
  std::string shown = RecordShell("sess-enc");
  std::string path = storage() + "/alice/shell/sess-enc.cast";
  std::string raw = *ReadFile(path);
  // "[1;32m" cannot occur in base64 by chance (unlike, say, "ok").
  EXPECT_EQ(raw.find("[1;32m"), std::string::npos);
  EXPECT_EQ(raw.find("\\r\\n"), std::string::npos);
  auto key = record::ParseKeyHex(kKeyHex);
  auto reader = record::AsciicastReader::OpenFile(path, *key);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::string text;
  record::AsciicastEvent e;
  for (;;) {
    auto more = (*reader)->Next(&e);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    if (e.code == "o") text += e.data;
  }
  EXPECT_EQ(text, shown);
  auto cat = OpenCatalog();
  EXPECT_TRUE(cat->GetSession("sess-enc")->encrypted);
}

TEST_F(MezrecdTest, BadEncryptionKeyStopsStartup) {
  for (std::string bad :
       {std::string("abcd"), std::string(kKeyHex).substr(0, 63) + "g"}) {
    Mezrecd server(data_dir(), {}, {{"MEZITE_RECORDING_ENC_KEY", bad}});
    EXPECT_FALSE(server.Start());
    EXPECT_NE(server.log().find("MEZITE_RECORDING_ENC_KEY"), std::string::npos)
        << server.log();
    EXPECT_EQ(server.log().find(bad), std::string::npos) << "key echoed";
  }
}

TEST_F(MezrecdTest, ConfigFileEnvAndFlagsOverrideInOrder) {
  std::string yaml = dir_.File("mezrecd.yaml");
  WriteFileOrDie(yaml, "recording:\n  storagePath: " + dir_.File("from-file") +
                           "\n  gzip: true\n");
  {
    StartServer({"--config", yaml});
    RecordShell("s-file");
    StopServer();
    EXPECT_EQ(
        ListFiles(dir_.File("from-file")).count("alice/shell/s-file.cast.gz"),
        1u);
  }
  {
    StartServer({"--config", yaml},
                {{"MEZITE_RECORDING_STORAGE_PATH", dir_.File("from-env")},
                 {"MEZITE_RECORDING_GZIP", "false"}});
    RecordShell("s-env");
    StopServer();
    EXPECT_EQ(ListFiles(dir_.File("from-env")).count("alice/shell/s-env.cast"),
              1u);
  }
  {
    StartServer({"--config", yaml, "--storage-path", dir_.File("from-flag")},
                {{"MEZITE_RECORDING_STORAGE_PATH", dir_.File("from-env")}});
    RecordShell("s-flag");
    StopServer();
    EXPECT_EQ(
        ListFiles(dir_.File("from-flag")).count("alice/shell/s-flag.cast.gz"),
        1u);
  }
  WriteFileOrDie(yaml, "recording:\n  gzipp: true\n");
  Mezrecd bad(data_dir(), {"--config", yaml});
  EXPECT_FALSE(bad.Start());
  EXPECT_NE(bad.log().find("recording.gzipp"), std::string::npos) << bad.log();
  WriteFileOrDie(yaml, "recording:\n  formats:\n    shell: mp4\n");
  Mezrecd bad2(data_dir(), {"--config", yaml});
  EXPECT_FALSE(bad2.Start());
  EXPECT_NE(bad2.log().find("recording.formats.shell"), std::string::npos);
}

TEST_F(MezrecdTest, FormatsMapCanTurnAKindOff) {
  StartServer({}, {{"MEZITE_RECORDING_FORMATS", "exec=none"}});
  RecordCall call(stub_.get(), node_);
  ASSERT_TRUE(call.Send(HeaderFrame("sess-noexec", grant_, SESSION_KIND_EXEC)));
  ASSERT_TRUE(call.Send(ChunkFrame(1, DIRECTION_OUT, "hidden\n")));
  ASSERT_TRUE(call.Close().ok());
  EXPECT_TRUE(ListFiles(storage()).empty());
  auto s = OpenCatalog()->GetSession("sess-noexec");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->format, "none");
  EXPECT_EQ(s->status, catalog::SessionStatus::kComplete);
}

TEST_F(MezrecdTest, Kill9MidStreamLeavesAReadablePrefixAndIncompleteSession) {
  StartServer();
  auto call = std::make_unique<RecordCall>(stub_.get(), node_);
  ASSERT_TRUE(
      call->Send(HeaderFrame("sess-crash", grant_, SESSION_KIND_SHELL)));
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(call->Send(ChunkFrame(i * 1000, DIRECTION_OUT,
                                      "line " + std::to_string(i) + "\r\n")));
  }
  std::string path = storage() + "/alice/shell/sess-crash.cast";
  // Wait until the server has written what was sent (no fixed sleep).
  for (int i = 0; i < 500; ++i) {
    auto text = ReadFile(path);
    if (text.ok() && text->find("line 49") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server_->Kill9();
  call.reset();
  auto reader = record::AsciicastReader::OpenFile(path);
  ASSERT_TRUE(reader.ok());
  int n = 0;
  record::AsciicastEvent e;
  for (;;) {
    auto more = (*reader)->Next(&e);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    EXPECT_EQ(e.data, "line " + std::to_string(n) + "\r\n");
    ++n;
  }
  EXPECT_EQ(n, 50);

  StartServer();
  auto s = OpenCatalog()->GetSession("sess-crash");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->status, catalog::SessionStatus::kIncomplete);
  EXPECT_NE(server_->log().find("marked incomplete"), std::string::npos);
}

TEST_F(MezrecdTest, SigtermDrainsOpenStreams) {
  StartServer({}, {{"MEZITE_LOG_LEVEL", "info"}});
  RecordCall call(stub_.get(), node_);
  ASSERT_TRUE(call.Send(HeaderFrame("sess-drain", grant_, SESSION_KIND_SHELL)));
  ASSERT_TRUE(call.Send(ChunkFrame(1, DIRECTION_OUT, "before\r\n")));
  std::string path = storage() + "/alice/shell/sess-drain.cast";
  for (int i = 0; i < 500; ++i) {
    auto text = ReadFile(path);
    if (text.ok() && text->find("before") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::thread stopper([&] { EXPECT_EQ(server_->Stop(), 0); });
  // The stream in flight still completes during the drain.
  for (int i = 0;
       i < 500 && server_->log().find("draining") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(call.Send(ChunkFrame(2, DIRECTION_OUT, "during drain\r\n")));
  grpc::Status st = call.Close();
  stopper.join();
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_NE(ReadFile(path)->find("during drain"), std::string::npos);
  auto s = OpenCatalog()->GetSession("sess-drain");
  EXPECT_EQ(s->status, catalog::SessionStatus::kComplete);
}

TEST_F(MezrecdTest, CallersNeedANodeOrProxyCredential) {
  StartServer();
  {
    RecordCall call(stub_.get(), "");
    call.Send(HeaderFrame("s-anon", grant_, SESSION_KIND_SHELL));
    EXPECT_EQ(call.Close().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    RecordCall call(stub_.get(), alice_);  // A user cannot record for others.
    call.Send(HeaderFrame("s-user", grant_, SESSION_KIND_SHELL));
    EXPECT_EQ(call.Close().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_TRUE(ListFiles(storage()).empty());
  catalog::AuditFilter f;
  f.type = "recording.rejected";
  EXPECT_EQ(OpenCatalog()->ListAudit(f)->size(), 2u);
}

TEST_F(MezrecdTest, InsecureIsRefusedOffLoopback) {
  Mezrecd server(data_dir(), {"--insecure", "--listen", "0.0.0.0:0"});
  EXPECT_FALSE(server.Start());
  EXPECT_NE(server.log().find("loopback"), std::string::npos) << server.log();
}

// Revocation by id (issue 14, items 2, 4 and 5): every credential speaks
// for a catalog id, removing the name revokes it on every service, and
// adding the name again does not bring it back.
class RevocationTest : public MezrecdTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartServer());
    cluster_ = mezite::v1::Cluster::NewStub(server_->Channel());
    admin_ = server_->AdminToken();
    ASSERT_FALSE(admin_.empty());
  }

  // Calls a Cluster RPC with `token` as the bearer credential.
  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (mezite::v1::Cluster::Stub::*method)(
                        grpc::ClientContext*, const Req&, Resp*),
                    const std::string& token, const Req& req,
                    Resp* resp = nullptr) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    Resp scratch;
    return ((*cluster_).*method)(&ctx, req, resp ? resp : &scratch);
  }

  // Adds a user (or proxy) through the admin API; returns its token.
  std::string AddUser(const std::string& name, const std::string& role,
                      std::vector<std::string> logins = {},
                      mezite::v1::UserInfo* info = nullptr) {
    mezite::v1::AddUserRequest req;
    req.set_name(name);
    req.set_role(role);
    for (const auto& l : logins) req.add_logins(l);
    mezite::v1::AddUserResponse resp;
    grpc::Status s =
        Call(&mezite::v1::Cluster::Stub::AddUser, admin_, req, &resp);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    if (info != nullptr) *info = resp.user();
    return resp.token();
  }
  void RemoveUser(const std::string& name) {
    mezite::v1::RemoveUserRequest req;
    req.set_name(name);
    grpc::Status s = Call(&mezite::v1::Cluster::Stub::RemoveUser, admin_, req);
    ASSERT_TRUE(s.ok()) << name << ": " << s.error_message();
  }
  // Adds an agent node; returns its join token.
  std::string AddNode(const std::string& name) {
    mezite::v1::AddNodeRequest req;
    req.set_name(name);
    req.set_addr("127.0.0.1:22");
    mezite::v1::AddNodeResponse resp;
    grpc::Status s =
        Call(&mezite::v1::Cluster::Stub::AddNode, admin_, req, &resp);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    EXPECT_TRUE(catalog::IsIdentityId(resp.node().id())) << resp.node().id();
    return resp.join_token();
  }
  void RemoveNode(const std::string& name) {
    mezite::v1::RemoveNodeRequest req;
    req.set_name(name);
    grpc::Status s = Call(&mezite::v1::Cluster::Stub::RemoveNode, admin_, req);
    ASSERT_TRUE(s.ok()) << name << ": " << s.error_message();
  }

  grpc::Status WhoAmI(const std::string& token,
                      mezite::v1::WhoAmIResponse* resp = nullptr) {
    return Call(&mezite::v1::Cluster::Stub::WhoAmI, token,
                mezite::v1::WhoAmIRequest(), resp);
  }
  grpc::Status GetConfig(const std::string& token) {
    mezite::v1::GetConfigRequest req;
    req.set_key("session_recording");
    return Call(&mezite::v1::Cluster::Stub::GetConfig, token, req);
  }
  // As mezd calls it (it keeps the credential it gets) unless `old_mezd`.
  grpc::Status JoinNode(const std::string& token,
                        mezite::v1::JoinNodeResponse* resp = nullptr,
                        bool old_mezd = false) {
    mezite::v1::JoinNodeRequest req;
    req.set_addr("127.0.0.1:2222");
    req.set_stores_credential(!old_mezd);
    return Call(&mezite::v1::Cluster::Stub::JoinNode, token, req, resp);
  }
  // Opens a Record stream as `token` and sends a header for alice.
  // Records a short exec as `token`, with alice's grant for the node the
  // recording will be filed under (a node caller's own name; else the
  // header's web-01).
  grpc::Status Record(const std::string& token, const std::string& id,
                      const std::string& node = "web-01") {
    RecordCall call(stub_.get(), token);
    call.Send(
        HeaderFrame(id, server_->Grant("alice", node), SESSION_KIND_EXEC));
    call.Send(ChunkFrame(1000, DIRECTION_OUT, "hi\r\n"));
    call.Send(ExitFrame(2000, 0));
    return call.Close();
  }
  // Sends the start of a node-mode upload as `token`.
  grpc::Status Upload(const std::string& token, const std::string& id) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    mezite::v1::UploadStatus resp;
    auto writer = stub_->Upload(&ctx, &resp);
    mezite::v1::UploadFrame f;
    f.mutable_start()->set_session_id(id);
    f.mutable_start()->set_total_size(4);
    f.mutable_start()->set_sha256(std::string(64, '0'));
    writer->Write(f);
    writer->WritesDone();
    return writer->Finish();
  }
  grpc::Status GetUploadStatus(const std::string& token,
                               const std::string& id) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    mezite::v1::UploadStatusRequest req;
    req.set_session_id(id);
    req.set_total_size(4);
    req.set_sha256(std::string(64, '0'));
    mezite::v1::UploadStatus resp;
    return stub_->GetUploadStatus(&ctx, req, &resp);
  }

  std::unique_ptr<mezite::v1::Cluster::Stub> cluster_;
  std::string admin_;
};

constexpr grpc::StatusCode kUnauthenticated = grpc::StatusCode::UNAUTHENTICATED;

TEST_F(RevocationTest, ReaddedNodeRefusesTheOldTokenEverywhere) {
  std::string old_join = AddNode("web-02");
  mezite::v1::JoinNodeResponse joined;
  ASSERT_TRUE(JoinNode(old_join, &joined).ok());
  std::string old_token = joined.node_token();
  ASSERT_FALSE(old_token.empty());
  ASSERT_TRUE(GetConfig(old_token).ok());
  grpc::Status s = Record(old_token, "rev-node-1", "web-02");
  ASSERT_TRUE(s.ok()) << s.error_message();

  RemoveNode("web-02");
  std::string new_join = AddNode("web-02");
  ASSERT_NE(new_join, old_join);

  s = JoinNode(old_token);
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  EXPECT_NE(s.error_message().find("revoked"), std::string::npos)
      << s.error_message();
  EXPECT_EQ(GetConfig(old_token).error_code(), kUnauthenticated);
  s = Record(old_token, "rev-node-2", "web-02");
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  s = Upload(old_token, "rev-node-3");
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  s = GetUploadStatus(old_token, "rev-node-3");
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  EXPECT_FALSE(OpenCatalog()->GetSession("rev-node-2").ok());

  // Neither join token of the removed node works either.
  EXPECT_EQ(JoinNode(old_join).error_code(), kUnauthenticated);

  s = JoinNode(new_join, &joined);
  EXPECT_TRUE(s.ok()) << s.error_message();
  std::string new_token = joined.node_token();
  ASSERT_FALSE(new_token.empty());
  EXPECT_TRUE(GetConfig(new_token).ok());
  s = Record(new_token, "rev-node-4", "web-02");
  EXPECT_TRUE(s.ok()) << s.error_message();

  // The revocation is on record, with the removed id.
  auto revs = OpenCatalog()->ListRevocations(0);
  ASSERT_TRUE(revs.ok());
  ASSERT_EQ(revs->size(), 1u);
  EXPECT_EQ((*revs)[0].name, "web-02");
  EXPECT_EQ((*revs)[0].kind, "node");
}

// nodes add gives a join token: 30 minutes, single use, pinning the TLS CA,
// good for nothing but JoinNode, which exchanges it for a node credential.
TEST_F(RevocationTest, JoinTokenIsShortLivedSingleUseAndPinsTheCa) {
  std::string join = AddNode("web-03");
  auto claims = auth::ReadClaimsUnverified(join);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->role, auth::Role::kJoin);
  EXPECT_EQ(claims->expires_at - claims->issued_at, 30 * 60);
  auto node = OpenCatalog()->GetNode("web-03");
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(claims->uid, node->id);
  auto id = auth::ReadIdentityFile(data_dir() + "/admin.identity");
  ASSERT_TRUE(id.ok());
  ASSERT_FALSE(id->tls_ca_pem.empty()) << "the harness serves TLS";
  EXPECT_EQ(claims->ca_hash, *auth::CertificateSha256(id->tls_ca_pem));

  // Not a bearer credential anywhere else.
  EXPECT_EQ(WhoAmI(join).error_code(), kUnauthenticated);
  EXPECT_EQ(GetConfig(join).error_code(), kUnauthenticated);
  EXPECT_NE(Record(join, "join-1", "web-03").error_code(),
            grpc::StatusCode::OK);

  // Several callers at once (two replicas, a thief racing the node): one
  // gets the credential.
  std::vector<mezite::v1::JoinNodeResponse> answers(4);
  std::vector<grpc::Status> results(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { results[i] = JoinNode(join, &answers[i]); });
  }
  for (auto& t : threads) t.join();
  std::string credential;
  int ok = 0;
  for (int i = 0; i < 4; ++i) {
    if (results[i].ok()) {
      ++ok;
      credential = answers[i].node_token();
    } else {
      EXPECT_EQ(results[i].error_code(), kUnauthenticated);
      EXPECT_NE(results[i].error_message().find("already used"),
                std::string::npos)
          << results[i].error_message();
    }
  }
  ASSERT_EQ(ok, 1);
  auto nc = auth::ReadClaimsUnverified(credential);
  ASSERT_TRUE(nc.ok()) << nc.status().ToString();
  EXPECT_EQ(nc->role, auth::Role::kNode);
  EXPECT_EQ(nc->subject, "web-03");
  EXPECT_EQ(nc->uid, node->id);
  EXPECT_EQ(nc->expires_at - nc->issued_at, auth::kNodeCredentialTtl);
  EXPECT_TRUE(GetConfig(credential).ok());
  EXPECT_EQ(JoinNode(join).error_code(), kUnauthenticated);

  // A credential early in its life is not renewed; one in its second half
  // is, for the same node id.
  mezite::v1::JoinNodeResponse beat;
  ASSERT_TRUE(JoinNode(credential, &beat).ok());
  EXPECT_TRUE(beat.node_token().empty());
  auth::Claims aged;
  aged.subject = "web-03";
  aged.role = auth::Role::kNode;
  aged.uid = node->id;
  aged.issued_at = nc->issued_at - 5 * 24 * 3600;
  aged.expires_at = nc->issued_at + 2 * 24 * 3600;
  ASSERT_TRUE(JoinNode(server_->Sign(aged), &beat).ok());
  auto renewed = auth::ReadClaimsUnverified(beat.node_token());
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_EQ(renewed->uid, node->id);
  EXPECT_GE(renewed->expires_at, nc->expires_at);
  EXPECT_NEAR(beat.node_token_expires_at(), renewed->expires_at, 2);

  // The exchange is audited once, the renewal once.
  auto events = OpenCatalog()->ListAudit({});
  ASSERT_TRUE(events.ok());
  int joins = 0, renewals = 0;
  for (const auto& e : *events) {
    joins += e.type == "node.join";
    renewals += e.type == "node.credential_renew";
  }
  EXPECT_EQ(joins, 1);
  EXPECT_EQ(renewals, 1);
}

// A node token from before join tokens (365 days, its hash stored as the
// join token's) keeps working for a mezd of that release, until a current
// mezd exchanges it like a join token; then it is dead everywhere.
TEST_F(RevocationTest, OldLongNodeTokenWorksUntilExchangedOnce) {
  catalog::Node n;
  n.name = "web-04";
  n.addr = "127.0.0.1:22";
  n.id = catalog::NewIdentityId();
  auth::Claims c;
  c.subject = n.name;
  c.role = auth::Role::kNode;
  c.uid = n.id;
  c.issued_at = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  c.expires_at = c.issued_at + 365LL * 24 * 3600;
  std::string legacy = server_->Sign(c);
  n.join_token_hash = rpc::JoinTokenHash(legacy);
  ASSERT_TRUE(OpenCatalog()->CreateNode(n).ok());

  // An older mezd, upgraded mezrecd: heartbeats and recordings go on.
  mezite::v1::JoinNodeResponse joined;
  grpc::Status s = JoinNode(legacy, &joined, /*old_mezd=*/true);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(joined.node_token().empty());
  EXPECT_TRUE(GetConfig(legacy).ok());
  s = Record(legacy, "legacy-1", "web-04");
  EXPECT_TRUE(s.ok()) << s.error_message();

  // A current mezd exchanges it.
  s = JoinNode(legacy, &joined);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(joined.node_token().empty());
  EXPECT_TRUE(GetConfig(joined.node_token()).ok());
  s = GetConfig(legacy);
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  EXPECT_NE(s.error_message().find("exchanged"), std::string::npos)
      << s.error_message();
  EXPECT_EQ(Record(legacy, "legacy-2", "web-04").error_code(),
            kUnauthenticated);
  EXPECT_EQ(JoinNode(legacy).error_code(), kUnauthenticated);
  EXPECT_EQ(JoinNode(legacy, nullptr, /*old_mezd=*/true).error_code(),
            kUnauthenticated);
}

TEST_F(RevocationTest, ReaddedUserNeverRevivesTheOldTokenNorGivesItAdmin) {
  std::string old_token = AddUser("dave", "user", {"dave"});
  mezite::v1::WhoAmIResponse who;
  ASSERT_TRUE(WhoAmI(old_token, &who).ok());
  EXPECT_EQ(who.role(), "user");

  RemoveUser("dave");
  std::string new_token = AddUser("dave", "admin", {"dave"});

  grpc::Status s = WhoAmI(old_token, &who);
  EXPECT_EQ(s.error_code(), kUnauthenticated) << who.role();
  EXPECT_NE(s.error_message().find("revoked"), std::string::npos)
      << s.error_message();
  EXPECT_EQ(Call(&mezite::v1::Cluster::Stub::ListSessions, old_token,
                 mezite::v1::ListSessionsRequest())
                .error_code(),
            kUnauthenticated);
  EXPECT_EQ(Call(&mezite::v1::Cluster::Stub::ListAudit, old_token,
                 mezite::v1::ListAuditRequest())
                .error_code(),
            kUnauthenticated);
  EXPECT_EQ(Call(&mezite::v1::Cluster::Stub::ListUsers, old_token,
                 mezite::v1::ListUsersRequest())
                .error_code(),
            kUnauthenticated);
  mezite::v1::SignUserCertRequest cert;
  auto key = auth::GenerateSshUserKey();
  ASSERT_TRUE(key.ok());
  cert.set_public_key_blob(key->second);
  cert.set_login("dave");
  EXPECT_EQ(Call(&mezite::v1::Cluster::Stub::SignUserCert, old_token, cert)
                .error_code(),
            kUnauthenticated);
  EXPECT_EQ(GetConfig(old_token).error_code(), kUnauthenticated);

  ASSERT_TRUE(WhoAmI(new_token, &who).ok());
  EXPECT_EQ(who.role(), "admin");
  EXPECT_TRUE(Call(&mezite::v1::Cluster::Stub::ListAudit, new_token,
                   mezite::v1::ListAuditRequest())
                  .ok());
  // The refusals are audited.
  catalog::AuditFilter f;
  f.type = "access.denied";
  auto denied = OpenCatalog()->ListAudit(f);
  ASSERT_TRUE(denied.ok());
  EXPECT_GE(denied->size(), 6u);
}

TEST_F(RevocationTest, RemovedAdminCannotRecordOrUpload) {
  std::string boss = AddUser("boss", "admin");
  grpc::Status s = Record(boss, "rev-admin-1");
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = GetUploadStatus(boss, "rev-admin-2");
  ASSERT_NE(s.error_code(), kUnauthenticated) << s.error_message();

  RemoveUser("boss");
  s = Record(boss, "rev-admin-3");
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  s = Upload(boss, "rev-admin-4");
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  s = GetUploadStatus(boss, "rev-admin-2");
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  EXPECT_FALSE(OpenCatalog()->GetSession("rev-admin-3").ok());
  // Nor does the name added back as a user bring it back.
  AddUser("boss", "user");
  s = Record(boss, "rev-admin-5");
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
}

TEST_F(RevocationTest, RemovedProxyIsRefusedOnEveryProxyCall) {
  mezite::v1::UserInfo info;
  std::string proxy = AddUser("px1", "proxy", {}, &info);
  EXPECT_EQ(info.role(), "proxy");
  EXPECT_TRUE(catalog::IsIdentityId(info.id())) << info.id();
  // Listed like any principal.
  mezite::v1::ListUsersResponse users;
  ASSERT_TRUE(Call(&mezite::v1::Cluster::Stub::ListUsers, admin_,
                   mezite::v1::ListUsersRequest(), &users)
                  .ok());
  bool listed = false;
  for (const auto& u : users.users()) {
    if (u.name() == "px1") {
      listed = true;
      EXPECT_EQ(u.role(), "proxy");
      EXPECT_EQ(u.id(), info.id());
      EXPECT_EQ(u.logins_size(), 0);
    }
  }
  EXPECT_TRUE(listed);

  auto key = auth::GenerateSshUserKey();
  ASSERT_TRUE(key.ok());
  mezite::v1::UpstreamCertRequest up;
  up.set_user("alice");  // Token() made alice with login root.
  up.set_login("root");
  up.set_public_key_blob(key->second);
  mezite::v1::ProxyHelloRequest hello;
  mezite::v1::ProxyHopRequest hop;
  hop.set_user("alice");
  hop.set_node("web-01");
  hop.set_login("root");
  mezite::v1::NodeAuditRequest audit;
  audit.set_type("auth.refused");
  grpc::Status s = Call(&mezite::v1::Cluster::Stub::ProxyHello, proxy, hello);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = Call(&mezite::v1::Cluster::Stub::SignUpstreamCert, proxy, up);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = Call(&mezite::v1::Cluster::Stub::AuthorizeProxyHop, proxy, hop);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = Call(&mezite::v1::Cluster::Stub::NodeAudit, proxy, audit);
  ASSERT_TRUE(s.ok()) << s.error_message();

  RemoveUser("px1");
  for (const char* method :
       {"ProxyHello", "SignUpstreamCert", "AuthorizeProxyHop", "NodeAudit"}) {
    SCOPED_TRACE(method);
    std::string m = method;
    s = m == "ProxyHello"
            ? Call(&mezite::v1::Cluster::Stub::ProxyHello, proxy, hello)
        : m == "SignUpstreamCert"
            ? Call(&mezite::v1::Cluster::Stub::SignUpstreamCert, proxy, up)
        : m == "AuthorizeProxyHop"
            ? Call(&mezite::v1::Cluster::Stub::AuthorizeProxyHop, proxy, hop)
            : Call(&mezite::v1::Cluster::Stub::NodeAudit, proxy, audit);
    EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  }
  s = Record(proxy, "rev-proxy-1");
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  s = Upload(proxy, "rev-proxy-2");
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();

  // A proxy is not a person: it has no logins and cannot be jumped as.
  AddUser("px2", "proxy");
  up.set_user("px2");
  s = Call(&mezite::v1::Cluster::Stub::SignUpstreamCert, admin_, up);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  mezite::v1::AddUserRequest bad;
  bad.set_name("px3");
  bad.set_role("proxy");
  bad.add_logins("root");
  s = Call(&mezite::v1::Cluster::Stub::AddUser, admin_, bad);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Names starting with '_' are mezrecd's own.
  bad.set_name("_mezrecd-proxy");
  bad.clear_logins();
  s = Call(&mezite::v1::Cluster::Stub::AddUser, admin_, bad);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("reserved"), std::string::npos)
      << s.error_message();
}

// A node's join or heartbeat answer names the users and admins removed in
// the last 15 minutes (a certificate issued just before a removal lives 10
// more, plus a minute of backdating), so that mezd refuses their
// certificates (issue 14 item 7); proxies, nodes, live users and older
// removals are not listed.
TEST_F(RevocationTest, JoinNodeListsUsersRemovedInTheLast15Minutes) {
  mezite::v1::UserInfo dave, boss, px, recent, old;
  AddUser("dave", "user", {"dave"}, &dave);
  AddUser("boss", "admin", {}, &boss);
  AddUser("px1", "proxy", {}, &px);
  AddUser("recent", "user", {"recent"}, &recent);
  AddUser("old", "user", {"old"}, &old);
  AddNode("web-02");
  mezite::v1::JoinNodeResponse resp;
  grpc::Status s = JoinNode(node_, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.revoked_user_ids_size(), 0);

  RemoveUser("dave");
  RemoveUser("boss");
  RemoveUser("px1");
  RemoveNode("web-02");
  // Removed 14 and 16 minutes ago: one inside the window, one outside.
  int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  auto cat = OpenCatalog();
  ASSERT_TRUE(cat->DeleteUser("recent", now_us - 14 * 60'000'000LL).ok());
  ASSERT_TRUE(cat->DeleteUser("old", now_us - 16 * 60'000'000LL).ok());

  mezite::v1::JoinNodeResponse after;
  s = JoinNode(node_, &after);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::set<std::string> got(after.revoked_user_ids().begin(),
                            after.revoked_user_ids().end());
  EXPECT_EQ(got, (std::set<std::string>{dave.id(), boss.id(), recent.id()}));
  EXPECT_EQ(after.revoked_user_ids_size(), 3);
  // Adding a name again does not take its old id off the list.
  mezite::v1::UserInfo dave2;
  AddUser("dave", "user", {"dave"}, &dave2);
  mezite::v1::JoinNodeResponse readded;
  s = JoinNode(node_, &readded);
  ASSERT_TRUE(s.ok()) << s.error_message();
  got = {readded.revoked_user_ids().begin(), readded.revoked_user_ids().end()};
  EXPECT_EQ(got.count(dave.id()), 1u);
  EXPECT_EQ(got.count(dave2.id()), 0u);
}

TEST_F(RevocationTest, TokensWithoutIdAndGrantsAreNotBearerCredentials) {
  auto claims = [](auth::Role role, const std::string& sub) {
    auth::Claims c;
    c.subject = sub;
    c.role = role;
    c.issued_at = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    c.expires_at = c.issued_at + 600;
    return c;
  };
  // Existing identities, but no uid: tokens from before ids existed.
  std::string admin = server_->Sign(claims(auth::Role::kAdmin, "admin"));
  std::string node = server_->Sign(claims(auth::Role::kNode, "web-01"));
  std::string user = server_->Sign(claims(auth::Role::kUser, "alice"));
  for (const std::string& t : {admin, node, user}) {
    grpc::Status s = WhoAmI(t);
    EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
    EXPECT_NE(s.error_message().find("issue"), std::string::npos)
        << s.error_message();
  }
  grpc::Status s = Record(admin, "rev-uid-1");
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  s = Record(node, "rev-uid-2");
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  s = JoinNode(node);
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();

  // A recording grant and a join token carry the right uid, yet are no
  // bearer credentials.
  std::string grant = server_->Grant("alice", "web-01");
  ASSERT_FALSE(grant.empty());
  auth::Claims join = claims(auth::Role::kJoin, "web-01");
  auto nodes = OpenCatalog()->GetNode("web-01");
  ASSERT_TRUE(nodes.ok());
  join.uid = nodes->id;
  std::string join_token = server_->Sign(join);
  for (const std::string& t : {grant, join_token}) {
    s = WhoAmI(t);
    EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
    EXPECT_EQ(GetConfig(t).error_code(), kUnauthenticated);
  }
  s = JoinNode(join_token);
  EXPECT_EQ(s.error_code(), kUnauthenticated) << s.error_message();
  s = Record(join_token, "rev-uid-3");
  EXPECT_NE(s.error_code(), grpc::StatusCode::OK) << s.error_message();

  // The harness's tokens carry ids and work.
  EXPECT_TRUE(WhoAmI(server_->Token(auth::Role::kUser, "alice")).ok());
  EXPECT_TRUE(WhoAmI(node_).ok());
  EXPECT_TRUE(WhoAmI(admin_).ok());
}

TEST_F(RevocationTest, AdminIdentityIsReissuedForTheCurrentAdminRow) {
  mezite::v1::WhoAmIResponse who;
  ASSERT_TRUE(WhoAmI(admin_, &who).ok());
  EXPECT_EQ(who.role(), "admin");
  // An identity file from before ids existed holds a token without uid.
  StopServer();
  auto id = auth::ReadIdentityFile(data_dir() + "/admin.identity");
  ASSERT_TRUE(id.ok());
  auth::Claims c;
  c.subject = "admin";
  c.role = auth::Role::kAdmin;
  c.issued_at = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  c.expires_at = c.issued_at + 365 * 86400;
  id->token = server_->Sign(c);
  ASSERT_TRUE(
      auth::WriteIdentityFile(data_dir() + "/admin.identity", *id).ok());
  ASSERT_TRUE(server_->Start()) << server_->log();
  stub_ = server_->Stub();
  cluster_ = mezite::v1::Cluster::NewStub(server_->Channel());
  std::string reissued = server_->AdminToken();
  EXPECT_NE(reissued, id->token);
  grpc::Status s = WhoAmI(reissued, &who);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(who.role(), "admin");
  // And a token that already speaks for the admin row is kept.
  StopServer();
  ASSERT_TRUE(server_->Start()) << server_->log();
  EXPECT_EQ(server_->AdminToken(), reissued);
}

// The proxy inside mezrecd (--roles auth,proxy) is the catalog proxy
// _mezrecd-proxy: created once, kept across restarts (so one replica's
// start never revokes another's token), and new after users rm.
TEST_F(RevocationTest, InProcessProxyIsACatalogPrincipalKeptAcrossRestarts) {
  StopServer();
  const std::map<std::string, std::string> env = {
      {"MEZITE_ROLES", "auth,proxy"}, {"MEZITE_PROXY_LISTEN", "127.0.0.1:0"}};
  auto proxy_row = [&]() -> std::string {
    auto u = OpenCatalog()->GetUser("_mezrecd-proxy");
    if (!u.ok()) return "";
    EXPECT_EQ(u->role, "proxy");
    EXPECT_TRUE(u->logins.empty());
    return u->id;
  };
  server_ =
      std::make_unique<Mezrecd>(data_dir(), std::vector<std::string>{}, env);
  ASSERT_TRUE(server_->Start()) << server_->log();
  std::string first = proxy_row();
  ASSERT_TRUE(catalog::IsIdentityId(first)) << server_->log();
  ASSERT_EQ(server_->Stop(), 0);
  ASSERT_TRUE(server_->Start()) << server_->log();
  EXPECT_EQ(proxy_row(), first);
  // Removed: revoked, and the next start makes a new identity.
  cluster_ = mezite::v1::Cluster::NewStub(server_->Channel());
  RemoveUser("_mezrecd-proxy");
  auto rev = OpenCatalog()->GetRevocation(first);
  ASSERT_TRUE(rev.ok()) << rev.status().ToString();
  EXPECT_EQ(rev->kind, "proxy");
  cluster_.reset();
  ASSERT_EQ(server_->Stop(), 0);
  ASSERT_TRUE(server_->Start()) << server_->log();
  std::string second = proxy_row();
  EXPECT_TRUE(catalog::IsIdentityId(second));
  EXPECT_NE(second, first);
}

}  // namespace
}  // namespace mez::testing
