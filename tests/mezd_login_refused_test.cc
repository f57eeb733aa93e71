// A login the node refuses is explained to the user, not only in mezd's
// log (issue #16): with a login that does not exist on the host, `msh ssh`
// (OpenSSH underneath) and the stock OpenSSH client at its default
// LogLevel show mezd's reason next to `Permission denied`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libssh/libssh.h>
#include <sys/stat.h>

#include "libmez/auth/keys.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/util/file.h"
#include "tests/mezd_harness.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kMissing[] = "meznosuchuser";

class MezdLoginRefusedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(HaveProgram("ssh")) << "ssh is missing: run scripts/deps";
    ASSERT_EQ(testing::Run(std::string("id ") + kMissing + " >/dev/null 2>&1")
                  .exit_code,
              1)
        << kMissing << " exists on this machine";
    cluster_ = std::make_unique<Mezrecd>(dir_.File("cluster"));
    ASSERT_TRUE(cluster_->Start()) << cluster_->log();
    std::string error;
    MezdOptions o;
    mezd_ = StartRegisteredNode(cluster_.get(), dir_.path(), o, &error);
    ASSERT_NE(mezd_, nullptr) << error;
    ASSERT_TRUE(AddUserAndLogin(*cluster_, dir_.path(), "bob",
                                std::string(kMissing) + "," + CurrentLogin(),
                                &bob_, &error))
        << error;
  }

  // A key and its certificate (KEY-cert.pub) from the cluster's user CA
  // for the missing login, with bob's recording grant for node-1, as
  // msh ssh gets one. "" on failure.
  std::string CertifiedKeyForMissingLogin() {
    auto pem = ReadFile(cluster_->data_dir() + "/user_ca.key");
    if (!pem.ok()) return "";
    auto ca = auth::OpenSshPrivateKeyFromPem(*pem, "cluster user CA");
    if (!ca.ok()) return "";
    std::string ca_path = dir_.File("user_ca");
    WriteFileOrDie(ca_path, *ca);
    chmod(ca_path.c_str(), 0600);
    std::string grant = cluster_->Grant("bob", "node-1");
    if (grant.empty()) return "";
    std::string key = dir_.File("key");
    auto made = testing::Run(
        "ssh-keygen -q -t ed25519 -N '' -C test -f " + ShellQuote(key) +
        " && ssh-keygen -q -s " + ShellQuote(ca_path) + " -I bob -n " +
        kMissing + " -V -5m:+1h -O " +
        ShellQuote("extension:" + std::string(auth::kMeziteTokenExtension) +
                   "=" + grant) +
        " " + ShellQuote(key + ".pub") + " 2>&1");
    EXPECT_EQ(made.exit_code, 0) << made.out;
    return made.exit_code == 0 ? key : "";
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> cluster_;
  std::unique_ptr<Mezd> mezd_;
  TestUser bob_;
};

TEST_F(MezdLoginRefusedTest, MshSshShowsWhyTheNodeRefusedTheLogin) {
  auto r = testing::Run("HOME=" + ShellQuote(bob_.home) +
                        " MEZ_IDENTITY= " + ShellQuote(MSH_PATH) + " ssh " +
                        kMissing + "@node-1 'echo should-not-run' 2>&1");
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("should-not-run")));
  EXPECT_THAT(r.out, HasSubstr("Permission denied"));
  EXPECT_THAT(r.out, HasSubstr(std::string("mezd: refused login \"") +
                               kMissing + "\": the login \"" + kMissing +
                               "\" does not exist on this host"))
      << r.out;
  // The control: bob's login that exists works, with no banner.
  r = testing::Run("HOME=" + ShellQuote(bob_.home) +
                   " MEZ_IDENTITY= " + ShellQuote(MSH_PATH) + " ssh " +
                   CurrentLogin() + "@node-1 'echo logged-in' 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "logged-in\n");
}

// The stock client, at its default LogLevel, with a certificate of the
// cluster's user CA for the missing login (as msh ssh gets one).
TEST_F(MezdLoginRefusedTest, StockOpenSshShowsTheReason) {
  std::string key = CertifiedKeyForMissingLogin();
  ASSERT_FALSE(key.empty());
  auto r = testing::Run(
      "ssh -F /dev/null -i " + ShellQuote(key) +
      " -o CertificateFile=" + ShellQuote(key + "-cert.pub") +
      " -o IdentitiesOnly=yes -o BatchMode=yes"
      " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
      " -o ConnectTimeout=20 -p " +
      std::to_string(mezd_->port()) + " " + kMissing +
      "@127.0.0.1 'echo should-not-run' 2>&1");
  EXPECT_EQ(r.exit_code, 255) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Permission denied"));
  EXPECT_THAT(r.out, HasSubstr(std::string("the login \"") + kMissing +
                               "\" does not exist on this host"))
      << r.out;
  EXPECT_THAT(mezd_->log(), HasSubstr("does not exist on this host"));
}

// A certificate is not secret (it is sent in the clear in every login):
// someone holding one without its private key can only ask whether the
// key would do. That query is answered "yes" for a certificate the checks
// accept, and says nothing about the login: the reason goes only to a
// client that signed.
TEST_F(MezdLoginRefusedTest, ACertificateWithoutItsKeyLearnsNothing) {
  std::string key = CertifiedKeyForMissingLogin();
  ASSERT_FALSE(key.empty());
  ssh_key cert = nullptr;
  ASSERT_EQ(ssh_pki_import_cert_file((key + "-cert.pub").c_str(), &cert),
            SSH_OK);
  ssh_session s = ssh_new();
  ASSERT_NE(s, nullptr);
  unsigned int port = mezd_->port();
  long timeout = 20;
  ssh_options_set(s, SSH_OPTIONS_HOST, "127.0.0.1");
  ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  ssh_options_set(s, SSH_OPTIONS_USER, kMissing);
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout);
  ASSERT_EQ(ssh_connect(s), SSH_OK) << ssh_get_error(s);
  EXPECT_EQ(ssh_userauth_try_publickey(s, kMissing, cert), SSH_AUTH_SUCCESS)
      << ssh_get_error(s);
  char* banner = ssh_get_issue_banner(s);
  EXPECT_EQ(banner, nullptr) << banner;
  ssh_string_free_char(banner);
  ssh_disconnect(s);
  ssh_free(s);
  ssh_key_free(cert);
  EXPECT_THAT(mezd_->log(), Not(HasSubstr("does not exist on this host")));
}

}  // namespace
}  // namespace mez::testing
