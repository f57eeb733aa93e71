// mezd never sends its credential in plaintext by accident: the real mezd
// binary, pointed at a plaintext listener, must refuse to start without
// --ca-file (or an explicit --insecure to loopback) before connecting.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "libmez/auth/token.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

using ::testing::HasSubstr;

// A TCP listener on 127.0.0.1 that counts the bytes anyone sends it.
class CountingListener {
 public:
  // `hang_up`: close a connection once something arrived on it.
  explicit CountingListener(bool hang_up = false) : hang_up_(hang_up) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~CountingListener() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }
  size_t bytes() const { return bytes_.load(); }
  // The first 1 MiB received, all connections together.
  std::string received() const {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }

 private:
  void Loop() {
    std::vector<int> peers;
    while (!stop_) {
      std::vector<pollfd> fds{{fd_, POLLIN, 0}};
      for (int p : peers) fds.push_back({p, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          ++connections_;
          peers.push_back(c);
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        char buf[4096];
        ssize_t n = read(fds[i].fd, buf, sizeof(buf));
        if (n > 0) {
          bytes_ += static_cast<size_t>(n);
          std::lock_guard<std::mutex> lock(mu_);
          if (received_.size() < (1u << 20)) received_.append(buf, n);
        }
        if (n <= 0 || hang_up_) {
          // The peer hung up: answer with a close, as a server would.
          close(fds[i].fd);
          peers.erase(std::find(peers.begin(), peers.end(), fds[i].fd));
          break;
        }
      }
    }
    for (int p : peers) close(p);
  }

  const bool hang_up_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<size_t> bytes_{0};
  mutable std::mutex mu_;
  std::string received_;
  std::thread thread_;
};

// A token of the given role as mezd reads it before it can ask mezrecd
// (the signature is mezrecd's business, so any will do here).
std::string FakeToken(const std::string& role, const std::string& cah = "") {
  nlohmann::json claims = {{"iss", "mezite"},
                           {"sub", "web-01"},
                           {"role", role},
                           {"iat", 1'700'000'000},
                           {"exp", 4'000'000'000}};
  if (!cah.empty()) claims["cah"] = cah;
  return auth::Base64UrlEncode(R"({"alg":"EdDSA"})") + "." +
         auth::Base64UrlEncode(claims.dump()) + "." +
         auth::Base64UrlEncode(std::string(64, 's'));
}

std::string Mezd(const std::string& args) {
  return "timeout 30 " + ShellQuote(MEZD_PATH) + " " + args + " 2>&1";
}

TEST(MezdTransportTest, RefusesPlaintextWithoutCaFileAndSendsNothing) {
  TempDir dir;
  CountingListener fake;
  ASSERT_NE(fake.port(), 0);
  CommandResult r = testing::Run(
      Mezd("--auth 127.0.0.1:" + std::to_string(fake.port()) + " --token " +
           FakeToken("node") + " --listen 127.0.0.1:0 --data-dir " +
           ShellQuote(dir.File("mezd"))));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--ca-file"));
  EXPECT_EQ(fake.connections(), 0) << r.out;
  EXPECT_EQ(fake.bytes(), 0u) << r.out;
}

TEST(MezdTransportTest, InsecureIsRefusedOffLoopback) {
  TempDir dir;
  // .invalid never resolves (RFC 2606): nothing leaves the machine even if
  // the check were missing.
  CommandResult r = testing::Run(
      Mezd("--insecure --auth auth.invalid:3025 --token " + FakeToken("node") +
           " --listen 127.0.0.1:0 --data-dir " + ShellQuote(dir.File("mezd"))));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("loopback"));
}

// A join token pins the cluster's TLS CA: mezd reads the CA from the TLS
// handshake of whatever answers at --auth, and goes no further unless it
// matches. A plaintext listener gets a TLS ClientHello and never the token.
TEST(MezdTransportTest, JoinTokenPinFetchesTheCaWithoutSendingTheToken) {
  TempDir dir;
  CountingListener fake(/*hang_up=*/true);
  ASSERT_NE(fake.port(), 0);
  std::string token = FakeToken("join", std::string(64, 'a'));
  CommandResult r = testing::Run(Mezd(
      "--auth 127.0.0.1:" + std::to_string(fake.port()) + " --token " + token +
      " --listen 127.0.0.1:0 --data-dir " + ShellQuote(dir.File("mezd"))));
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("TLS")) << r.out;
  EXPECT_EQ(fake.connections(), 1) << r.out;
  std::string got = fake.received();
  ASSERT_GT(got.size(), 5u);
  EXPECT_EQ(got[0], '\x16') << "a TLS handshake record";
  EXPECT_EQ(got.find(token.substr(0, token.rfind('.'))), std::string::npos);
  EXPECT_EQ(got.find("Bearer"), std::string::npos);
  EXPECT_EQ(access((dir.File("mezd") + "/cluster_ca.pem").c_str(), F_OK), -1);

  // Plaintext is refused outright for a token that pins a CA.
  r = testing::Run(
      Mezd("--insecure --auth 127.0.0.1:" + std::to_string(fake.port()) +
           " --token " + token + " --listen 127.0.0.1:0 --data-dir " +
           ShellQuote(dir.File("mezd"))));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("drop --insecure"));
  EXPECT_EQ(fake.connections(), 1) << r.out;
}

TEST(MezdTransportTest, TokenMustBeAMeziteJoinOrNodeToken) {
  TempDir dir;
  for (const std::string& bad :
       {std::string("not-a-token"), FakeToken("user"), FakeToken("admin")}) {
    CommandResult r = testing::Run(Mezd(
        "--insecure --auth 127.0.0.1:1 --token " + ShellQuote(bad) +
        " --listen 127.0.0.1:0 --data-dir " + ShellQuote(dir.File("mezd"))));
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr("join token")) << r.out;
  }
  // No token and nothing stored: say where the token comes from.
  CommandResult r = testing::Run(
      Mezd("--insecure --auth 127.0.0.1:1 --listen 127.0.0.1:0 --data-dir " +
           ShellQuote(dir.File("mezd"))));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("mezctl nodes add")) << r.out;
}

// mezd trusts what its data dir holds (the CA it pinned, its credential):
// a data dir others can write is refused before anything is read from it.
TEST(MezdTransportTest, DataDirWritableByOthersIsRefused) {
  TempDir dir;
  std::string data = dir.File("mezd");
  ASSERT_EQ(mkdir(data.c_str(), 0700), 0);
  ASSERT_EQ(chmod(data.c_str(), 0777), 0);
  std::string cmd = "--insecure --auth 127.0.0.1:1 --token " +
                    FakeToken("node") + " --listen 127.0.0.1:0 --data-dir " +
                    ShellQuote(data);
  CommandResult r = testing::Run(Mezd(cmd));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("chmod 700")) << r.out;
  // A symlink in its place is refused too.
  ASSERT_EQ(symlink(data.c_str(), dir.File("link").c_str()), 0);
  r = testing::Run(
      Mezd("--insecure --auth 127.0.0.1:1 --token " + FakeToken("node") +
           " --listen 127.0.0.1:0 --data-dir " + ShellQuote(dir.File("link"))));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("not a directory")) << r.out;
}

TEST(MezdTransportTest, InsecureAndCaFileAreExclusive) {
  TempDir dir;
  WriteFileOrDie(dir.File("ca.pem"), "not a certificate\n");
  CommandResult r = testing::Run(
      Mezd("--insecure --ca-file " + ShellQuote(dir.File("ca.pem")) +
           " --auth 127.0.0.1:1 --token x --listen 127.0.0.1:0 --data-dir " +
           ShellQuote(dir.File("mezd"))));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("excludes"));
}

}  // namespace
}  // namespace mez::testing
