// mezctl and msh against a real mezrecd: users, login, sessions ls (text
// piped through awk, json parsed), audit ls filters, config round trip,
// nodes, CA export, and the RBAC matrix of every Cluster RPC. Lists,
// exit codes and completions: cli_lists_test.cc.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "libmez/auth/ssh_cert.h"
#include "libmez/recorder/sync_recorder.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "tests/cli_fixture.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

namespace pb = mezite::v1;
using nlohmann::json;

TEST_F(CliTest, SessionsLsShowsUsersTheirOwnAndPipesIntoAwk) {
  std::string alice = AddUser("alice");
  AddUser("bob");
  Record("a1", "alice");
  Record("a2", "alice");
  Record("b1", "bob");

  // Piped: no header, so awk sees sessions only (the README's example).
  auto text = Cli(MSH_PATH, "sessions ls | awk '{print $1, $2, $8}'", alice);
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_EQ(text.out, "a2 alice complete\na1 alice complete\n");
  auto header = Cli(MSH_PATH, "sessions ls --header | awk '{print $1}'", alice);
  EXPECT_EQ(header.out, "SESSION\na2\na1\n");

  auto ids = Cli(MSH_PATH, "sessions ls -q", alice);
  EXPECT_EQ(ids.out, "a2\na1\n");

  auto js = Cli(MSH_PATH, "sessions ls --format=json", alice);
  ASSERT_EQ(js.exit_code, 0) << js.out;
  json arr = json::parse(js.out);
  ASSERT_EQ(arr.size(), 2u);
  for (const char* field : {"id", "user", "node", "login", "started", "ended",
                            "kind", "status", "bytes", "storage_key"}) {
    EXPECT_TRUE(arr[0].contains(field)) << field;
  }
  EXPECT_EQ(arr[0]["node"], "web-01");

  auto jl = Cli(MSH_PATH, "sessions ls --format=jsonl --limit=1", alice);
  EXPECT_EQ(json::parse(jl.out)["id"], "a2");

  // Another user's sessions are not listable by alice.
  auto denied = Cli(MSH_PATH, "sessions ls --user=bob", alice);
  EXPECT_EQ(denied.exit_code, 4);
  EXPECT_NE(denied.out.find("only their own"), std::string::npos) << denied.out;

  // The admin sees everything.
  auto all =
      Cli(MSH_PATH, "--identity " + ShellQuote(admin_id_) + " sessions ls -q");
  EXPECT_EQ(all.out, "b1\na2\na1\n");
  auto last = Cli(MSH_PATH, "--identity " + ShellQuote(admin_id_) +
                                " sessions ls -q --last=1h --user=bob");
  EXPECT_EQ(last.out, "b1\n");
}

TEST_F(CliTest, MissingOrExpiredIdentitySaysWhatToRun) {
  auto none = Cli(MSH_PATH, "sessions ls", dir_.File("nobody"));
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.out.find("msh login"), std::string::npos) << none.out;
  EXPECT_EQ(std::count(none.out.begin(), none.out.end(), '\n'), 1);

  auto r = Mezctl("users add carol --ttl=1m --identity-out " +
                  ShellQuote(dir_.File("carol.id")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // Rewrite the token's expiry claim into the past (the server would also
  // refuse it; the CLI says so before calling).
  std::string id = *ReadFile(dir_.File("carol.id"));
  json j = json::parse(id);
  std::string token = j["token"];
  auto expired = server_->Sign([&] {
    auth::Claims c;
    c.subject = "carol";
    c.issued_at = 1000;
    c.expires_at = 2000;
    c.id = "x";
    return c;
  }());
  j["token"] = expired;
  WriteFileOrDie(dir_.File("carol-old.id"), j.dump());
  auto old =
      Cli(MSH_PATH, "--identity " + ShellQuote(dir_.File("carol-old.id")) +
                        " sessions ls");
  EXPECT_EQ(old.exit_code, 1);
  EXPECT_NE(old.out.find("expired"), std::string::npos) << old.out;
  EXPECT_NE(old.out.find("msh login"), std::string::npos) << old.out;
  // It points at the command that renews it, not at `users add`.
  EXPECT_NE(old.out.find("mezctl users reissue carol --identity-out"),
            std::string::npos)
      << old.out;
  EXPECT_EQ(old.out.find("users add"), std::string::npos) << old.out;
}

TEST_F(CliTest, MshStatusShowsTheIdentityAndLogoutRemovesIt) {
  std::string home = AddUser("dora");
  auto st = Cli(MSH_PATH, "status", home);
  ASSERT_EQ(st.exit_code, 0) << st.out;
  EXPECT_NE(
      st.out.find("Identity: " + home + "/.mez/identity (from msh login)"),
      std::string::npos)
      << st.out;
  EXPECT_NE(st.out.find("User:     dora (user)"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("Logins:   root,ubuntu"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("Cluster:  " + server_->addr()), std::string::npos)
      << st.out;
  EXPECT_NE(st.out.find("Expires:  "), std::string::npos) << st.out;
  // 12h from `users add`, a moment ago.
  EXPECT_TRUE(st.out.find("(in 12h)") != std::string::npos ||
              st.out.find("(in 11h59m") != std::string::npos)
      << st.out;
  // --identity wins over the stored one, and says so.
  auto admin =
      Cli(MSH_PATH, "--identity " + ShellQuote(admin_id_) + " status", home);
  ASSERT_EQ(admin.exit_code, 0) << admin.out;
  EXPECT_NE(admin.out.find("(from --identity)"), std::string::npos)
      << admin.out;
  EXPECT_NE(admin.out.find("(admin)"), std::string::npos) << admin.out;

  auto out = Cli(MSH_PATH, "logout", home);
  ASSERT_EQ(out.exit_code, 0) << out.out;
  EXPECT_NE(out.out.find("Logged out"), std::string::npos) << out.out;
  auto gone = Cli(MSH_PATH, "status", home);
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.out.find("not logged in"), std::string::npos) << gone.out;
  EXPECT_EQ(Cli(MSH_PATH, "logout", home).exit_code, 0);

  // Expired: status prints what it knows, exits 1 and names the renewal.
  json j = json::parse(*ReadFile(dir_.File("dora.identity")));
  j["token"] = server_->Sign([] {
    auth::Claims c;
    c.subject = "dora";
    c.issued_at = 1000;
    c.expires_at = 2000;
    c.id = "x";
    return c;
  }());
  WriteFileOrDie(dir_.File("dora-old.identity"), j.dump());
  auto old = Cli(
      MSH_PATH,
      "--identity " + ShellQuote(dir_.File("dora-old.identity")) + " status",
      home);
  EXPECT_EQ(old.exit_code, 1);
  EXPECT_NE(old.out.find("expired"), std::string::npos) << old.out;
  EXPECT_NE(old.out.find("mezctl users reissue dora"), std::string::npos)
      << old.out;
}

TEST_F(CliTest, UsersReissueRenewsAnIdentityWithoutRecreatingTheUser) {
  std::string home = AddUser("carol");
  std::string first = *ReadFile(dir_.File("carol.identity"));
  auto again = Mezctl("users reissue carol --ttl=2h --identity-out " +
                      ShellQuote(dir_.File("carol2.identity")));
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("Reissued an identity for carol (user)"),
            std::string::npos)
      << again.out;
  json j1 = json::parse(first);
  json j2 = json::parse(*ReadFile(dir_.File("carol2.identity")));
  EXPECT_NE(j2["token"], j1["token"]);
  EXPECT_EQ(j2["username"], "carol");
  EXPECT_EQ(j2["tls_ca_pem"], j1["tls_ca_pem"]);
  auto login =
      Cli(MSH_PATH,
          "login --identity " + ShellQuote(dir_.File("carol2.identity")), home);
  ASSERT_EQ(login.exit_code, 0) << login.out;
  EXPECT_NE(login.out.find("as carol (user, logins: root,ubuntu)"),
            std::string::npos)
      << login.out;
  // The old identity still works (until it expires): same user row.
  auto old =
      Cli(MSH_PATH, "--identity " + ShellQuote(dir_.File("carol.identity")) +
                        " sessions ls");
  EXPECT_EQ(old.exit_code, 0) << old.out;
  auto ls = Mezctl("users ls | awk '$1 == \"carol\"' | wc -l");
  EXPECT_EQ(ls.out, "1\n");
  auto printed = Mezctl("users reissue carol");
  ASSERT_EQ(printed.exit_code, 0) << printed.out;
  EXPECT_EQ(json::parse(printed.out)["username"], "carol");
  auto audit = Mezctl("audit ls --type=user.reissue --format=jsonl | wc -l");
  EXPECT_EQ(audit.out, "2\n");

  auto nobody = Mezctl("users reissue dave");
  EXPECT_EQ(nobody.exit_code, 3);  // not found
  EXPECT_NE(nobody.out.find("no user 'dave'"), std::string::npos) << nobody.out;
  auto as_user = Cli(MSH_PATH, "sessions ls", home);
  ASSERT_EQ(as_user.exit_code, 0);
  auto refused = Cli(MEZCTL_PATH, "users reissue carol", home);
  EXPECT_EQ(refused.exit_code, 4);  // denied
  EXPECT_NE(refused.out.find(
                "ReissueUser needs an admin credential; you are carol (user): "
                "run it with an admin's identity (--identity FILE or "
                "MEZ_IDENTITY)"),
            std::string::npos)
      << refused.out;
}

TEST_F(CliTest, ConfigSetGetRoundTripIsAudited) {
  auto get = Mezctl("config get session_recording");
  EXPECT_EQ(get.out, "node-sync\n");
  auto set = Mezctl("config set session_recording node");
  ASSERT_EQ(set.exit_code, 0) << set.out;
  EXPECT_EQ(Mezctl("config get session_recording").out, "node\n");
  auto bad = Mezctl("config set session_recording sometimes");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.out.find("node-sync, node, off"), std::string::npos) << bad.out;
  auto audit = Mezctl("audit ls --type=config.set --format=json");
  ASSERT_EQ(audit.exit_code, 0) << audit.out;
  json events = json::parse(audit.out);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["user"], "admin");
  EXPECT_EQ(events[0]["details"]["value"], "node");
  EXPECT_EQ(events[0]["details"]["previous"], "node-sync");
  // Users cannot change settings.
  std::string alice = AddUser("alice");
  auto denied = Cli(MEZCTL_PATH, "config set session_recording off", alice);
  EXPECT_EQ(denied.exit_code, 4);
  EXPECT_NE(denied.out.find("admin"), std::string::npos) << denied.out;
}

TEST_F(CliTest, AuditLsFiltersByTypeAndTime) {
  Record("s1", "alice");
  auto ends = Mezctl("audit ls --type=session.end --last=1h --format=jsonl");
  ASSERT_EQ(ends.exit_code, 0) << ends.out;
  json e = json::parse(ends.out);
  EXPECT_EQ(e["session_id"], "s1");
  EXPECT_TRUE(e["details"].contains("duration_us"));
  auto future = Mezctl("audit ls --since=2100-01-01 --format=jsonl");
  EXPECT_EQ(future.out, "");
  auto text = Mezctl("audit ls --type=session.start | awk '{print $2, $4}'");
  EXPECT_EQ(text.out, "session.start s1\n");
  auto bad = Mezctl("audit ls --last=yesterday");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.out.find("examples"), std::string::npos);
}

TEST_F(CliTest, NodesAndCaExport) {
  auto add = Mezctl("nodes add web-01 --addr 127.0.0.1:3022");
  ASSERT_EQ(add.exit_code, 0) << add.out;
  EXPECT_NE(add.out.find("join token"), std::string::npos);
  ASSERT_EQ(Mezctl("nodes add db-01 --addr 127.0.0.1:22 --openssh").exit_code,
            0);
  auto ls = Mezctl("nodes ls | awk 'NR>1 {print $1, $3, $5}'");
  EXPECT_EQ(ls.out, "db-01 openssh node-sync\nweb-01 agent node-sync\n");
  // Enhanced recording needs mezd on the node: an agentless one says no.
  auto jsonl = Mezctl("nodes ls --format=jsonl");
  struct Row {
    std::string kind, enhanced;
  };
  for (const Row& r :
       {Row{"openssh", "no (agentless)"}, Row{"agent", "per session"}}) {
    size_t at = jsonl.out.find("\"kind\":\"" + r.kind + "\"");
    ASSERT_NE(at, std::string::npos) << jsonl.out;
    std::string row = jsonl.out.substr(at, jsonl.out.find('\n', at) - at);
    EXPECT_NE(row.find("\"enhanced_recording\":\"" + r.enhanced + "\""),
              std::string::npos)
        << row;
  }
  ASSERT_EQ(Mezctl("nodes rm db-01").exit_code, 0);
  EXPECT_EQ(Mezctl("nodes ls --format=jsonl").out.find("db-01"),
            std::string::npos);

  auto ca = Mezctl("ca export --type=user");
  ASSERT_EQ(ca.exit_code, 0);
  EXPECT_EQ(ca.out.rfind("ssh-ed25519 ", 0), 0u) << ca.out;
  WriteFileOrDie(dir_.File("user_ca.pub"), ca.out);
  EXPECT_EQ(::mez::testing::Run("ssh-keygen -l -f " +
                                ShellQuote(dir_.File("user_ca.pub")) +
                                " >/dev/null 2>&1")
                .exit_code,
            0);
  EXPECT_EQ(Mezctl("ca export --type=root").exit_code, 2);
  // The TLS CA is the one the identity pins and mezrecd's certificate
  // chains to.
  auto tls = Mezctl("ca export --type=tls");
  ASSERT_EQ(tls.exit_code, 0) << tls.out;
  EXPECT_EQ(tls.out.rfind("-----BEGIN CERTIFICATE-----", 0), 0u) << tls.out;
  EXPECT_EQ(tls.out, json::parse(*ReadFile(admin_id_))["tls_ca_pem"]);
  EXPECT_EQ(tls.out, *ReadFile(dir_.File("data/tls_ca.crt")));
}

// A proxy identity is a principal: users ls lists it (with its id), and
// users rm revokes its token on every service.
TEST_F(CliTest, ProxiesAreListedAndRemovedLikeUsers) {
  std::string file = dir_.File("px1.identity");
  auto add =
      Mezctl("users add px1 --role=proxy --identity-out " + ShellQuote(file));
  ASSERT_EQ(add.exit_code, 0) << add.out;
  auto ls = Mezctl("users ls | awk 'NR>1 {print $1, $2}'");
  EXPECT_NE(ls.out.find("px1 proxy\n"), std::string::npos) << ls.out;
  auto jl = Mezctl("users ls --format=jsonl");
  bool found = false;
  std::istringstream lines(jl.out);
  for (std::string line; std::getline(lines, line);) {
    json u = json::parse(line);
    if (u["name"] != "px1") continue;
    found = true;
    EXPECT_EQ(u["role"], "proxy");
    EXPECT_EQ(u["logins"].size(), 0u);
    EXPECT_EQ(u["id"].get<std::string>().size(), 32u) << u.dump();
  }
  EXPECT_TRUE(found) << jl.out;

  std::string token = json::parse(*ReadFile(file))["token"];
  auto stub = pb::Cluster::NewStub(server_->Channel());
  auto hello = [&] {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    pb::ProxyHelloRequest req;
    pb::ProxyHelloResponse resp;
    return stub->ProxyHello(&ctx, req, &resp);
  };
  ASSERT_TRUE(hello().ok());
  auto rm = Mezctl("users rm px1");
  ASSERT_EQ(rm.exit_code, 0) << rm.out;
  EXPECT_NE(rm.out.find("revoked"), std::string::npos) << rm.out;
  EXPECT_EQ(hello().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Mezctl("users ls").out.find("px1"), std::string::npos);
  // Adding the name again makes a new identity; the old token stays dead.
  ASSERT_EQ(Mezctl("users add px1 --role=proxy --identity-out " +
                   ShellQuote(dir_.File("px1-new.identity")))
                .exit_code,
            0);
  EXPECT_EQ(hello().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// msh play ID streams the recording from mezrecd; the server undoes gzip
// and encryption, and only the owner (or an admin) may play it.
TEST_F(CliTest, PlayStreamsFromTheServerForTheOwnerOnly) {
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant);
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    if (variant == 1) args.push_back("--gzip");
    if (variant == 2) {
      env["MEZITE_RECORDING_ENC_KEY"] = std::string(64, 'c');
    }
    server_->Stop();
    server_ = std::make_unique<Mezrecd>(
        dir_.File("data" + std::to_string(variant)), args, env);
    ASSERT_TRUE(server_->Start()) << server_->log();
    admin_id_ = dir_.File("data" + std::to_string(variant) + "/admin.identity");
    std::string alice = AddUser("alice");
    std::string bob = AddUser("bob");
    Record("p1", "alice");
    auto text = Cli(MSH_PATH, "play --format=text p1", alice);
    ASSERT_EQ(text.exit_code, 0) << text.out;
    EXPECT_EQ(text.out, "hello from alice\r\n");
    auto cast = Cli(MSH_PATH, "play --format=cast p1", alice);
    EXPECT_EQ(cast.out.find("mezite_encryption"), std::string::npos);
    EXPECT_NE(cast.out.find("\"hello from alice\\r\\n\""), std::string::npos)
        << cast.out;
    auto other = Cli(MSH_PATH, "play --format=text p1", bob);
    EXPECT_EQ(other.exit_code, 3);
    EXPECT_NE(other.out.find("not found"), std::string::npos) << other.out;
    auto missing = Cli(MSH_PATH, "play --format=text nope", alice);
    EXPECT_EQ(missing.exit_code, 3);
    EXPECT_EQ(std::count(missing.out.begin(), missing.out.end(), '\n'), 1);
  }
}

// Every Cluster RPC for a user, another user, an admin and a node token.
TEST_F(CliTest, RbacMatrix) {
  AddUser("alice");
  AddUser("bob");
  Record("a1", "alice");
  auto add = Mezctl("nodes add web-02 --addr 127.0.0.1:3022");
  ASSERT_EQ(add.exit_code, 0) << add.out;
  std::string out = add.out;
  size_t start = out.find("(shown once):\n") + 14;
  std::string join_token = out.substr(start, out.find('\n', start) - start);
  std::string admin = json::parse(*ReadFile(admin_id_))["token"];
  std::string alice =
      json::parse(*ReadFile(dir_.File("alice.identity")))["token"];
  std::string bob = json::parse(*ReadFile(dir_.File("bob.identity")))["token"];
  auto stub = pb::Cluster::NewStub(server_->Channel());
  // The node's credential, for which mezd exchanges its join token.
  std::string node_token;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + join_token);
    pb::JoinNodeRequest req;
    pb::JoinNodeResponse resp;
    grpc::Status s = stub->JoinNode(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    node_token = resp.node_token();
    ASSERT_FALSE(node_token.empty());
  }

  enum Who { kAlice, kBob, kAdmin, kNode };
  const std::string tokens[] = {alice, bob, admin, node_token};
  auto call = [&](Who who, auto fn) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + tokens[who]);
    return fn(&ctx).error_code();
  };
  using C = grpc::StatusCode;
  struct Row {
    const char* rpc;
    std::function<grpc::Status(grpc::ClientContext*)> fn;
    C expect[4];  // alice (owner), bob (other user), admin, node
  };
  pb::ListSessionsResponse ls;
  pb::SessionInfo si;
  pb::ListAuditResponse la;
  pb::ConfigValue cv;
  pb::ListUsersResponse lu;
  pb::ListNodesResponse ln;
  pb::ExportCAResponse ca;
  pb::GetSessionRequest get_a1;
  get_a1.set_id("a1");
  pb::SetConfigRequest set_cfg;
  set_cfg.set_key("session_recording");
  set_cfg.set_value("node-sync");
  pb::GetConfigRequest get_cfg;
  get_cfg.set_key("session_recording");
  pb::ExportCARequest ca_req;
  ca_req.set_type("host");
  pb::JoinNodeRequest join;
  join.set_recording_mode("node");
  pb::JoinNodeResponse joined;
  pb::NodeAuditRequest node_audit;
  node_audit.set_type("auth.refused");
  node_audit.set_user("mallory");
  pb::NodeAuditResponse audited;
  auto read = [&](grpc::ClientContext* ctx) {
    pb::ReadRecordingRequest r;
    r.set_id("a1");
    auto reader = stub->ReadRecording(ctx, r);
    pb::RecordingBytes b;
    while (reader->Read(&b)) {
    }
    return reader->Finish();
  };
  Row rows[] = {
      {"ListSessions",
       [&](auto* c) { return stub->ListSessions(c, {}, &ls); },
       {C::OK, C::OK, C::OK, C::PERMISSION_DENIED}},
      {"GetSession",
       [&](auto* c) { return stub->GetSession(c, get_a1, &si); },
       {C::OK, C::NOT_FOUND, C::OK, C::PERMISSION_DENIED}},
      {"ReadRecording",
       read,
       {C::OK, C::NOT_FOUND, C::OK, C::PERMISSION_DENIED}},
      {"ListAudit",
       [&](auto* c) { return stub->ListAudit(c, {}, &la); },
       {C::PERMISSION_DENIED, C::PERMISSION_DENIED, C::OK,
        C::PERMISSION_DENIED}},
      {"GetConfig",
       [&](auto* c) { return stub->GetConfig(c, get_cfg, &cv); },
       {C::OK, C::OK, C::OK, C::OK}},
      {"SetConfig",
       [&](auto* c) { return stub->SetConfig(c, set_cfg, &cv); },
       {C::PERMISSION_DENIED, C::PERMISSION_DENIED, C::OK,
        C::PERMISSION_DENIED}},
      {"ListUsers",
       [&](auto* c) { return stub->ListUsers(c, {}, &lu); },
       {C::PERMISSION_DENIED, C::PERMISSION_DENIED, C::OK,
        C::PERMISSION_DENIED}},
      {"ListNodes",
       [&](auto* c) { return stub->ListNodes(c, {}, &ln); },
       {C::PERMISSION_DENIED, C::PERMISSION_DENIED, C::OK,
        C::PERMISSION_DENIED}},
      {"ExportCA",
       [&](auto* c) { return stub->ExportCA(c, ca_req, &ca); },
       {C::OK, C::OK, C::OK, C::OK}},
      {"JoinNode",
       [&](auto* c) { return stub->JoinNode(c, join, &joined); },
       {C::PERMISSION_DENIED, C::PERMISSION_DENIED, C::PERMISSION_DENIED,
        C::OK}},
      {"NodeAudit",
       [&](auto* c) { return stub->NodeAudit(c, node_audit, &audited); },
       {C::PERMISSION_DENIED, C::PERMISSION_DENIED, C::PERMISSION_DENIED,
        C::OK}},
  };
  int denials = 0;
  for (const Row& r : rows) {
    for (int who = 0; who < 4; ++who) {
      EXPECT_EQ(call(static_cast<Who>(who), r.fn), r.expect[who])
          << r.rpc << " as " << who;
      denials += r.expect[who] != C::OK;
    }
  }
  // Mutations by non-admins (checked last: they would change state).
  pb::AddUserRequest au;
  au.set_name("mallory");
  pb::AddUserResponse aur;
  pb::RemoveUserRequest ru;
  ru.set_name("bob");
  pb::RemoveUserResponse rur;
  pb::AddNodeRequest an;
  an.set_name("evil");
  an.set_addr("127.0.0.1:1");
  pb::AddNodeResponse anr;
  pb::RemoveNodeRequest rn;
  rn.set_name("web-01");
  pb::RemoveNodeResponse rnr;
  for (Who who : {kAlice, kNode}) {
    EXPECT_EQ(call(who, [&](auto* c) { return stub->AddUser(c, au, &aur); }),
              C::PERMISSION_DENIED);
    EXPECT_EQ(call(who, [&](auto* c) { return stub->RemoveUser(c, ru, &rur); }),
              C::PERMISSION_DENIED);
    EXPECT_EQ(call(who, [&](auto* c) { return stub->AddNode(c, an, &anr); }),
              C::PERMISSION_DENIED);
    EXPECT_EQ(call(who, [&](auto* c) { return stub->RemoveNode(c, rn, &rnr); }),
              C::PERMISSION_DENIED);
    denials += 4;
  }
  // Every denial is audited; so is the admin's and alice's playback.
  auto audit = Mezctl("audit ls --type=access.denied --format=jsonl | wc -l");
  EXPECT_EQ(std::stoi(audit.out), denials);
  auto access =
      Mezctl("audit ls --type=session.recording.access --format=jsonl | wc -l");
  EXPECT_EQ(std::stoi(access.out), 2);
  // The node's own report is in the log, under its name.
  auto refused = Mezctl("audit ls --type=auth.refused --format=jsonl");
  EXPECT_NE(refused.out.find("\"node\":\"web-02\""), std::string::npos)
      << refused.out;
  EXPECT_NE(refused.out.find("mallory"), std::string::npos) << refused.out;
  // A removed user or node loses access at once.
  ASSERT_EQ(Mezctl("users rm bob").exit_code, 0);
  EXPECT_EQ(call(kBob, [&](auto* c) { return stub->ListSessions(c, {}, &ls); }),
            C::UNAUTHENTICATED);
  ASSERT_EQ(Mezctl("nodes rm web-02").exit_code, 0);
  EXPECT_EQ(
      call(kNode, [&](auto* c) { return stub->JoinNode(c, join, &joined); }),
      C::UNAUTHENTICATED);
  auto rec_stub = server_->Stub();
  RecordCall removed(rec_stub.get(), node_token);
  removed.Send(HeaderFrame("a9", alice, pb::SESSION_KIND_SHELL));
  EXPECT_EQ(removed.Close().error_code(), C::UNAUTHENTICATED);
}

// msh ssh against an in-process node (SshServer + SyncRecorder, as mezd
// runs them) through the stock OpenSSH client: the exit code comes back,
// the session is recorded under the user, and a login the user lacks is
// refused naming the allowed ones.
TEST_F(CliTest, SshRunsCommandOnNodeAndRecordsIt) {
  ASSERT_TRUE(HaveProgram("ssh")) << "ssh is missing: run scripts/deps";
  struct passwd* pw = getpwuid(geteuid());
  std::string me = pw != nullptr ? pw->pw_name : "root";

  std::string ca_pem = *ReadFile(dir_.File("data") + "/user_ca.key");
  recorder::SyncRecorderOptions rec_opt;
  rec_opt.channel = server_->Channel();
  rec_opt.node_token = std::make_shared<recorder::BearerToken>(
      server_->Token(auth::Role::kNode, "web-01"));
  rec_opt.node = "web-01";
  ssh::SshServerOptions options;
  options.trusted_user_ca_blob = auth::Ed25519PublicBlobFromPem(ca_pem).value();
  options.tap_factory = recorder::MakeSyncTapFactory(rec_opt);
  auto node = ssh::SshServer::Start(std::move(options));
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  std::unique_ptr<ssh::SshServer> sshd = std::move(node).value();
  struct Stopper {
    ssh::SshServer* s;
    ~Stopper() { s->Stop(); }
  } stopper{sshd.get()};

  // The node (registered by Token() above) joins as mezd would: its
  // address and host key are recorded, the key pinned (msh ssh checks it).
  {
    auto stub = pb::Cluster::NewStub(server_->Channel());
    grpc::ClientContext ctx;
    rec_opt.node_token->Authorize(&ctx);
    pb::JoinNodeRequest join;
    join.set_addr("127.0.0.1:" + std::to_string(sshd->port()));
    join.set_host_key("ssh-ed25519 " +
                      Base64Encode(sshd->host_public_key_blob()));
    pb::JoinNodeResponse joined;
    grpc::Status s = stub->JoinNode(&ctx, join, &joined);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::string id = dir_.File("alice.identity");
  auto user = Mezctl("users add alice --logins=" + me +
                     ",nobody-else --identity-out " + ShellQuote(id));
  ASSERT_EQ(user.exit_code, 0) << user.out;
  std::string home = dir_.File("home-alice");
  ::mez::testing::Run("mkdir -p " + ShellQuote(home));
  ASSERT_EQ(Cli(MSH_PATH, "login --identity " + ShellQuote(id), home).exit_code,
            0);

  auto r = Cli(MSH_PATH, "ssh web-01 'echo via-msh; exit 4' </dev/null", home);
  EXPECT_EQ(r.exit_code, 4) << r.out;
  EXPECT_NE(r.out.find("via-msh"), std::string::npos) << r.out;

  // The session is alice's, and its recording holds the output.
  std::string out;
  std::string sid;
  for (int i = 0; i < 100; ++i) {
    auto ls = Cli(MSH_PATH, "sessions ls -q", home);
    ASSERT_EQ(ls.exit_code, 0) << ls.out;
    sid = ls.out;
    if (!sid.empty() && sid.back() == '\n') sid.pop_back();
    if (!sid.empty()) {
      out = Cli(MSH_PATH, "play --format=text " + ShellQuote(sid), home).out;
      if (out.find("via-msh") != std::string::npos) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(sid.empty());
  EXPECT_EQ(sid.find('\n'), std::string::npos) << sid;
  EXPECT_NE(out.find("via-msh"), std::string::npos) << out;

  // The key lives in a private directory while ssh runs (the node, the
  // same machine here, looks at it) and is gone afterwards; the issuance
  // is audited.
  std::string keys = home + "/.mez/keys";
  auto during = Cli(
      MSH_PATH,
      "ssh web-01 " +
          ShellQuote("stat -c %a " + keys + " " + keys + "/ssh-*/id_ed25519*") +
          " </dev/null",
      home);
  EXPECT_EQ(during.exit_code, 0) << during.out;
  EXPECT_NE(during.out.find("700\n600\n600\n"), std::string::npos)
      << during.out;
  auto after = ::mez::testing::Run("ls -A " + ShellQuote(keys));
  EXPECT_EQ(after.out, "") << after.out;
  auto issued = Mezctl("audit ls --type=cert.issue --format=jsonl");
  EXPECT_NE(issued.out.find("\"user\":\"alice\""), std::string::npos)
      << issued.out;

  // A login alice does not have: one line naming the allowed ones.
  auto denied = Cli(MSH_PATH, "ssh nosuchlogin@web-01 true", home);
  EXPECT_EQ(denied.exit_code, 4) << denied.out;
  EXPECT_EQ(std::count(denied.out.begin(), denied.out.end(), '\n'), 1)
      << denied.out;
  EXPECT_NE(denied.out.find("nosuchlogin"), std::string::npos) << denied.out;
  EXPECT_NE(denied.out.find(me + ", nobody-else"), std::string::npos)
      << denied.out;
  auto unknown = Cli(MSH_PATH, "ssh web-02 true", home);
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_NE(unknown.out.find("web-02"), std::string::npos) << unknown.out;
}

}  // namespace
}  // namespace mez::testing
