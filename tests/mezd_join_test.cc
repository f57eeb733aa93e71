// Joining a node, with the real mezrecd and mezd binaries over TLS: the
// join token from `mezctl nodes add` pins the cluster's TLS CA (mezd is
// given no CA file and fetches the pinned one), is good once, and is
// exchanged for a node credential kept in the data dir, which mezd renews
// and every recording call uses; `nodes rm` revokes it.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "libmez/auth/identity.h"
#include "libmez/auth/keys.h"
#include "libmez/auth/token.h"
#include "libmez/util/clock.h"
#include "libmez/util/file.h"
#include "tests/mezd_harness.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

#ifndef MSH_PATH
#error "MSH_PATH must name the msh binary"
#endif

namespace mez::testing {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

bool Eventually(const std::function<bool()>& pred, int seconds = 30) {
  auto deadline = SteadyClock::now() + std::chrono::seconds(seconds);
  while (!pred()) {
    if (SteadyClock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class MezdJoinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(HaveProgram("ssh")) << "ssh is missing: run scripts/deps";
    port_ = FreeLoopbackPort();
    ASSERT_NE(port_, 0);
    cluster_ = std::make_unique<Mezrecd>(
        dir_.File("data"),
        std::vector<std::string>{"--listen",
                                 "127.0.0.1:" + std::to_string(port_)});
    ASSERT_TRUE(cluster_->Start()) << cluster_->log();
    auto id = auth::ReadIdentityFile(cluster_->data_dir() + "/admin.identity");
    ASSERT_TRUE(id.ok());
    ASSERT_FALSE(id->tls_ca_pem.empty()) << "the cluster must serve TLS";
    tls_ca_pem_ = id->tls_ca_pem;
    node_port_ = FreeLoopbackPort();
    ASSERT_NE(node_port_, 0);
    std::string error;
    join_token_ = RegisterNode(
        *cluster_, "node-1", "127.0.0.1:" + std::to_string(node_port_), &error);
    ASSERT_FALSE(join_token_.empty()) << error;
  }

  // mezd for node-1 with `token` (may be empty) and `data_dir`.
  std::unique_ptr<Mezd> NodeWith(const std::string& token,
                                 const std::string& data_dir,
                                 std::vector<std::string> extra = {}) {
    MezdOptions options;
    options.node_name = "node-1";
    options.token = token;
    options.listen = "127.0.0.1:" + std::to_string(node_port_);
    options.extra_args = {"--data-dir", data_dir};
    options.extra_args.insert(options.extra_args.end(), extra.begin(),
                              extra.end());
    return std::make_unique<Mezd>(cluster_.get(), dir_.path(), options);
  }
  json Audit(const std::string& type) {
    auto r = Mezctl(*cluster_, "audit ls --type=" + type + " --format=json");
    json arr = json::parse(r.out, nullptr, false);
    return arr.is_array() ? arr : json::array();
  }
  std::string StoredToken(const std::string& data_dir) {
    auto text = ReadFile(data_dir + "/node_credential");
    if (!text.ok()) return "";
    json j = json::parse(*text, nullptr, false);
    return j.is_object() && j.contains("token") ? j["token"].get<std::string>()
                                                : "";
  }

  TempDir dir_;
  uint16_t port_ = 0;
  uint16_t node_port_ = 0;
  std::unique_ptr<Mezrecd> cluster_;
  std::string tls_ca_pem_;
  std::string join_token_;
};

TEST_F(MezdJoinTest, JoinTokenPinsTheCaAndIsExchangedOnce) {
  std::string data = dir_.File("mezd");
  auto mezd = NodeWith(join_token_, data);
  ASSERT_TRUE(mezd->Start()) << mezd->command_line() << "\n" << mezd->log();
  // No --ca-file: mezd fetched the CA the token pins and kept it.
  EXPECT_EQ(mezd->command_line().find("--ca-file"), std::string::npos);
  auto kept = ReadFile(data + "/cluster_ca.pem");
  ASSERT_TRUE(kept.ok()) << mezd->log();
  EXPECT_EQ(*auth::CertificateSha256(*kept),
            *auth::CertificateSha256(tls_ca_pem_));
  // The credential: a node token for this node, owner-only on disk.
  std::string credential = StoredToken(data);
  auto claims = auth::ReadClaimsUnverified(credential);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->role, auth::Role::kNode);
  EXPECT_EQ(claims->subject, "node-1");
  EXPECT_EQ(claims->expires_at - claims->issued_at, auth::kNodeCredentialTtl);
  struct stat st;
  ASSERT_EQ(stat((data + "/node_credential").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(Eventually([&] { return Audit("node.join").size() == 1; }));
  ASSERT_EQ(mezd->Stop(), 0);

  // A restart with the same --token, or none, uses the stored credential.
  for (const std::string& token : {join_token_, std::string()}) {
    auto again = NodeWith(token, data);
    ASSERT_TRUE(again->Start()) << again->log();
    ASSERT_EQ(again->Stop(), 0);
  }
  EXPECT_EQ(StoredToken(data), credential);
  EXPECT_EQ(Audit("node.join").size(), 1u);

  // The join token again, from another data dir (a copy of it taken from
  // the operator's shell history): refused, nothing stored.
  std::string other = dir_.File("thief");
  auto thief = NodeWith(join_token_, other);
  EXPECT_FALSE(thief->Start());
  EXPECT_NE(thief->log().find("already used"), std::string::npos)
      << thief->log();
  EXPECT_EQ(StoredToken(other), "");

  // nodes rm revokes the stored credential at once.
  ASSERT_EQ(Mezctl(*cluster_, "nodes rm node-1").exit_code, 0);
  auto removed = NodeWith("", data);
  EXPECT_FALSE(removed->Start());
  EXPECT_NE(removed->log().find("not registered"), std::string::npos)
      << removed->log();
}

// --ca-file must be the CA the join token pins: a wrong one is refused
// before the token is sent, the right one works.
TEST_F(MezdJoinTest, CaFileMustMatchThePin) {
  TempDir other;
  auto keys =
      auth::LoadOrCreateClusterKeys(other.File("keys"), {}, RealClock());
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  WriteFileOrDie(dir_.File("wrong-ca.pem"), keys->tls_ca_cert_pem);
  auto wrong = NodeWith(join_token_, dir_.File("mezd"),
                        {"--ca-file", dir_.File("wrong-ca.pem")});
  EXPECT_FALSE(wrong->Start());
  EXPECT_NE(wrong->log().find("not the CA this node's join token pins"),
            std::string::npos)
      << wrong->log();
  // The token was not used up.
  EXPECT_EQ(Audit("node.join").size(), 0u);

  WriteFileOrDie(dir_.File("right-ca.pem"), tls_ca_pem_);
  auto right = NodeWith(join_token_, dir_.File("mezd"),
                        {"--ca-file", dir_.File("right-ca.pem")});
  ASSERT_TRUE(right->Start()) << right->log();
  EXPECT_FALSE(StoredToken(dir_.File("mezd")).empty());
}

// A credential in the second half of its life is renewed at the next
// join, and recordings go on with the new one after the old one expired.
TEST_F(MezdJoinTest, CredentialIsRenewedAndUsedForRecordings) {
  std::string data = dir_.File("mezd");
  {
    auto first = NodeWith(join_token_, data);
    ASSERT_TRUE(first->Start()) << first->log();
    ASSERT_EQ(first->Stop(), 0);
  }
  auto issued = auth::ReadClaimsUnverified(StoredToken(data));
  ASSERT_TRUE(issued.ok());
  // Replace it with one about to expire (as after days offline).
  auth::Claims aged = *issued;
  aged.issuer.clear();
  aged.issued_at = NowSeconds() - 6 * 24 * 3600;
  aged.expires_at = NowSeconds() + 4;
  std::string old_token = cluster_->Sign(aged);
  ASSERT_FALSE(old_token.empty());
  auto stored = ReadFile(data + "/node_credential");
  ASSERT_TRUE(stored.ok());
  json j = json::parse(*stored);
  j["token"] = old_token;
  WriteFileOrDie(data + "/node_credential", j.dump());

  auto mezd = NodeWith("", data, {"--heartbeat", "1s"});
  ASSERT_TRUE(mezd->Start()) << mezd->log();
  std::string renewed = StoredToken(data);
  ASSERT_NE(renewed, old_token) << mezd->log();
  auto claims = auth::ReadClaimsUnverified(renewed);
  ASSERT_TRUE(claims.ok());
  EXPECT_GE(claims->expires_at, NowSeconds() + auth::kNodeCredentialTtl - 60);
  EXPECT_EQ(claims->uid, issued->uid);

  // Once the old credential has expired, a node-sync session is recorded
  // (the recorder's calls carry the renewed credential).
  ASSERT_TRUE(Eventually([&] { return NowSeconds() > aged.expires_at; }, 10));
  TestUser alice;
  std::string error;
  ASSERT_TRUE(AddUserAndLogin(*cluster_, dir_.path(), "alice", CurrentLogin(),
                              &alice, &error))
      << error;
  auto ssh = testing::Run("HOME=" + ShellQuote(alice.home) +
                          " MEZ_IDENTITY= " + ShellQuote(MSH_PATH) +
                          " ssh node-1 'echo renewed-and-recorded' 2>&1");
  ASSERT_EQ(ssh.exit_code, 0) << ssh.out << "\n" << mezd->log();
  EXPECT_NE(ssh.out.find("renewed-and-recorded"), std::string::npos);
  json sessions;
  ASSERT_TRUE(Eventually([&] {
    auto ls = testing::Run(
        "HOME=" + ShellQuote(dir_.path()) + " " + ShellQuote(MSH_PATH) +
        " --identity " + ShellQuote(cluster_->data_dir() + "/admin.identity") +
        " sessions ls --format=json 2>&1");
    sessions = json::parse(ls.out, nullptr, false);
    return sessions.is_array() && sessions.size() == 1 &&
           sessions[0]["status"] == "complete";
  })) << sessions.dump()
      << "\n"
      << mezd->log();
}

}  // namespace
}  // namespace mez::testing
