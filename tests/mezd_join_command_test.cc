// The command `mezctl nodes add` prints, run verbatim: taken from its
// stdout as printed and run with `bash -c` (mezd found on PATH, as on a
// node with the package installed), it joins the node with no file copied
// (the join token pins the cluster's TLS CA) into the data dir it names,
// and a session through `msh ssh` to the node is recorded and plays back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "libmez/util/file.h"
#include "tests/mezd_harness.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

bool Eventually(const std::function<bool()>& pred, int seconds = 30) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::string DirName(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

// `bash -c COMMAND` in its own process group, output to `log`; the group
// is killed when this goes away.
class BashJob {
 public:
  BashJob(const std::string& command, const std::string& log,
          const std::string& path_env)
      : log_(log) {
    WriteFileOrDie(log_, "");
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      setenv("PATH", path_env.c_str(), 1);
      FILE* in = freopen("/dev/null", "r", stdin);
      FILE* out = freopen(log.c_str(), "a", stdout);
      FILE* err = freopen(log.c_str(), "a", stderr);
      (void)in;
      (void)out;
      (void)err;
      execl("/bin/bash", "bash", "-c", command.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid_ > 0) setpgid(pid_, pid_);
  }
  ~BashJob() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGTERM);
    if (!Eventually([&] { return waitpid(pid_, nullptr, WNOHANG) == pid_; },
                    30)) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string log() const {
    auto r = ReadFile(log_);
    return r.ok() ? *r : "";
  }
  bool exited() { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == pid_; }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

TEST(MezdJoinCommandTest, PrintedCommandRunsVerbatimAndTheNodeRecords) {
  ASSERT_TRUE(HaveProgram("ssh")) << "ssh is missing: run scripts/deps";
  TempDir dir;
  Mezrecd cluster(dir.File("cluster"));
  ASSERT_TRUE(cluster.Start()) << cluster.log();
  uint16_t node_port = FreeLoopbackPort();
  ASSERT_NE(node_port, 0);
  std::string node_addr = "127.0.0.1:" + std::to_string(node_port);
  // A data dir bash would split and expand if it were pasted unquoted.
  std::string data_dir = dir.File("node data 'one' $HOME");

  auto add = Mezctl(cluster, "nodes add web-01 --addr " + node_addr +
                                 " --data-dir " + ShellQuote(data_dir));
  ASSERT_EQ(add.exit_code, 0) << add.out;
  const std::string intro = "Start the agent on that node with:\n  ";
  size_t at = add.out.find(intro);
  ASSERT_NE(at, std::string::npos) << add.out;
  at += intro.size();
  std::string command = add.out.substr(at, add.out.find('\n', at) - at);
  EXPECT_EQ(command.rfind("mezd ", 0), 0u) << command;
  EXPECT_THAT(command, Not(HasSubstr("<"))) << "a placeholder";
  EXPECT_THAT(command, Not(HasSubstr("--ca-file"))) << "no file to copy";
  EXPECT_THAT(command, HasSubstr("--data-dir"));

  BashJob mezd(command, dir.File("mezd.log"),
               DirName(MEZD_PATH) + ":" + std::getenv("PATH"));
  ASSERT_TRUE(Eventually([&] {
    return mezd.log().find("mezd: serving SSH on " + node_addr) !=
               std::string::npos ||
           mezd.exited();
  })) << mezd.log();
  ASSERT_THAT(mezd.log(), HasSubstr("mezd: serving SSH on " + node_addr))
      << command;
  // Its state went to exactly the directory named, not /var/lib/mezd.
  struct stat st;
  ASSERT_EQ(stat((data_dir + "/node_credential").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(ReadFile(data_dir + "/cluster_ca.pem").ok());

  auto ls = Mezctl(cluster, "nodes ls --format=json");
  json nodes = json::parse(ls.out, nullptr, false);
  ASSERT_TRUE(nodes.is_array() && nodes.size() == 1) << ls.out;
  EXPECT_EQ(nodes[0]["addr"], node_addr);
  EXPECT_NE(nodes[0]["last_seen"], "") << ls.out;
  auto joins = Mezctl(cluster, "audit ls --type=node.join --format=json");
  EXPECT_THAT(joins.out, HasSubstr("web-01"));

  // A real session to the node, recorded and played back.
  TestUser alice;
  std::string error;
  ASSERT_TRUE(AddUserAndLogin(cluster, dir.path(), "alice", CurrentLogin(),
                              &alice, &error))
      << error;
  auto ssh =
      testing::Run("HOME=" + ShellQuote(alice.home) +
                   " MEZ_IDENTITY= " + ShellQuote(MSH_PATH) +
                   " ssh web-01 'echo joined-by-the-printed-command' 2>&1");
  ASSERT_EQ(ssh.exit_code, 0) << ssh.out << "\n" << mezd.log();
  EXPECT_THAT(ssh.out, HasSubstr("joined-by-the-printed-command"));
  std::string msh_as_alice = "HOME=" + ShellQuote(alice.home) +
                             " MEZ_IDENTITY= " + ShellQuote(MSH_PATH);
  json sessions;
  ASSERT_TRUE(Eventually([&] {
    auto r = testing::Run(msh_as_alice + " sessions ls --format=json 2>&1");
    sessions = json::parse(r.out, nullptr, false);
    return sessions.is_array() && sessions.size() == 1 &&
           sessions[0]["status"] == "complete";
  })) << sessions.dump();
  EXPECT_EQ(sessions[0]["node"], "web-01") << sessions.dump();
  auto play =
      testing::Run(msh_as_alice + " play --format=plain " +
                   ShellQuote(sessions[0]["id"].get<std::string>()) + " 2>&1");
  EXPECT_EQ(play.exit_code, 0) << play.out;
  EXPECT_THAT(play.out, HasSubstr("joined-by-the-printed-command"));
}

}  // namespace
}  // namespace mez::testing
