// `msh ssh -L` end to end on loopback with real processes only: mezrecd,
// the mezd binary, msh and the stock OpenSSH client. A forwarded TCP
// connection carries 1 MB each way intact, and mezrecd's pcap of it gives
// back exactly those bytes in tshark's "Follow TCP stream". msh pins the
// node's host key: the key mezd reported is accepted, any other refused,
// and a node that never reported one is not contacted.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "libmez/util/encoding.h"
#include "libmez/util/file.h"
#include "tests/forward_util.h"
#include "tests/mezd_harness.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

#ifndef MSH_PATH
#error "MSH_PATH must name the msh binary"
#endif

namespace mez::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = std::chrono::seconds(30);
constexpr size_t kBytes = 1 << 20;

CommandResult Sh(const std::string& command) { return Run(command); }

// Polls `pred` every 50 ms until it holds or kDeadline passes.
bool PollUntil(const std::function<bool()>& pred) {
  auto deadline = Clock::now() + kDeadline;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// A file's contents, or "" when it cannot be read.
std::string Slurp(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : "";
}

class SshForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(HaveProgram("ssh")) << "ssh is missing: run scripts/deps";
    ASSERT_TRUE(HaveProgram("ssh-keygen"))
        << "ssh-keygen is missing: run scripts/deps";
    ASSERT_TRUE(HaveProgram("tshark")) << "tshark is missing: run scripts/deps";
    cluster_ = std::make_unique<Mezrecd>(dir_.File("data"));
    ASSERT_TRUE(cluster_->Start()) << cluster_->log();
    std::string error;
    ASSERT_TRUE(AddUserAndLogin(*cluster_, dir_.path(), "alice", CurrentLogin(),
                                &alice_, &error))
        << error;
    MezdOptions options;
    options.node_name = "node-1";
    mezd_ = StartRegisteredNode(cluster_.get(), dir_.path(), options, &error);
    ASSERT_NE(mezd_, nullptr) << error;
  }

  void TearDown() override {
    if (HasFailure() && mezd_ != nullptr) {
      std::cerr << "---- mezd log ----\n" << mezd_->log();
    }
    if (mezd_ != nullptr) {
      EXPECT_EQ(mezd_->Stop(), 0) << mezd_->log();
    }
  }

  std::string MshCommand(const std::string& args) {
    return "HOME=" + ShellQuote(alice_.home) +
           " MEZ_IDENTITY= " + ShellQuote(MSH_PATH) + " " + args;
  }
  // msh as alice, stdin from /dev/null, stderr merged.
  CommandResult Msh(const std::string& args) {
    return Sh(MshCommand(args) + " 2>&1");
  }
  // mezd's host public key line, from its private key.
  std::string MezdHostKey() {
    auto r = Sh("ssh-keygen -y -f " +
                ShellQuote(dir_.path() + "/mezd-node-1/host_key") + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    std::istringstream in(r.out);
    std::string type, blob;
    in >> type >> blob;
    return type + " " + blob;
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> cluster_;
  TestUser alice_;
  std::unique_ptr<Mezd> mezd_;
};

// 1 MB each way through `msh ssh -N -L`; the pcap mezrecd stores holds one
// TCP conversation whose followed streams are those bytes exactly.
TEST_F(SshForwardTest, ForwardedConnectionIsCarriedAndRecordedAsPcap) {
  const std::string up = RandomBytes(kBytes, 1);
  const std::string down = RandomBytes(kBytes, 2);
  Destination dest(down);
  ASSERT_NE(dest.port(), 0);
  uint16_t local = FreeLoopbackPort();
  ASSERT_NE(local, 0);
  std::string log = dir_.File("msh-forward.log");
  std::string spec =
      std::to_string(local) + ":127.0.0.1:" + std::to_string(dest.port());
  Background msh(MshCommand("ssh -N -L " + spec + " node-1"), log);
  ASSERT_TRUE(
      PollUntil([&] { return ListensOnLoopback(local) || !msh.running(); }));
  ASSERT_TRUE(msh.running()) << Slurp(log);

  int fd = ConnectLoopback(local);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  bool ok = false;
  std::string got = Exchange(fd, up, &ok);
  close(fd);
  EXPECT_TRUE(ok);
  EXPECT_EQ(got.size(), down.size());
  EXPECT_TRUE(got == down) << "the client did not get the server's bytes";
  EXPECT_TRUE(dest.Finish());
  EXPECT_EQ(dest.received().size(), up.size());
  EXPECT_TRUE(dest.received() == up) << "the server did not get the bytes";
  // Ending the SSH connection closes the connection's pcap.
  msh.Stop();

  json session;
  ASSERT_TRUE(PollUntil([&] {
    auto r = Msh("sessions ls --format=json");
    json arr = json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || !arr.is_array() || arr.size() != 1) return false;
    session = arr[0];
    return session.value("status", "") == "complete";
  })) << Msh("sessions ls --format=json").out;
  EXPECT_EQ(session.value("kind", ""), "tcpip");
  EXPECT_EQ(session.value("format", ""), "pcap");
  const std::string key = "alice/tcpip/" + session.value("connection_id", "") +
                          "_127.0.0.1_" + std::to_string(dest.port()) + ".pcap";
  EXPECT_EQ(session.value("storage_key", ""), key);
  const std::string path = cluster_->data_dir() + "/recordings/" + key;
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0) << path;

  Followed f = FollowStream0(path);
  EXPECT_EQ(f.to_node1.size(), up.size());
  EXPECT_EQ(f.to_node0.size(), down.size());
  EXPECT_TRUE(f.to_node1 == up) << "client-to-server bytes differ";
  EXPECT_TRUE(f.to_node0 == down) << "server-to-client bytes differ";
  EXPECT_EQ(TcpConversations(path), 1);
}

// The key mezd reported at join is the only one in msh's known_hosts, and
// the connection succeeds against it.
TEST_F(SshForwardTest, ReportedHostKeyIsPinnedAndAccepted) {
  // msh removes the file when ssh exits: the node (this machine) reads it
  // while the session runs.
  std::string files = alice_.home + "/.mez/keys/ssh-*/known_hosts";
  auto r = Msh("ssh node-1 " + ShellQuote("echo pinned-ok; stat -c %a " +
                                          files + "; cat " + files));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out,
            "pinned-ok\n600\n[127.0.0.1]:" + std::to_string(mezd_->port()) +
                " " + MezdHostKey() + "\n");
}

// A node whose pinned key is not the key served at its address: OpenSSH
// refuses before authenticating, so nothing runs there.
TEST_F(SshForwardTest, DifferentHostKeyAtTheAddressIsRefused) {
  std::string other = dir_.File("other_host_key");
  auto gen = Sh("ssh-keygen -q -t ed25519 -N '' -C x -f " + ShellQuote(other) +
                " 2>&1");
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  std::istringstream in(Slurp(other + ".pub"));
  std::string type, blob;
  in >> type >> blob;
  ASSERT_NE(type + " " + blob, MezdHostKey());
  auto add = Mezctl(
      *cluster_,
      "nodes add impostor --addr 127.0.0.1:" + std::to_string(mezd_->port()) +
          " --host-key " + ShellQuote(type + " " + blob));
  ASSERT_EQ(add.exit_code, 0) << add.out;

  std::string marker = dir_.File("ran");
  auto r = Msh("ssh impostor touch " + ShellQuote(marker));
  EXPECT_EQ(r.exit_code, 255) << r.out;
  EXPECT_NE(r.out.find("Host key verification failed"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("REMOTE HOST IDENTIFICATION HAS CHANGED"),
            std::string::npos)
      << r.out;
  struct stat st;
  EXPECT_NE(stat(marker.c_str(), &st), 0) << "the command ran";
  // The real node is still reachable with its own key.
  EXPECT_EQ(Msh("ssh node-1 true").exit_code, 0);
}

// A registered node whose mezd never joined has no key on record: msh says
// so and does not run ssh.
TEST_F(SshForwardTest, NodeWithoutHostKeyIsRefused) {
  std::string error;
  ASSERT_NE(RegisterNode(*cluster_, "silent",
                         "127.0.0.1:" + std::to_string(mezd_->port()), &error),
            "")
      << error;
  auto r = Msh("ssh silent true");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out,
            "msh: node silent has not reported its host key yet; is mezd "
            "running on it?\n");
}

// Malformed -L specs are usage errors, found before anything is contacted.
TEST_F(SshForwardTest, MalformedForwardSpecIsAUsageError) {
  for (const char* spec :
       {"8080", "8080:host", "0:h:80", "8080:h:65536", "8080::80", "a:b:c:d:e",
        "8080:::1:80", "[::1:8080:h:80", "/tmp/s:h:80"}) {
    auto r = Msh("ssh -L " + ShellQuote(spec) + " node-1 true");
    EXPECT_EQ(r.exit_code, 2) << spec << ": " << r.out;
    EXPECT_NE(r.out.find("-L '" + std::string(spec) + "'"), std::string::npos)
        << r.out;
  }
  auto r = Msh("ssh -N node-1 true");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("-N runs no command"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace mez::testing
