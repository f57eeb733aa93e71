// The cluster domain over a real SQLite catalog and a fake clock: the
// checks the Cluster RPCs make (roles, validation messages, single-use
// join tokens, host key pins, revocations, settings), without gRPC.
#include "libmez/cluster/cluster.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "libmez/auth/ssh_cert.h"
#include "libmez/util/encoding.h"

namespace mez::cluster {
namespace {

using auth::Role;
using nlohmann::json;

#define ASSERT_OK(expr)                                               \
  do {                                                                \
    const auto& _r = (expr);                                          \
    ASSERT_TRUE(_r.ok()) << #expr << ": " << StatusOf(_r).ToString(); \
  } while (0)

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cluster_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto cat = catalog::OpenSqliteCatalog(dir_ + "/catalog.db");
    ASSERT_OK(cat);
    catalog_ = std::move(cat).value();
    auto keys =
        auth::LoadOrCreateClusterKeys(dir_ + "/keys", {"localhost"}, &clock_);
    ASSERT_OK(keys);
    keys_ = *keys;
    auto signer = auth::TokenSigner::FromPem(keys_.jwt_private_pem);
    ASSERT_OK(signer);
    signer_ = std::move(signer).value();
    auto verifier = auth::TokenVerifier::FromPublicPem(keys_.jwt_public_pem,
                                                       keys_.cluster_name);
    ASSERT_OK(verifier);
    verifier_ = std::move(verifier).value();
    ClusterOptions o;
    o.catalog = catalog_.get();
    o.signer = signer_.get();
    o.keys = &keys_;
    o.verifier = verifier_.get();
    o.clock = &clock_;
    o.tls_ca_sha256 = "ab";
    cluster_ = std::make_unique<Cluster>(std::move(o));
    admin_.subject = "admin";
    admin_.role = Role::kAdmin;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A user with a catalog row, as a caller.
  auth::Claims User(const std::string& name,
                    std::vector<std::string> logins = {"web"}) {
    NewUser u;
    u.name = name;
    u.logins = std::move(logins);
    auto added = cluster_->AddUser(admin_, u);
    EXPECT_TRUE(added.ok()) << added.status().ToString();
    auth::Claims c;
    c.subject = name;
    c.role = Role::kUser;
    c.uid = added.ok() ? added->user.id : "";
    c.logins = u.logins;
    c.issued_at = clock_.WallMicros() / 1'000'000;
    c.expires_at = c.issued_at + kDefaultUserTtl;
    return c;
  }
  // Registers an agent node; *token is its join token.
  catalog::Node Node(const std::string& name, std::string* token) {
    NewNode n;
    n.name = name;
    n.addr = "127.0.0.1:3022";
    auto added = cluster_->AddNode(admin_, n);
    EXPECT_TRUE(added.ok()) << added.status().ToString();
    if (!added.ok()) return {};
    *token = added->join_token;
    return added->node;
  }
  // The claims of a node's credential issued now.
  auth::Claims NodeCaller(const catalog::Node& n) {
    auth::Claims c;
    c.subject = n.name;
    c.role = Role::kNode;
    c.uid = n.id;
    c.issued_at = clock_.WallMicros() / 1'000'000;
    c.expires_at = c.issued_at + auth::kNodeCredentialTtl;
    return c;
  }
  std::vector<catalog::AuditEvent> Audit(const std::string& type) {
    catalog::AuditFilter f;
    f.type = type;
    auto rows = catalog_->ListAudit(f);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<catalog::AuditEvent>{};
  }
  std::string HostKeyLine() {
    auto pair = auth::GenerateSshUserKey();
    EXPECT_TRUE(pair.ok());
    return std::string(auth::kSshEd25519) + " " + Base64Encode(pair->second);
  }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<catalog::Catalog> catalog_;
  auth::ClusterKeys keys_;
  std::unique_ptr<auth::TokenSigner> signer_;
  std::unique_ptr<auth::TokenVerifier> verifier_;
  std::unique_ptr<Cluster> cluster_;
  auth::Claims admin_;
};

TEST_F(ClusterTest, AdminOperationsRefuseOtherRolesAndAuditTheDenial) {
  auth::Claims alice = User("alice");
  NewUser u;
  u.name = "mallory";
  auto added = cluster_->AddUser(alice, u);
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(added.status().message(),
            "AddUser needs an admin credential; you are alice (user): run it "
            "with an admin's identity (--identity FILE or MEZ_IDENTITY)");
  EXPECT_EQ(cluster_->ListUsers(alice).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(cluster_->RemoveNode(alice, "x").code(), Code::kPermissionDenied);
  EXPECT_EQ(cluster_->ListAudit(alice, {}).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(cluster_->SetSetting(alice, "session_recording", "off").code(),
            Code::kPermissionDenied);
  auth::Claims node;
  node.subject = "n1";
  node.role = Role::kNode;
  EXPECT_EQ(cluster_->SignUserCert(node, "web", "n1", "").status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(cluster_->RecordingToRead(node, "s").status().message(),
            "ReadRecording needs a user or admin credential; nodes can "
            "record but not read");
  EXPECT_EQ(cluster_->JoinNode(alice, {}, "").status().code(),
            Code::kPermissionDenied);
  EXPECT_TRUE(cluster_->WhoAmI(node).ok());

  auto denied = Audit("access.denied");
  ASSERT_EQ(denied.size(), 8u);
  json d = json::parse(denied.back().details);  // Newest first.
  EXPECT_EQ(denied.back().user, "alice");
  EXPECT_EQ(d["method"], "AddUser");
  EXPECT_EQ(d["code"], "PERMISSION_DENIED");
  EXPECT_EQ(d["role"], "user");
  EXPECT_EQ(catalog_->GetUser("mallory").status().code(), Code::kNotFound);
}

TEST_F(ClusterTest, AddUserValidatesAndIssuesATokenForTheNewId) {
  NewUser u;
  u.name = "bob";
  u.role = "root";
  EXPECT_EQ(cluster_->AddUser(admin_, u).status().message(),
            "role must be user, admin or proxy (got 'root')");
  u.role = "proxy";
  u.logins = {"web"};
  EXPECT_EQ(cluster_->AddUser(admin_, u).status().message(),
            "a proxy has no logins; drop --logins");
  u = NewUser{};
  u.name = "_mezrecd-proxy";
  EXPECT_EQ(cluster_->AddUser(admin_, u).status().code(),
            Code::kInvalidArgument);

  u.name = "bob";
  u.logins = {"web", "db"};
  u.ttl_seconds = 60;
  auto added = cluster_->AddUser(admin_, u);
  ASSERT_OK(added);
  EXPECT_EQ(added->user.role, "user");
  auto claims = verifier_->Verify(added->token, clock_.WallMicros() / 1000000);
  ASSERT_OK(claims);
  EXPECT_EQ(claims->subject, "bob");
  EXPECT_EQ(claims->uid, added->user.id);
  EXPECT_EQ(claims->expires_at - claims->issued_at, 60);
  EXPECT_EQ(Audit("user.create").size(), 1u);
  EXPECT_EQ(cluster_->AddUser(admin_, u).status().code(), Code::kAlreadyExists);

  // Removed: the name's tokens are revoked, and re-adding does not revive
  // them.
  EXPECT_EQ(cluster_->RemoveUser(admin_, "admin").message(),
            "you cannot remove yourself");
  ASSERT_OK(cluster_->RemoveUser(admin_, "bob"));
  EXPECT_EQ(CheckIdentity(catalog_.get(), Role::kUser, "bob", claims->uid)
                .status()
                .code(),
            Code::kUnauthenticated);
  ASSERT_OK(cluster_->AddUser(admin_, u));
  auto again = CheckIdentity(catalog_.get(), Role::kUser, "bob", claims->uid);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("removed and added again"),
            std::string::npos);
}

TEST_F(ClusterTest, JoinTokenIsGoodOnceAndExchangedForACredential) {
  std::string token;
  catalog::Node n = Node("n1", &token);
  ASSERT_FALSE(token.empty());
  auto claims = verifier_->Verify(token, clock_.WallMicros() / 1000000);
  ASSERT_OK(claims);
  EXPECT_EQ(claims->role, Role::kJoin);
  EXPECT_EQ(claims->ca_hash, "ab");
  // A join token is no bearer credential anywhere else.
  EXPECT_EQ(
      CheckIdentity(catalog_.get(), Role::kJoin, "n1", n.id).status().code(),
      Code::kUnauthenticated);

  std::string hash;
  auto caller = CheckJoinToken(catalog_.get(), *claims, token, &hash);
  ASSERT_OK(caller);
  EXPECT_EQ(caller->role, Role::kNode);
  EXPECT_EQ(hash, JoinTokenHash(token));
  NodeReport report;
  report.addr = "10.0.0.1:3022";
  report.recording_mode = "node";
  auto answer = cluster_->JoinNode(*caller, report, hash);
  ASSERT_OK(answer);
  EXPECT_EQ(answer->name, "n1");
  EXPECT_EQ(answer->session_recording, "node-sync");
  EXPECT_EQ(answer->user_ca_public, keys_.user_ca_public);
  auto credential =
      verifier_->Verify(answer->node_token, clock_.WallMicros() / 1000000);
  ASSERT_OK(credential);
  EXPECT_EQ(credential->role, Role::kNode);
  EXPECT_EQ(credential->uid, n.id);
  EXPECT_EQ(answer->node_token_expires_at,
            clock_.WallMicros() / 1000000 + auth::kNodeCredentialTtl);
  EXPECT_EQ(Audit("node.join").size(), 1u);
  auto row = catalog_->GetNode("n1");
  ASSERT_OK(row);
  EXPECT_EQ(row->addr, "10.0.0.1:3022");
  EXPECT_EQ(row->recording_mode, "node");

  // Used up: refused before and (for a racing replica) at the join.
  auto second = CheckJoinToken(catalog_.get(), *claims, token, &hash);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("was already used"),
            std::string::npos);
  auto raced = cluster_->JoinNode(*caller, report, JoinTokenHash(token));
  EXPECT_EQ(raced.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(Audit("access.denied").size(), 1u);
}

TEST_F(ClusterTest, HeartbeatRenewsTheCredentialAfterAThirdOfItsLife) {
  std::string token;
  catalog::Node n = Node("n1", &token);
  auth::Claims caller = NodeCaller(n);
  auto fresh = cluster_->JoinNode(caller, {}, "");
  ASSERT_OK(fresh);
  EXPECT_TRUE(fresh->node_token.empty());
  clock_.Advance(int64_t{auth::kNodeCredentialTtl / 3 + 60} * 1'000'000);
  auto later = cluster_->JoinNode(caller, {}, "");
  ASSERT_OK(later);
  EXPECT_FALSE(later->node_token.empty());
  EXPECT_EQ(Audit("node.credential_renew").size(), 1u);
}

TEST_F(ClusterTest, JoinValidatesTheReportAndPinsTheHostKey) {
  std::string token;
  catalog::Node n = Node("n1", &token);
  auth::Claims caller = NodeCaller(n);
  NodeReport bad;
  bad.addr = "no-port";
  EXPECT_EQ(cluster_->JoinNode(caller, bad, "").status().message(),
            "addr must be HOST:PORT");
  bad = NodeReport{};
  bad.recording_mode = "sometimes";
  EXPECT_EQ(cluster_->JoinNode(caller, bad, "").status().message(),
            "session_recording must be one of node-sync, node, off (got "
            "'sometimes')");
  bad = NodeReport{};
  bad.host_key = "ssh-rsa AAAA";
  EXPECT_EQ(cluster_->JoinNode(caller, bad, "").status().code(),
            Code::kInvalidArgument);

  NodeReport report;
  report.addr = "[::1]:3022";
  report.host_key = HostKeyLine();
  auto answer = cluster_->JoinNode(caller, report, "");
  ASSERT_OK(answer);
  ASSERT_FALSE(answer->host_certificate_line.empty());
  std::string cert_b64 = answer->host_certificate_line.substr(
      answer->host_certificate_line.find(' ') + 1);
  cert_b64 = cert_b64.substr(0, cert_b64.find(' '));
  auto blob = Base64Decode(cert_b64);
  ASSERT_OK(blob);
  auto cert = auth::ParseSshCert(*blob);
  ASSERT_OK(cert);
  EXPECT_EQ(cert->principals, (std::vector<std::string>{"n1", "::1"}));
  EXPECT_EQ(cert->valid_before - cert->valid_after,
            kHostCertTtl + kUserCertBackdate);

  report.host_key = HostKeyLine();
  auto other = cluster_->JoinNode(caller, report, "");
  EXPECT_EQ(other.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(Audit("node.host_key_mismatch").size(), 1u);

  // A node removed and added again: the old credential is revoked.
  ASSERT_OK(cluster_->RemoveNode(admin_, "n1"));
  Node("n1", &token);
  EXPECT_EQ(cluster_->JoinNode(caller, {}, "").status().code(),
            Code::kUnauthenticated);
}

TEST_F(ClusterTest, HeartbeatCarriesTheSettingAndRecentRevocations) {
  std::string token;
  catalog::Node n = Node("n1", &token);
  auth::Claims alice = User("alice");
  User("bob");
  // The catalog stamps revocations with the real time.
  clock_.StepWall(RealClock()->WallMicros() - clock_.WallMicros());
  ASSERT_OK(cluster_->RemoveUser(admin_, "alice"));
  ASSERT_OK(cluster_->SetSetting(admin_, "session_recording", "off"));
  auto answer = cluster_->JoinNode(NodeCaller(n), {}, "");
  ASSERT_OK(answer);
  EXPECT_EQ(answer->session_recording, "off");
  EXPECT_EQ(answer->revoked_user_ids, std::vector<std::string>{alice.uid});
  // Older than any certificate alice could still hold: no longer sent.
  clock_.Advance(int64_t{kRevokedUserWindow + 60} * 1'000'000);
  answer = cluster_->JoinNode(NodeCaller(n), {}, "");
  ASSERT_OK(answer);
  EXPECT_TRUE(answer->revoked_user_ids.empty());
}

TEST_F(ClusterTest, SettingsGoThroughTheRegistryAndAreAudited) {
  auth::Claims alice = User("alice");
  auto v = cluster_->GetSetting(alice, "session_recording");
  ASSERT_OK(v);
  EXPECT_EQ(*v, "node-sync");
  EXPECT_EQ(cluster_->GetSetting(alice, "proxy.addr").status().message(),
            "unknown setting 'proxy.addr' (known: session_recording)");
  EXPECT_EQ(
      cluster_->SetSetting(admin_, "session_recording", "sometimes").message(),
      "session_recording must be one of node-sync, node, off (got "
      "'sometimes')");
  ASSERT_OK(cluster_->SetSetting(admin_, "session_recording", "node"));
  ASSERT_OK(cluster_->SetSetting(admin_, "session_recording", "off"));
  EXPECT_EQ(*ReadSetting(catalog_.get(), "session_recording"), "off");
  auto events = Audit("config.set");
  ASSERT_EQ(events.size(), 2u);
  json d = json::parse(events.front().details);
  EXPECT_EQ(d["value"], "off");
  EXPECT_EQ(d["previous"], "node");
  EXPECT_EQ(events.front().user, "admin");
}

TEST_F(ClusterTest, UserCertificateIsForOneOfTheLoginsOnOneRegisteredNode) {
  auth::Claims alice = User("alice", {"web"});
  std::string token;
  Node("n1", &token);
  auto key = auth::GenerateSshUserKey();
  ASSERT_OK(key);
  auto bad_login = cluster_->SignUserCert(alice, "root", "n1", key->second);
  EXPECT_EQ(bad_login.status().message(),
            "login 'root' is not allowed for alice (allowed: web)");
  EXPECT_EQ(
      cluster_->SignUserCert(alice, "web", "", key->second).status().code(),
      Code::kInvalidArgument);
  EXPECT_EQ(cluster_->SignUserCert(alice, "web", "../n1", key->second)
                .status()
                .message(),
            "node must be a registered node's name");
  EXPECT_EQ(
      cluster_->SignUserCert(alice, "web", "n2", key->second).status().code(),
      Code::kNotFound);
  EXPECT_EQ(Audit("access.denied").size(), 2u);

  // The certificate ends with the caller's login when that is sooner.
  int64_t now = clock_.WallMicros() / 1'000'000;
  alice.expires_at = now + 120;
  auto signed_cert = cluster_->SignUserCert(alice, "web", "n1", key->second);
  ASSERT_OK(signed_cert);
  EXPECT_EQ(signed_cert->valid_before, now + 120);
  EXPECT_EQ(Audit("cert.issue").size(), 1u);
  alice.expires_at = now;
  Status expired =
      cluster_->SignUserCert(alice, "web", "n1", key->second).status();
  EXPECT_EQ(expired.code(), Code::kUnauthenticated);
  // The way out is named: an admin reissues, nobody deletes the user.
  EXPECT_NE(expired.message().find("mezctl users reissue alice"),
            std::string::npos)
      << expired.message();
}

TEST_F(ClusterTest, NodeAuditTrustsTheUserOnlyThroughAGrantForThatNode) {
  std::string token;
  catalog::Node n = Node("n1", &token);
  auth::Claims node = NodeCaller(n);
  NodeEvent e;
  e.type = "user.create";
  EXPECT_EQ(cluster_->NodeAudit(node, e).status().code(),
            Code::kInvalidArgument);
  e.type = "session.start";
  e.details = "[1]";
  EXPECT_EQ(cluster_->NodeAudit(node, e).status().message(),
            "details must be a JSON object");
  e.details = R"({"kind":"shell"})";
  e.user = "alice";
  e.node = "elsewhere";  // Ignored from a node.
  auto id = cluster_->NodeAudit(node, e);
  ASSERT_OK(id);
  auto events = Audit("session.start");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].node, "n1");
  EXPECT_EQ(events[0].user, "");
  json d = json::parse(events[0].details);
  EXPECT_EQ(d["claimed_user"], "alice");
  EXPECT_EQ(d["reported_by"], "n1");

  auth::Claims grant;
  grant.subject = "alice";
  grant.role = Role::kSession;
  grant.audience = "n2";
  auto other =
      auth::IssueToken(*signer_, keys_.cluster_name, grant, 600, &clock_);
  ASSERT_OK(other);
  e.user_token = *other;
  EXPECT_EQ(cluster_->NodeAudit(node, e).status().message(),
            "user_token is a grant for node 'n2', not for 'n1'");
  grant.audience = "n1";
  auto mine =
      auth::IssueToken(*signer_, keys_.cluster_name, grant, 600, &clock_);
  ASSERT_OK(mine);
  e.user_token = *mine;
  ASSERT_OK(cluster_->NodeAudit(node, e));
  EXPECT_EQ(Audit("session.start").front().user, "alice");
}

TEST_F(ClusterTest, UsersSeeOnlyTheirOwnSessions) {
  auth::Claims alice = User("alice");
  auth::Claims bob = User("bob");
  catalog::Session s;
  s.id = "s1";
  s.user = "bob";
  s.node = "n1";
  s.kind = "shell";
  s.format = "asciicast-v2";
  s.storage_key = "k";
  s.started_us = clock_.WallMicros();
  ASSERT_OK(catalog_->CreateSession(s));
  catalog::SessionFilter f;
  f.user = "bob";
  EXPECT_EQ(cluster_->ListSessions(alice, f).status().code(),
            Code::kPermissionDenied);
  auto own = cluster_->ListSessions(alice, {});
  ASSERT_OK(own);
  EXPECT_TRUE(own->empty());
  EXPECT_EQ(cluster_->GetSession(alice, "s1").status().code(), Code::kNotFound);
  EXPECT_EQ(cluster_->RecordingToRead(alice, "s1").status().code(),
            Code::kNotFound);
  ASSERT_OK(cluster_->GetSession(bob, "s1"));
  auto readable = cluster_->RecordingToRead(admin_, "s1");
  ASSERT_OK(readable);
  cluster_->AuditRecordingRead(admin_, *readable, 5);
  auto access = Audit("session.recording.access");
  ASSERT_EQ(access.size(), 1u);
  EXPECT_EQ(json::parse(access[0].details)["owner"], "bob");
  EXPECT_EQ(Audit("access.denied").size(), 3u);
}

// A unique prefix of an id names the session, among the caller's own for a
// user: another user's session is neither found nor counted as a match.
TEST_F(ClusterTest, AUniqueIdPrefixNamesTheSession) {
  auto add = [&](const std::string& id, const std::string& user) {
    catalog::Session s;
    s.id = id;
    s.user = user;
    s.node = "n1";
    s.kind = "shell";
    s.format = "asciicast-v2";
    s.storage_key = user + "/" + id;
    s.started_us = clock_.WallMicros();
    ASSERT_OK(catalog_->CreateSession(s));
  };
  add("0123456789abcdef0123456789abcdef", "alice");
  add("0123ffff89abcdef0123456789abcdef", "bob");
  add("abcd0000000000000000000000000000", "bob");
  auth::Claims alice = User("alice");
  auth::Claims bob = User("bob");

  auto mine = cluster_->GetSession(alice, "0123");
  ASSERT_OK(mine);
  EXPECT_EQ(mine->id, "0123456789abcdef0123456789abcdef");
  auto read = cluster_->RecordingToRead(alice, "012345");
  ASSERT_OK(read);
  EXPECT_EQ(read->storage_key, "alice/0123456789abcdef0123456789abcdef");
  // Alice cannot reach bob's through a prefix.
  EXPECT_EQ(cluster_->GetSession(alice, "abcd").status().code(),
            Code::kNotFound);
  EXPECT_EQ(cluster_->GetSession(alice, "0123f").status().code(),
            Code::kNotFound);
  // For the admin, "0123" is two sessions: refused, naming them.
  auto both = cluster_->GetSession(admin_, "0123");
  EXPECT_EQ(both.status().code(), Code::kInvalidArgument);
  EXPECT_NE(both.status().message().find("0123ffff89abcdef"), std::string::npos)
      << both.status().ToString();
  auto bobs = cluster_->GetSession(admin_, "0123f");
  ASSERT_OK(bobs);
  EXPECT_EQ(bobs->user, "bob");
  // Not hex, or no match: not found.
  EXPECT_EQ(cluster_->GetSession(bob, "abcd%").status().code(),
            Code::kNotFound);
  EXPECT_EQ(cluster_->GetSession(bob, "9").status().code(), Code::kNotFound);
}

TEST_F(ClusterTest, ProxyHelloPublishesTheProxyForResolveNode) {
  NewUser p;
  p.name = "edge";
  p.role = "proxy";
  auto added = cluster_->AddUser(admin_, p);
  ASSERT_OK(added);
  auth::Claims proxy;
  proxy.subject = "edge";
  proxy.role = Role::kProxy;
  proxy.uid = added->user.id;
  std::string token;
  Node("n1", &token);
  auth::Claims alice = User("alice");
  EXPECT_EQ(cluster_->ProxyHello(alice, "", "").status().code(),
            Code::kPermissionDenied);
  auto only_ca = cluster_->ProxyHello(proxy, "", "");
  ASSERT_OK(only_ca);
  EXPECT_EQ(only_ca->session_recording, "node-sync");
  auto r = cluster_->ResolveNode(alice, "n1");
  ASSERT_OK(r);
  EXPECT_EQ(r->proxy_addr, "");
  ASSERT_OK(cluster_->ProxyHello(proxy, "127.0.0.1:3023", HostKeyLine()));
  r = cluster_->ResolveNode(alice, "n1");
  ASSERT_OK(r);
  EXPECT_EQ(r->proxy_addr, "127.0.0.1:3023");
  EXPECT_NE(r->proxy_host_key.find(" mezite-proxy"), std::string::npos);
  EXPECT_EQ(cluster_->ResolveNode(alice, "n9").status().message(),
            "node 'n9' is not registered");

  // Hops: a user without logins is refused, audited as proxy.refused.
  auth::Claims nologin = User("nologin", {});
  EXPECT_EQ(cluster_->AuthorizeProxyHop(proxy, "nologin", "n1", "r", "web")
                .status()
                .code(),
            Code::kPermissionDenied);
  EXPECT_EQ(Audit("proxy.refused").size(), 1u);
  ASSERT_OK(cluster_->AuthorizeProxyHop(proxy, "alice", "n1", "r", "web"));
  auto upstream = cluster_->SignUpstreamCert(proxy, "alice", "root", "");
  EXPECT_EQ(upstream.status().code(), Code::kPermissionDenied);
  auto ca = cluster_->ExportCA(alice, "host");
  ASSERT_OK(ca);
  EXPECT_EQ(*ca, keys_.host_ca_public);
  EXPECT_EQ(cluster_->ExportCA(alice, "tls").status().message(),
            "CA type must be user or host (got 'tls')");
}

TEST_F(ClusterTest, ReissueGivesTheSameUserANewTokenAndKeepsTheOldOne) {
  auth::Claims alice = User("alice", {"web", "db"});
  EXPECT_EQ(cluster_->ReissueUser(alice, "alice", 0).status().message(),
            "ReissueUser needs an admin credential; you are alice (user): "
            "run it with an admin's identity (--identity FILE or "
            "MEZ_IDENTITY)");
  EXPECT_EQ(cluster_->ReissueUser(admin_, "carol", 0).status().code(),
            Code::kNotFound);
  EXPECT_EQ(cluster_->ReissueUser(admin_, "_mezrecd-proxy", 0).status().code(),
            Code::kInvalidArgument);

  clock_.Advance(int64_t{13} * 3600 * 1'000'000);  // alice's token expired.
  auto again = cluster_->ReissueUser(admin_, "alice", 0);
  ASSERT_OK(again);
  EXPECT_EQ(again->user.id, alice.uid);
  auto claims = verifier_->Verify(again->token, clock_.WallMicros() / 1000000);
  ASSERT_OK(claims);
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->role, Role::kUser);
  EXPECT_EQ(claims->uid, alice.uid);
  EXPECT_EQ(claims->logins, (std::vector<std::string>{"web", "db"}));
  EXPECT_EQ(claims->expires_at - claims->issued_at, kDefaultUserTtl);
  // The row is the same: the new token passes the identity check, and the
  // user was not re-created.
  EXPECT_TRUE(
      CheckIdentity(catalog_.get(), Role::kUser, "alice", claims->uid).ok());
  auto users = cluster_->ListUsers(admin_);
  ASSERT_OK(users);
  EXPECT_EQ(users->size(), 1u);
  EXPECT_EQ(Audit("user.create").size(), 1u);

  auto short_lived = cluster_->ReissueUser(admin_, "alice", 60);
  ASSERT_OK(short_lived);
  auto c2 =
      verifier_->Verify(short_lived->token, clock_.WallMicros() / 1000000);
  ASSERT_OK(c2);
  EXPECT_EQ(c2->expires_at - c2->issued_at, 60);

  auto events = Audit("user.reissue");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events.front().user, "admin");
  json d = json::parse(events.front().details);  // Newest first.
  EXPECT_EQ(d["name"], "alice");
  EXPECT_EQ(d["id"], alice.uid);
  EXPECT_EQ(d["ttl_seconds"], 60);
}

}  // namespace
}  // namespace mez::cluster
