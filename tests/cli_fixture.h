// The fixture of the CLI tests (cli_test.cc, cli_lists_test.cc): a real
// mezrecd in a temporary directory, msh and mezctl run as programs with
// HOME in that directory, and sessions recorded through the Record RPC.
#ifndef MEZ_TESTS_CLI_FIXTURE_H_
#define MEZ_TESTS_CLI_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "mezite/v1/cluster.grpc.pb.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Mezrecd>(dir_.File("data"));
    ASSERT_TRUE(server_->Start()) << server_->log();
    admin_id_ = dir_.File("data/admin.identity");
  }
  // Runs a CLI with HOME in the test dir; stderr merged into out.
  CommandResult Cli(const std::string& bin, const std::string& args,
                    const std::string& home = "") {
    std::string h = home.empty() ? dir_.File("home-admin") : home;
    return ::mez::testing::Run("HOME=" + ShellQuote(h) +
                               " MEZ_IDENTITY= " + bin + " " + args + " 2>&1");
  }
  CommandResult Mezctl(const std::string& args) {
    return Cli(MEZCTL_PATH, "--identity " + ShellQuote(admin_id_) + " " + args);
  }
  // Creates a user and logs them in under their own HOME.
  std::string AddUser(const std::string& name,
                      const std::string& role = "user") {
    std::string out = dir_.File(name + ".identity");
    auto r =
        Mezctl("users add " + name + " --logins=root,ubuntu --role=" + role +
               " --identity-out " + ShellQuote(out));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    std::string home = dir_.File("home-" + name);
    ::mez::testing::Run("mkdir -p " + ShellQuote(home));
    auto login = Cli(MSH_PATH, "login --identity " + ShellQuote(out), home);
    EXPECT_EQ(login.exit_code, 0) << login.out;
    EXPECT_NE(login.out.find("as " + name), std::string::npos) << login.out;
    return home;
  }
  // Records a finished session; `exit_status` >= 0 sends an exit frame.
  void Record(const std::string& id, const std::string& user,
              mezite::v1::SessionKind kind = mezite::v1::SESSION_KIND_SHELL,
              const std::string& node = "web-01", int exit_status = -1) {
    std::string err;
    server_->RegisterNode(node, "127.0.0.1:22", &err);
    ASSERT_EQ(err, "");
    auto stub = server_->Stub();
    RecordCall call(stub.get(), server_->Token(auth::Role::kNode, node));
    ASSERT_TRUE(call.Send(HeaderFrame(id, server_->Grant(user, node), kind)));
    ASSERT_TRUE(call.Send(ChunkFrame(1000, mezite::v1::DIRECTION_OUT,
                                     "hello from " + user + "\r\n")));
    if (exit_status >= 0) {
      ASSERT_TRUE(call.Send(ExitFrame(2000, exit_status)));
    }
    ASSERT_TRUE(call.Close().ok());
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> server_;
  std::string admin_id_;
};

}  // namespace mez::testing

#endif  // MEZ_TESTS_CLI_FIXTURE_H_
