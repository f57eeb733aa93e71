// Every kind of bad input to Record gets a clear gRPC status and nothing
// else: nothing is written outside the storage path (nor, for a refused
// stream, inside it), and the server serves the next stream.
#include <gtest/gtest.h>

#include <functional>

#include "libmez/auth/token.h"
#include "libmez/util/file.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

using mezite::v1::DIRECTION_OUT;
using mezite::v1::RecordFrame;
using mezite::v1::SESSION_KIND_EXEC;
using mezite::v1::SESSION_KIND_SHELL;
using mezite::v1::SESSION_KIND_TCPIP;

struct BadCase {
  std::string name;
  // Frames to send, given the user token.
  std::function<std::vector<RecordFrame>(const std::string& alice,
                                         Mezrecd& server)>
      frames;
  grpc::StatusCode code;
  std::string words;  // Must appear in the status message.
  // A file the case may leave: its header was accepted before the bad frame.
  std::string allowed_file = {};
};

std::string B64Url(const std::string& s) {
  std::string out;
  static const char* k =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 |
                 (unsigned char)s[i + 2];
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i < s.size()) {
    unsigned v = (unsigned char)s[i] << 16;
    if (i + 1 < s.size()) v |= (unsigned char)s[i + 1] << 8;
    out += {k[v >> 18], k[(v >> 12) & 63]};
    if (i + 1 < s.size()) out += k[(v >> 6) & 63];
  }
  return out;
}

RecordFrame Header(const std::string& id, const std::string& token,
                   mezite::v1::SessionKind kind) {
  return HeaderFrame(id, token, kind);
}

std::vector<BadCase> Cases() {
  std::vector<BadCase> v;
  v.push_back({"chunk before header",
               [](auto&, auto&) {
                 return std::vector<RecordFrame>{
                     ChunkFrame(1, DIRECTION_OUT, "x")};
               },
               grpc::StatusCode::INVALID_ARGUMENT, "before the header"});
  v.push_back({"second header",
               [](auto& a, auto&) {
                 return std::vector<RecordFrame>{
                     Header("two-hdr", a, SESSION_KIND_SHELL),
                     Header("two-hdr", a, SESSION_KIND_SHELL)};
               },
               grpc::StatusCode::INVALID_ARGUMENT, "second header",
               "alice/shell/two-hdr.cast"});
  v.push_back(
      {"empty frame",
       [](auto&, auto&) { return std::vector<RecordFrame>{RecordFrame()}; },
       grpc::StatusCode::INVALID_ARGUMENT, "empty frame"});
  v.push_back({"shell without size",
               [](auto& a, auto&) {
                 auto h = Header("s1", a, SESSION_KIND_SHELL);
                 h.mutable_header()->set_width(0);
                 return std::vector<RecordFrame>{h};
               },
               grpc::StatusCode::INVALID_ARGUMENT, "width and height"});
  v.push_back({"exec without command",
               [](auto& a, auto&) {
                 auto h = Header("s2", a, SESSION_KIND_EXEC);
                 h.mutable_header()->clear_command();
                 return std::vector<RecordFrame>{h};
               },
               grpc::StatusCode::INVALID_ARGUMENT, "command"});
  v.push_back({"tcpip without destination",
               [](auto& a, auto&) {
                 auto h = Header("s3", a, SESSION_KIND_TCPIP);
                 h.mutable_header()->clear_dst_host();
                 return std::vector<RecordFrame>{h};
               },
               grpc::StatusCode::INVALID_ARGUMENT, "dst_host"});
  v.push_back({"unknown kind",
               [](auto& a, auto&) {
                 auto h = Header("s4", a, SESSION_KIND_SHELL);
                 h.mutable_header()->set_kind(
                     static_cast<mezite::v1::SessionKind>(9));
                 return std::vector<RecordFrame>{h};
               },
               grpc::StatusCode::INVALID_ARGUMENT, "unknown kind"});
  v.push_back(
      {"chunk over 1 MiB",
       [](auto& a, auto&) {
         return std::vector<RecordFrame>{
             Header("big-chunk", a, SESSION_KIND_SHELL),
             ChunkFrame(1, DIRECTION_OUT, std::string((1 << 20) + 1, 'x'))};
       },
       grpc::StatusCode::INVALID_ARGUMENT, "limit",
       "alice/shell/big-chunk.cast"});
  // A batch (RecordBatch) holds only chunk, resize, exit and events frames.
  auto batch = [](std::vector<RecordFrame> inner) {
    RecordFrame f;
    for (auto& i : inner) *f.mutable_batch()->add_frames() = std::move(i);
    return f;
  };
  v.push_back({"batch before header",
               [batch](auto&, auto&) {
                 return std::vector<RecordFrame>{
                     batch({ChunkFrame(1, DIRECTION_OUT, "x")})};
               },
               grpc::StatusCode::INVALID_ARGUMENT, "before the header"});
  v.push_back({"header inside a batch",
               [batch](auto& a, auto&) {
                 return std::vector<RecordFrame>{
                     Header("in-batch", a, SESSION_KIND_SHELL),
                     batch({ChunkFrame(1, DIRECTION_OUT, "x"),
                            Header("in-batch-2", a, SESSION_KIND_SHELL)})};
               },
               grpc::StatusCode::INVALID_ARGUMENT,
               "only chunk, resize, exit and events",
               "alice/shell/in-batch.cast"});
  v.push_back({"batch inside a batch",
               [batch](auto& a, auto&) {
                 return std::vector<RecordFrame>{
                     Header("nested", a, SESSION_KIND_SHELL),
                     batch({batch({ChunkFrame(1, DIRECTION_OUT, "x")})})};
               },
               grpc::StatusCode::INVALID_ARGUMENT,
               "only chunk, resize, exit and events",
               "alice/shell/nested.cast"});
  v.push_back({"empty frame inside a batch",
               [batch](auto& a, auto&) {
                 return std::vector<RecordFrame>{
                     Header("empty-in", a, SESSION_KIND_SHELL),
                     batch({RecordFrame()})};
               },
               grpc::StatusCode::INVALID_ARGUMENT, "empty frame",
               "alice/shell/empty-in.cast"});
  v.push_back({"chunk over 1 MiB inside a batch",
               [batch](auto& a, auto&) {
                 return std::vector<RecordFrame>{
                     Header("big-in-batch", a, SESSION_KIND_SHELL),
                     batch({ChunkFrame(1, DIRECTION_OUT, "x"),
                            ChunkFrame(2, DIRECTION_OUT,
                                       std::string((1 << 20) + 1, 'x'))})};
               },
               grpc::StatusCode::INVALID_ARGUMENT, "limit",
               "alice/shell/big-in-batch.cast"});
  v.push_back({"garbage token",
               [](auto&, auto&) {
                 return std::vector<RecordFrame>{
                     Header("s5", "not.a.token", SESSION_KIND_SHELL)};
               },
               grpc::StatusCode::UNAUTHENTICATED, "user_token"});
  v.push_back({"expired token",
               [](auto&, Mezrecd& s) {
                 auth::Claims c;
                 c.subject = "alice";
                 c.role = auth::Role::kSession;
                 c.audience = "web-01";
                 c.uid = s.IdentityId(auth::Role::kUser, "alice");
                 c.issued_at = RealClock()->WallMicros() / 1'000'000 - 7200;
                 c.expires_at = c.issued_at + 3600;
                 c.id = "expired";
                 return std::vector<RecordFrame>{
                     Header("s6", s.Sign(c), SESSION_KIND_SHELL)};
               },
               grpc::StatusCode::UNAUTHENTICATED, "expired"});
  v.push_back(
      {"foreign token",
       [](auto&, auto&) {
         auto pem = auth::GenerateEd25519Pem();
         auto signer = auth::TokenSigner::FromPem(*pem);
         auto t = auth::IssueToken(**signer, "mezite", auth::Role::kUser,
                                   "alice", {}, 3600, RealClock());
         return std::vector<RecordFrame>{Header("s7", *t, SESSION_KIND_SHELL)};
       },
       grpc::StatusCode::UNAUTHENTICATED, "signature"});
  v.push_back(
      {"unsigned token (alg none)",
       [](auto&, auto&) {
         std::string t = B64Url("{\"alg\":\"none\",\"typ\":\"JWT\"}") + "." +
                         B64Url(
                             "{\"iss\":\"mezite\",\"sub\":\"alice\",\"role\":"
                             "\"user\",\"exp\":9999999999,\"iat\":1}") +
                         ".";
         return std::vector<RecordFrame>{Header("s8", t, SESSION_KIND_SHELL)};
       },
       grpc::StatusCode::UNAUTHENTICATED, "alg"});
  v.push_back({"node token as user token",
               [](auto&, Mezrecd& s) {
                 return std::vector<RecordFrame>{
                     Header("s9", s.Token(auth::Role::kNode, "web-01"),
                            SESSION_KIND_SHELL)};
               },
               grpc::StatusCode::PERMISSION_DENIED, "recording grant"});
  for (std::string bad_id :
       {std::string("../../etc/x"), std::string("a/b"), std::string("a\0b", 3),
        std::string(200, 'a'), std::string(".hidden"), std::string("")}) {
    v.push_back({"session id " + bad_id.substr(0, 12),
                 [bad_id](auto& a, auto&) {
                   return std::vector<RecordFrame>{
                       Header(bad_id, a, SESSION_KIND_SHELL)};
                 },
                 grpc::StatusCode::INVALID_ARGUMENT, "session_id"});
  }
  v.push_back({"connection id with a slash",
               [](auto& a, auto&) {
                 auto h = Header("s10", a, SESSION_KIND_TCPIP);
                 h.mutable_header()->set_connection_id("../c");
                 return std::vector<RecordFrame>{h};
               },
               grpc::StatusCode::INVALID_ARGUMENT, "connection_id"});
  for (std::string bad_user : {std::string(".."), std::string("../root"),
                               std::string("a/b"), std::string(300, 'u')}) {
    v.push_back({"username " + bad_user.substr(0, 12),
                 [bad_user](auto&, Mezrecd& s) {
                   // A grant as SignUserCert would shape it, for a name no
                   // catalog would hold.
                   auth::Claims c;
                   c.subject = bad_user;
                   c.role = auth::Role::kSession;
                   c.audience = "web-01";
                   c.uid = std::string(32, '0');
                   c.issued_at = RealClock()->WallMicros() / 1'000'000;
                   c.expires_at = c.issued_at + 600;
                   return std::vector<RecordFrame>{
                       Header("s11", s.Sign(c), SESSION_KIND_SHELL)};
                 },
                 grpc::StatusCode::INVALID_ARGUMENT, "storage prefix"});
  }
  for (std::string bad_host :
       {std::string("../../etc"), std::string("a/b"), std::string("x\0y", 3),
        std::string(300, 'h'), std::string(".."), std::string("-rf")}) {
    v.push_back({"dst_host " + bad_host.substr(0, 12),
                 [bad_host](auto& a, auto&) {
                   auto h = Header("s12", a, SESSION_KIND_TCPIP);
                   h.mutable_header()->set_dst_host(bad_host);
                   return std::vector<RecordFrame>{h};
                 },
                 grpc::StatusCode::INVALID_ARGUMENT, "dst_host"});
  }
  return v;
}

TEST(MezrecdBadInputTest, EachCaseIsRefusedCleanlyAndTheServerCarriesOn) {
  TempDir dir;
  Mezrecd server(dir.File("data"));
  ASSERT_TRUE(server.Start()) << server.log();
  {
    std::string err;
    server.RegisterNode("web-01", "127.0.0.1:22", &err);
    ASSERT_EQ(err, "") << "registering node web-01";
  }
  auto stub = server.Stub();
  std::string node = server.Token(auth::Role::kNode, "web-01");
  std::string alice = server.Grant("alice", "web-01");
  std::string storage = dir.File("data/recordings");

  auto outside = [&] {
    auto all = ListFiles(dir.path());
    std::map<std::string, int64_t> out;
    for (auto& [name, size] : all) {
      if (name.rfind("data/recordings/", 0) == 0) continue;
      // The catalog and the server's log grow; their names are fixed.
      bool growing =
          name.rfind("data/catalog.db", 0) == 0 || name == "data.log";
      out[name] = growing ? 0 : size;
    }
    return out;
  };
  const auto outside_before = outside();
  int good = 0;
  for (const BadCase& c : Cases()) {
    SCOPED_TRACE(c.name);
    auto storage_before = ListFiles(storage);
    {
      RecordCall call(stub.get(), node);
      for (const auto& f : c.frames(alice, server)) {
        if (!call.Send(f)) break;
      }
      grpc::Status st = call.Close();
      EXPECT_EQ(st.error_code(), c.code) << st.error_message();
      EXPECT_NE(st.error_message().find(c.words), std::string::npos)
          << st.error_message();
    }
    // A refused header creates no file; a refused later frame leaves only
    // the file its accepted header created.
    auto storage_after = ListFiles(storage);
    for (auto& [name, size] : storage_after) {
      if (storage_before.count(name) == 0 &&
          name.rfind("alice/shell/good-", 0) != 0) {
        EXPECT_EQ(name, c.allowed_file) << "unexpected " << name;
      }
    }
    EXPECT_EQ(outside(), outside_before);
    // The next good stream still works.
    RecordCall ok(stub.get(), node);
    std::string id = "good-" + std::to_string(good++);
    ASSERT_TRUE(ok.Send(HeaderFrame(id, alice, SESSION_KIND_SHELL)));
    ASSERT_TRUE(ok.Send(ChunkFrame(1, DIRECTION_OUT, "fine\r\n")));
    grpc::Status st = ok.Close();
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_TRUE(server.running());
}

TEST(MezrecdBadInputTest, DuplicateSessionIdIsRefusedAndTheFirstKept) {
  TempDir dir;
  Mezrecd server(dir.File("data"));
  ASSERT_TRUE(server.Start()) << server.log();
  {
    std::string err;
    server.RegisterNode("web-01", "127.0.0.1:22", &err);
    ASSERT_EQ(err, "") << "registering node web-01";
  }
  auto stub = server.Stub();
  std::string node = server.Token(auth::Role::kNode, "web-01");
  std::string alice = server.Grant("alice", "web-01");
  {
    RecordCall call(stub.get(), node);
    ASSERT_TRUE(call.Send(HeaderFrame("dup", alice, SESSION_KIND_SHELL)));
    ASSERT_TRUE(call.Send(ChunkFrame(1, DIRECTION_OUT, "original\r\n")));
    ASSERT_TRUE(call.Close().ok());
  }
  std::string path = dir.File("data/recordings/alice/shell/dup.cast");
  std::string before = *ReadFile(path);
  RecordCall again(stub.get(), node);
  again.Send(HeaderFrame("dup", alice, SESSION_KIND_SHELL));
  again.Send(ChunkFrame(1, DIRECTION_OUT, "impostor\r\n"));
  grpc::Status st = again.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(*ReadFile(path), before);
}

TEST(MezrecdBadInputTest, BatchedFramesAreRecordedInOrder) {
  // What mezd sends after lingering: a batch, handled frame by frame.
  TempDir dir;
  Mezrecd server(dir.File("data"));
  ASSERT_TRUE(server.Start()) << server.log();
  std::string err;
  server.RegisterNode("web-01", "127.0.0.1:22", &err);
  ASSERT_EQ(err, "");
  auto stub = server.Stub();
  std::string node = server.Token(auth::Role::kNode, "web-01");
  std::string alice = server.Grant("alice", "web-01");
  RecordCall call(stub.get(), node);
  ASSERT_TRUE(call.Send(HeaderFrame("batched", alice, SESSION_KIND_SHELL)));
  ASSERT_TRUE(call.Send(ChunkFrame(1000, DIRECTION_OUT, "one ")));
  RecordFrame batch;
  for (auto& f :
       {ChunkFrame(2000, DIRECTION_OUT, "two "), ResizeFrame(3000, 100, 40),
        ChunkFrame(5000, DIRECTION_OUT, "three")}) {
    *batch.mutable_batch()->add_frames() = f;
  }
  ASSERT_TRUE(call.Send(batch));
  ASSERT_TRUE(call.Send(ExitFrame(6000, 0)));
  grpc::Status st = call.Close();
  ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  auto cast = ReadFile(dir.File("data/recordings/alice/shell/batched.cast"));
  ASSERT_TRUE(cast.ok());
  // Every event, in the order sent, at the times sent.
  std::vector<std::string> lines;
  size_t start = cast->find('\n') + 1;  // After the asciicast header.
  while (start < cast->size()) {
    size_t end = cast->find('\n', start);
    lines.push_back(cast->substr(start, end - start));
    start = end + 1;
  }
  EXPECT_EQ(lines, (std::vector<std::string>{
                       R"([0.001000, "o", "one "])",
                       R"([0.002000, "o", "two "])",
                       R"([0.003000, "r", "100x40"])",
                       R"([0.005000, "o", "three"])",
                       R"([0.006000, "x", "0"])",
                   }))
      << *cast;
}

}  // namespace
}  // namespace mez::testing
