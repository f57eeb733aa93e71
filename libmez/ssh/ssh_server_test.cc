#include "libmez/ssh/ssh_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/auth/token.h"
#include "libmez/ssh/child_process.h"
#include "libmez/ssh/login_policy.h"
#include "libmez/util/file.h"
#include "tests/test_util.h"

namespace mez::ssh {
namespace {

using ::mez::testing::ShellQuote;
using ::mez::testing::TempDir;

// What one tap saw. A violation of the tap contract (bytes after a
// direction's end, anything after OnExit, two ends) sets `misuse`.
struct TapRecord {
  ChannelInfo info;
  std::string in, out;
  bool in_ended = false;
  bool out_ended = false;
  std::vector<int> exits;
  bool destroyed = false;
  std::string misuse;
};

struct TapLog {
  std::mutex mu;
  std::vector<ChannelInfo> starts;
  std::string in, out, err;  // all taps together
  std::vector<int> exits;
  std::vector<TapRecord> taps;  // one per tap, in creation order
};

class CollectingTap : public ChannelTap {
 public:
  CollectingTap(TapLog* log, size_t index) : log_(log), index_(index) {}
  ~CollectingTap() override {
    std::lock_guard<std::mutex> lock(log_->mu);
    log_->taps[index_].destroyed = true;
  }
  void OnData(Direction direction, std::string_view bytes, int64_t) override {
    std::lock_guard<std::mutex> lock(log_->mu);
    TapRecord& r = log_->taps[index_];
    if (!r.exits.empty()) r.misuse = "data after OnExit";
    (direction == Direction::kIn    ? log_->in
     : direction == Direction::kOut ? log_->out
                                    : log_->err)
        .append(bytes);
    if (direction == Direction::kErr) return;
    bool& ended = direction == Direction::kIn ? r.in_ended : r.out_ended;
    if (ended) r.misuse = "OnData after the end of that direction";
    if (bytes.empty()) {
      ended = true;
    } else {
      (direction == Direction::kIn ? r.in : r.out).append(bytes);
    }
  }
  void OnResize(int, int, int64_t) override {}
  void OnExit(int exit_status, int64_t) override {
    std::lock_guard<std::mutex> lock(log_->mu);
    log_->exits.push_back(exit_status);
    TapRecord& r = log_->taps[index_];
    if (!r.exits.empty()) r.misuse = "two OnExit calls";
    r.exits.push_back(exit_status);
  }

 private:
  TapLog* log_;
  size_t index_;
};

// Polls `done` every 10 ms until it holds or `seconds` pass.
bool WaitFor(const std::function<bool()>& done, int seconds = 30) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

// A TCP socket on 127.0.0.1 (or ::1) with a kernel-chosen port: listening,
// or (listen_too = false) bound only, so that connecting to it is refused.
int BindLoopback(bool listen_too, uint16_t* port, bool ipv6 = false) {
  int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage addr = {};
  socklen_t len = 0;
  if (ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*a);
  }
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      (listen_too && listen(fd, 16) != 0)) {
    if (fd >= 0) close(fd);
    return -1;
  }
  len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return fd;
}

// True when something listens on 127.0.0.1:port (from /proc/net/tcp, so
// that checking does not open a forwarded channel).
bool Listening(uint16_t port) {
  std::ifstream f("/proc/net/tcp");
  char want[32];
  snprintf(want, sizeof(want), "0100007F:%04X", port);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (local == want && state == "0A") return true;
  }
  return false;
}

// Sends `out` (then half-closes) while reading into *in until EOF, on one
// connected socket; gives up after 60 s. True when both completed.
// *progress, when given, follows the count of bytes sent.
bool Exchange(int fd, const std::string& out, std::string* in,
              std::atomic<size_t>* progress = nullptr) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  size_t sent = 0;
  bool out_done = false, in_done = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  char buf[65536];
  while (!(out_done && in_done)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (!out_done && sent == out.size()) {
      shutdown(fd, SHUT_WR);
      out_done = true;
    }
    pollfd p = {
        fd,
        static_cast<short>((in_done ? 0 : POLLIN) | (out_done ? 0 : POLLOUT)),
        0};
    if (poll(&p, 1, 100) <= 0) continue;
    if (!out_done && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      if (progress != nullptr) progress->store(sent);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    }
    if (!in_done && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n > 0) in->append(buf, static_cast<size_t>(n));
      if (n == 0) in_done = true;
      if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    }
  }
  return true;
}

// A destination for forwarded connections: accepts `count` connections,
// and on each (after `before`, when given) sends `reply` and reads until
// the peer's EOF, concurrently. `rcvbuf` > 0 shrinks its receive buffers.
class DestinationServer {
 public:
  DestinationServer(int count, std::string reply, int rcvbuf = 0,
                    std::function<void()> before = nullptr, bool ipv6 = false)
      : reply_(std::move(reply)),
        rcvbuf_(rcvbuf),
        before_(std::move(before)),
        received_(static_cast<size_t>(count)) {
    fd_ = BindLoopback(false, &port_, ipv6);
    if (fd_ >= 0 && rcvbuf > 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    if (fd_ >= 0 && listen(fd_, 16) != 0) {
      close(fd_);
      fd_ = -1;
      port_ = 0;
    }
    thread_ = std::thread([this, count] {
      std::vector<std::thread> handlers;
      auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(60);
      for (int i = 0; i < count; ++i) {
        int conn = -1;
        while (conn < 0 && std::chrono::steady_clock::now() < deadline) {
          pollfd p = {fd_, POLLIN, 0};
          if (poll(&p, 1, 100) > 0) conn = accept4(fd_, nullptr, nullptr, 0);
        }
        if (conn < 0) break;
        handlers.emplace_back([this, conn, i] {
          if (before_) before_();
          if (rcvbuf_ > 0) {  // Read at full speed from now on.
            int big = 1 << 20;
            setsockopt(conn, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
          }
          std::string in;
          bool ok = Exchange(conn, reply_, &in);
          close(conn);
          std::lock_guard<std::mutex> lock(mu_);
          received_[static_cast<size_t>(i)] = ok ? in : "(failed)";
          ++finished_;
        });
      }
      for (std::thread& t : handlers) t.join();
    });
  }
  ~DestinationServer() {
    thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }
  int finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }
  std::vector<std::string> received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }

 private:
  std::string reply_;
  int rcvbuf_ = 0;
  std::function<void()> before_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<std::string> received_;
  int finished_ = 0;
  std::thread thread_;
};

// Connects to 127.0.0.1:port; -1 on failure.
int ConnectLoopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A free loopback port for ssh -L (bound, read, released).
uint16_t FreePort() {
  uint16_t port = 0;
  int fd = BindLoopback(true, &port);
  if (fd >= 0) close(fd);
  return port;
}

// Runs `command` on a thread; the destructor creates `flag` (which the
// remote command waits for, so that ssh ends by itself) and joins.
class BackgroundCommand {
 public:
  BackgroundCommand(std::string command, std::string flag)
      : flag_(std::move(flag)), thread_([this, c = std::move(command)] {
          result_ = mez::testing::Run(c);
        }) {}
  ~BackgroundCommand() { Finish(); }
  const mez::testing::CommandResult& Finish() {
    if (thread_.joinable()) {
      mez::testing::WriteFileOrDie(flag_, "");
      thread_.join();
    }
    return result_;
  }

 private:
  std::string flag_;
  mez::testing::CommandResult result_;
  std::thread thread_;
};

// A remote command that ends once `flag` exists.
std::string WaitForFile(const std::string& flag) {
  return mez::testing::ShellQuote("while [ ! -e " +
                                  mez::testing::ShellQuote(flag) +
                                  " ]; do sleep 0.05; done; echo session-done");
}

// Reads until the peer closes (EOF or reset); what arrived, or "(timeout)".
std::string ReadUntilClosed(int fd) {
  std::string in;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      in.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      return in;
    }
  }
  return "(timeout)";
}

bool IsLowerHex32(const std::string& s) {
  return s.size() == 32 &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string CurrentUser() {
  struct passwd* pw = getpwuid(geteuid());
  return pw != nullptr ? pw->pw_name : "root";
}

class SshServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mez::testing::HaveProgram("ssh"))
        << "ssh is missing: run scripts/deps";
    ca_pem_ = auth::GenerateEd25519Pem().value();
    StartServer(nullptr);
  }

  // (Re)starts server_ with the fixture's hooks; `tweak` may change the
  // options first.
  void StartServer(const std::function<void(SshServerOptions&)>& tweak) {
    if (server_) server_->Stop();
    server_.reset();
    SshServerOptions options;
    options.trusted_user_ca_blob =
        auth::Ed25519PublicBlobFromPem(ca_pem_).value();
    options.on_refusal = [this](const AuthRefusal& r) {
      std::lock_guard<std::mutex> lock(mu_);
      refusals_.push_back(r);
    };
    options.tap_factory = [this](const ChannelInfo& info) {
      std::lock_guard<std::mutex> lock(tap_.mu);
      tap_.starts.push_back(info);
      tap_.taps.emplace_back();
      tap_.taps.back().info = info;
      return std::make_unique<CollectingTap>(&tap_, tap_.taps.size() - 1);
    };
    options.on_connection_end = [this](const std::string& id) {
      std::lock_guard<std::mutex> lock(mu_);
      {
        // The contract: every tap of the connection is gone by now.
        std::lock_guard<std::mutex> tap_lock(tap_.mu);
        for (const TapRecord& r : tap_.taps) {
          if (r.info.connection_id == id && !r.destroyed) {
            ended_with_live_tap_ = true;
          }
        }
      }
      connection_ends_.push_back(id);
    };
    if (tweak) tweak(options);
    auto server = SshServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    ASSERT_NE(server_->port(), 0);
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  // Writes a key (and, with a CA, its certificate) named `name`; returns
  // the private key's path.
  std::string MakeKey(const std::string& name, const std::string& ca_pem,
                      std::vector<std::string> principals, int64_t valid_after,
                      int64_t valid_before,
                      std::map<std::string, std::string> extensions = {
                          {"permit-pty", ""}}) {
    auto key = auth::GenerateSshUserKey().value();
    std::string path = dir_.File(name);
    EXPECT_TRUE(AtomicWriteFile(path, key.first, 0600).ok());
    if (!ca_pem.empty()) {
      auth::SshCertRequest request;
      request.public_key_blob = key.second;
      request.key_id = "alice";
      request.principals = std::move(principals);
      request.valid_after = valid_after;
      request.valid_before = valid_before;
      request.extensions = std::move(extensions);
      std::string cert = auth::SignSshCert(ca_pem, request).value();
      EXPECT_TRUE(AtomicWriteFile(path + "-cert.pub",
                                  auth::SshCertLine(cert, name) + "\n", 0644)
                      .ok());
    }
    return path;
  }

  std::string GoodKey() {
    int64_t now = time(nullptr);
    return MakeKey("good", ca_pem_, {CurrentUser()}, now - 60, now + 3600);
  }

  std::string ForwardingKey() {
    int64_t now = time(nullptr);
    return MakeKey("forwarding", ca_pem_, {CurrentUser()}, now - 60, now + 3600,
                   {{"permit-pty", ""}, {"permit-port-forwarding", ""}});
  }

  // The ssh command line; its stderr goes to err.txt.
  std::string Ssh(const std::string& key, const std::string& args) {
    return Ssh(key, args, CurrentUser());
  }
  std::string Ssh(const std::string& key, const std::string& args,
                  const std::string& login) {
    std::string cmd = "timeout 30 ssh -F /dev/null -i " + ShellQuote(key);
    if (access((key + "-cert.pub").c_str(), R_OK) == 0) {
      cmd += " -o CertificateFile=" + ShellQuote(key + "-cert.pub");
    }
    return cmd +
           " -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes"
           " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
           " -o LogLevel=" +
           log_level_ + " -o ConnectTimeout=10 -p " +
           std::to_string(server_->port()) + " " + login + "@127.0.0.1 " +
           args + " 2>" + ShellQuote(dir_.File("err.txt"));
  }

  std::string Stderr() { return ReadFile(dir_.File("err.txt")).value(); }

  std::vector<std::string> ConnectionEnds() {
    std::lock_guard<std::mutex> lock(mu_);
    return connection_ends_;
  }

  // Session taps first, then forwarded ones, each in creation order: the
  // client may open a forward before or after its session channel.
  std::vector<TapRecord> Taps() {
    std::lock_guard<std::mutex> lock(tap_.mu);
    std::vector<TapRecord> taps = tap_.taps;
    std::stable_partition(taps.begin(), taps.end(), [](const TapRecord& t) {
      return t.info.kind != ChannelKind::kTcpip;
    });
    return taps;
  }

  std::vector<AuthRefusal> Refusals() {
    std::lock_guard<std::mutex> lock(mu_);
    return refusals_;
  }

  void ExpectRefused(const std::string& key, const std::string& reason_part) {
    auto result = mez::testing::Run(Ssh(key, "true"));
    EXPECT_EQ(result.exit_code, 255) << Stderr();
    std::vector<AuthRefusal> refusals = Refusals();
    ASSERT_FALSE(refusals.empty());
    bool found = false;
    for (const AuthRefusal& r : refusals) {
      EXPECT_FALSE(r.reason.empty());
      EXPECT_EQ(r.login, CurrentUser());
      if (r.reason.find(reason_part) != std::string::npos) found = true;
    }
    EXPECT_TRUE(found) << "no refusal mentions \"" << reason_part
                       << "\"; first: " << refusals[0].reason;
    {
      std::lock_guard<std::mutex> lock(tap_.mu);
      EXPECT_TRUE(tap_.starts.empty());
    }
    server_->Stop();
    EXPECT_TRUE(ConnectionEnds().empty());  // Only authenticated ones end.
  }

  TempDir dir_;
  std::string ca_pem_;
  std::unique_ptr<SshServer> server_;
  std::mutex mu_;
  std::vector<AuthRefusal> refusals_;
  std::vector<std::string> connection_ends_;
  bool ended_with_live_tap_ = false;
  std::string log_level_ = "ERROR";
  TapLog tap_;
};

TEST_F(SshServerTest, ExecSeparatesStreamsAndPassesExitStatus) {
  std::string key = GoodKey();
  auto result =
      mez::testing::Run(Ssh(key, ShellQuote("echo out; echo err >&2; exit 3")));
  EXPECT_EQ(result.exit_code, 3) << Stderr();
  EXPECT_EQ(result.out, "out\n");
  EXPECT_EQ(Stderr(), "err\n");
  EXPECT_TRUE(Refusals().empty());
  std::lock_guard<std::mutex> lock(tap_.mu);
  ASSERT_EQ(tap_.starts.size(), 1u);
  EXPECT_EQ(tap_.starts[0].kind, ChannelKind::kExec);
  EXPECT_EQ(tap_.starts[0].command, "echo out; echo err >&2; exit 3");
  EXPECT_EQ(tap_.starts[0].key_id, "alice");
  EXPECT_FALSE(tap_.starts[0].pty);
  EXPECT_EQ(tap_.out, "out\n");
  EXPECT_EQ(tap_.err, "err\n");
  EXPECT_EQ(tap_.exits, std::vector<int>{3});
}

TEST_F(SshServerTest, ExecPassesStdinThrough) {
  std::string key = GoodKey();
  auto result = mez::testing::Run("printf 'a\\nb\\n' | " + Ssh(key, "wc -l"));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out.find_first_not_of(' '), result.out.find('2'));
  std::lock_guard<std::mutex> lock(tap_.mu);
  EXPECT_EQ(tap_.in, "a\nb\n");
}

TEST_F(SshServerTest, ExecStdinSurvivesASlowReader) {
  // The program reads nothing for a while: the client is held back, and
  // every byte still arrives, in order, once it reads.
  std::string key = GoodKey();
  std::string data = dir_.File("data");
  mez::testing::WriteFileOrDie(data, RandomBytes(16 << 20, 5));
  auto want = mez::testing::Run("sha256sum < " + ShellQuote(data));
  auto result = mez::testing::Run(Ssh(key, ShellQuote("sleep 1; sha256sum")) +
                                  " < " + ShellQuote(data));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out, want.out);
  std::lock_guard<std::mutex> lock(tap_.mu);
  EXPECT_EQ(tap_.in.size(), 16u << 20);
}

TEST_F(SshServerTest, ShellWithPty) {
  std::string key = GoodKey();
  auto result = mez::testing::Run("printf 'echo mez-$((40+2))\\nexit 5\\n' | " +
                                  Ssh(key, "-tt"));
  EXPECT_EQ(result.exit_code, 5) << Stderr();
  EXPECT_NE(result.out.find("mez-42"), std::string::npos) << result.out;
  std::lock_guard<std::mutex> lock(tap_.mu);
  ASSERT_EQ(tap_.starts.size(), 1u);
  EXPECT_EQ(tap_.starts[0].kind, ChannelKind::kShell);
  EXPECT_TRUE(tap_.starts[0].pty);
  EXPECT_NE(tap_.in.find("echo mez-"), std::string::npos);
  EXPECT_NE(tap_.out.find("mez-42"), std::string::npos) << tap_.out;
  EXPECT_EQ(tap_.exits, std::vector<int>{5});
}

TEST_F(SshServerTest, RefusesCertWithoutThePrincipal) {
  int64_t now = time(nullptr);
  ExpectRefused(
      MakeKey("other", ca_pem_, {"somebody-else"}, now - 60, now + 3600),
      "somebody-else");
}

TEST_F(SshServerTest, RefusesExpiredCert) {
  int64_t now = time(nullptr);
  ExpectRefused(
      MakeKey("expired", ca_pem_, {CurrentUser()}, now - 7200, now - 3600),
      "expired");
}

TEST_F(SshServerTest, RefusesCertFromAnotherCa) {
  int64_t now = time(nullptr);
  std::string other_ca = auth::GenerateEd25519Pem().value();
  ExpectRefused(
      MakeKey("foreign", other_ca, {CurrentUser()}, now - 60, now + 3600),
      "untrusted CA");
}

TEST_F(SshServerTest, RefusesPlainKey) {
  ExpectRefused(MakeKey("plain", "", {}, 0, 0), "plain");
}

// check_certificate has the last word on a certificate that passed the
// server's own checks: it sees the login and the certificate, and its
// refusal goes to on_refusal with its reason, before any channel. A
// certificate the server refuses by itself never reaches it.
TEST_F(SshServerTest, CertificateCheckCanRefuseAnAcceptableCertificate) {
  std::atomic<bool> refuse{false};
  std::mutex seen_mu;
  std::vector<std::pair<std::string, std::string>> seen;  // login, key id
  StartServer([&](SshServerOptions& o) {
    o.check_certificate = [&](const std::string& login,
                              const auth::SshCert& cert) -> Status {
      {
        std::lock_guard<std::mutex> lock(seen_mu);
        seen.emplace_back(login, cert.key_id);
      }
      if (refuse.load()) {
        return PermissionDenied("user " + cert.key_id + " was removed");
      }
      return Status::Ok();
    };
  });
  std::string key = GoodKey();
  auto result = mez::testing::Run(Ssh(key, "echo let-in"));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out, "let-in\n");
  EXPECT_TRUE(Refusals().empty());
  {
    std::lock_guard<std::mutex> lock(seen_mu);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen[0].first, CurrentUser());
    EXPECT_EQ(seen[0].second, "alice");
    seen.clear();
  }
  // Expired: refused by the server itself, the hook is not asked.
  int64_t now = time(nullptr);
  auto expired = mez::testing::Run(
      Ssh(MakeKey("expired", ca_pem_, {CurrentUser()}, now - 7200, now - 3600),
          "true"));
  EXPECT_EQ(expired.exit_code, 255) << Stderr();
  {
    std::lock_guard<std::mutex> lock(seen_mu);
    EXPECT_TRUE(seen.empty());
  }
  // Forget the first connection (once it has ended) for ExpectRefused.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ConnectionEnds().empty() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(ConnectionEnds().size(), 1u);
  {
    std::lock_guard<std::mutex> lock(mu_);
    refusals_.clear();
    connection_ends_.clear();
  }
  {
    std::lock_guard<std::mutex> lock(tap_.mu);
    tap_.starts.clear();
  }
  refuse = true;
  ExpectRefused(key, "user alice was removed");
  // (ssh also offers the plain key after the certificate: refused apart.)
  for (const AuthRefusal& r : Refusals()) {
    if (r.reason.find("was removed") != std::string::npos) {
      EXPECT_EQ(r.key_id, "alice");
    }
  }
}

TEST_F(SshServerTest, StopHangsUpRunningSessions) {
  std::string key = GoodKey();
  mez::testing::CommandResult result;
  std::thread client([&] { result = mez::testing::Run(Ssh(key, "sleep 60")); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(tap_.mu);
      if (!tap_.starts.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto stop_start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_start,
            std::chrono::seconds(5));
  client.join();
  EXPECT_NE(result.exit_code, 0);
  std::lock_guard<std::mutex> lock(tap_.mu);
  EXPECT_EQ(tap_.starts.size(), 1u);
}

TEST_F(SshServerTest, ForwardsTcpBothWaysBesideASession) {
  // Two forwarded connections at once, each 1 MB each way, while a session
  // channel of the same connection stays open until they are done.
  const std::string reply = RandomBytes(1 << 20, 1);
  const std::string request[2] = {RandomBytes(1 << 20, 2),
                                  RandomBytes(1 << 20, 3)};
  DestinationServer destination(2, reply);
  ASSERT_NE(destination.port(), 0);
  uint16_t local_port = FreePort();
  ASSERT_NE(local_port, 0);
  std::string forward =
      "-o ExitOnForwardFailure=yes -L 127.0.0.1:" + std::to_string(local_port) +
      ":127.0.0.1:" + std::to_string(destination.port());
  std::string flag = dir_.File("forwards-done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  ASSERT_TRUE(WaitFor([&] { return Listening(local_port); }))
      << "ssh -L never listened";
  std::string got[2];
  bool ok[2] = {false, false};
  std::thread second([&] {
    int fd = ConnectLoopback(local_port);
    if (fd >= 0) ok[1] = Exchange(fd, request[1], &got[1]);
    if (fd >= 0) close(fd);
  });
  int fd = ConnectLoopback(local_port);
  if (fd >= 0) ok[0] = Exchange(fd, request[0], &got[0]);
  if (fd >= 0) close(fd);
  second.join();
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(ok[i]) << "connection " << i;
    EXPECT_TRUE(got[i] == reply)
        << "connection " << i << " got " << got[i].size() << " bytes";
  }
  ASSERT_TRUE(WaitFor([&] { return destination.finished() == 2; }));
  std::vector<std::string> received = destination.received();
  for (const std::string& r : received) {
    EXPECT_TRUE(r == request[0] || r == request[1])
        << "the destination got " << r.size() << " bytes";
  }
  EXPECT_NE(received[0], received[1]);
  // Both forwarded channels report their exit while the session is open.
  ASSERT_TRUE(WaitFor([&] {
    int exits = 0;
    for (const TapRecord& r : Taps()) {
      if (r.info.kind == ChannelKind::kTcpip) exits += !r.exits.empty();
    }
    return exits == 2;
  }));
  const mez::testing::CommandResult& result = client.Finish();
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out, "session-done\n");

  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 3u);
  std::string id = taps[0].info.connection_id;
  EXPECT_TRUE(IsLowerHex32(id)) << id;
  int tcpip = 0;
  for (const TapRecord& r : taps) {
    EXPECT_EQ(r.info.connection_id, id);
    EXPECT_EQ(r.misuse, "");
    if (r.info.kind != ChannelKind::kTcpip) {
      EXPECT_EQ(r.info.kind, ChannelKind::kExec);
      continue;
    }
    ++tcpip;
    EXPECT_EQ(r.info.dst_host, "127.0.0.1");
    EXPECT_EQ(r.info.dst_port, destination.port());
    EXPECT_EQ(r.info.src_host, "127.0.0.1");
    EXPECT_NE(r.info.src_port, 0);
    EXPECT_EQ(r.info.login, CurrentUser());
    EXPECT_EQ(r.info.key_id, "alice");
    EXPECT_EQ(r.info.cert_extensions.count("permit-port-forwarding"), 1u);
    EXPECT_TRUE(r.in_ended);
    EXPECT_TRUE(r.out_ended);
    EXPECT_EQ(r.exits, std::vector<int>{0});
    EXPECT_TRUE(r.destroyed);
    EXPECT_TRUE(r.out == reply) << r.out.size() << " bytes out";
    EXPECT_TRUE(r.in == request[0] || r.in == request[1])
        << r.in.size() << " bytes in";
  }
  EXPECT_EQ(tcpip, 2);
  EXPECT_NE(taps[1].in, taps[2].in);
  server_->Stop();
  EXPECT_EQ(ConnectionEnds(), std::vector<std::string>{id});
}

TEST_F(SshServerTest, ForwardingAppliesBackpressure) {
  // The destination does not read until the client is stuck: the server
  // must hold the client back rather than buffer everything, and lose
  // nothing when the destination catches up.
  const std::string request = RandomBytes(64 << 20, 4);
  std::atomic<size_t> sent{0};
  std::atomic<size_t> sent_when_stuck{0};
  auto wait_until_stuck = [&] {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    size_t last = sent.load();
    auto last_change = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() < deadline &&
           std::chrono::steady_clock::now() - last_change <
               std::chrono::milliseconds(500)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (sent.load() != last) {
        last = sent.load();
        last_change = std::chrono::steady_clock::now();
      }
    }
    sent_when_stuck.store(last);
  };
  DestinationServer destination(1, "", 4096, wait_until_stuck);
  ASSERT_NE(destination.port(), 0);
  uint16_t local_port = FreePort();
  std::string forward =
      "-o ExitOnForwardFailure=yes -L 127.0.0.1:" + std::to_string(local_port) +
      ":127.0.0.1:" + std::to_string(destination.port());
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  ASSERT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  ASSERT_GE(fd, 0);
  std::string got;
  EXPECT_TRUE(Exchange(fd, request, &got, &sent));
  close(fd);
  EXPECT_EQ(got, "");
  ASSERT_TRUE(WaitFor([&] { return destination.finished() == 1; }, 60));
  EXPECT_LT(sent_when_stuck.load(), request.size());
  EXPECT_TRUE(destination.received()[0] == request)
      << destination.received()[0].size() << " bytes arrived";
  ASSERT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 2 && !taps[1].exits.empty();
  }));
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  std::vector<TapRecord> taps = Taps();
  EXPECT_TRUE(taps[1].in == request) << taps[1].in.size() << " bytes in";
  EXPECT_TRUE(taps[1].in_ended);
  EXPECT_TRUE(taps[1].out_ended);
  EXPECT_EQ(taps[1].exits, std::vector<int>{0});
  EXPECT_EQ(taps[1].misuse, "");
}

TEST_F(SshServerTest, ForwardsToAHostName) {
  // "localhost" may resolve to ::1 first, where nothing listens: the
  // server moves on to 127.0.0.1. The tap keeps the name as sent.
  DestinationServer destination(1, "pong");
  uint16_t local_port = FreePort();
  std::string forward =
      "-o ExitOnForwardFailure=yes -L 127.0.0.1:" + std::to_string(local_port) +
      ":localhost:" + std::to_string(destination.port());
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  ASSERT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  ASSERT_GE(fd, 0);
  std::string got;
  EXPECT_TRUE(Exchange(fd, "ping", &got));
  close(fd);
  EXPECT_EQ(got, "pong");
  ASSERT_TRUE(WaitFor([&] { return destination.finished() == 1; }));
  EXPECT_EQ(destination.received()[0], "ping");
  ASSERT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 2 && !taps[1].exits.empty();
  }));
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  std::vector<TapRecord> taps = Taps();
  EXPECT_EQ(taps[1].info.dst_host, "localhost");
  EXPECT_EQ(taps[1].in, "ping");
  EXPECT_EQ(taps[1].out, "pong");
  EXPECT_EQ(taps[1].exits, std::vector<int>{0});
}

TEST_F(SshServerTest, ForwardsToIpv6) {
  DestinationServer destination(1, "pong6", 0, nullptr, /*ipv6=*/true);
  if (destination.port() == 0) GTEST_SKIP() << "no IPv6 loopback here";
  uint16_t local_port = FreePort();
  std::string forward =
      "-o ExitOnForwardFailure=yes -L 127.0.0.1:" + std::to_string(local_port) +
      ":[::1]:" + std::to_string(destination.port());
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  ASSERT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  ASSERT_GE(fd, 0);
  std::string got;
  EXPECT_TRUE(Exchange(fd, "ping6", &got));
  close(fd);
  EXPECT_EQ(got, "pong6");
  ASSERT_TRUE(WaitFor([&] { return destination.finished() == 1; }));
  EXPECT_EQ(destination.received()[0], "ping6");
  ASSERT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 2 && !taps[1].exits.empty();
  }));
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  std::vector<TapRecord> taps = Taps();
  EXPECT_EQ(taps[1].info.dst_host, "::1");
  EXPECT_EQ(taps[1].exits, std::vector<int>{0});
}

TEST_F(SshServerTest, StopEndsForwardedConnections) {
  // A forwarded connection still open when the server stops: its tap
  // sees both directions end and OnExit(0), then the connection's end.
  DestinationServer destination(1, "");
  uint16_t local_port = FreePort();
  std::string forward = "-o ExitOnForwardFailure=yes -N -L 127.0.0.1:" +
                        std::to_string(local_port) +
                        ":127.0.0.1:" + std::to_string(destination.port());
  BackgroundCommand client(Ssh(ForwardingKey(), forward), dir_.File("unused"));
  ASSERT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, "abc", 3, MSG_NOSIGNAL), 3);
  ASSERT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 1 && taps[0].in == "abc";
  }));
  server_->Stop();                     // ssh -N ends when the server hangs up.
  EXPECT_EQ(ReadUntilClosed(fd), "");  // Closes the destination too.
  close(fd);
  client.Finish();
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 1u);
  EXPECT_TRUE(taps[0].in_ended);
  EXPECT_TRUE(taps[0].out_ended);
  EXPECT_EQ(taps[0].exits, std::vector<int>{0});
  EXPECT_TRUE(taps[0].destroyed);
  EXPECT_EQ(taps[0].misuse, "");
  EXPECT_EQ(ConnectionEnds(),
            std::vector<std::string>{taps[0].info.connection_id});
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_FALSE(ended_with_live_tap_);
}

TEST_F(SshServerTest, ForwardToAClosedPortFailsTheOpen) {
  uint16_t closed_port = 0;
  int bound = BindLoopback(false, &closed_port);  // Bound, not listening.
  ASSERT_GE(bound, 0);
  uint16_t local_port = FreePort();
  std::string forward = "-L 127.0.0.1:" + std::to_string(local_port) +
                        ":127.0.0.1:" + std::to_string(closed_port);
  log_level_ = "INFO";  // ssh reports a failed open at INFO
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  EXPECT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  EXPECT_GE(fd, 0);
  if (fd >= 0) {
    EXPECT_EQ(ReadUntilClosed(fd), "");  // ssh closes it.
    close(fd);
  }
  EXPECT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 2 && !taps[1].exits.empty();
  }));
  EXPECT_TRUE(WaitFor([&] {
    return Stderr().find("open failed") != std::string::npos;
  })) << Stderr();
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  close(bound);
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 2u);
  const TapRecord& r = taps[1];
  EXPECT_EQ(r.info.kind, ChannelKind::kTcpip);
  EXPECT_EQ(r.info.dst_port, closed_port);
  EXPECT_EQ(r.exits, std::vector<int>{1});
  EXPECT_EQ(r.in, "");
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(r.in_ended);
  EXPECT_FALSE(r.out_ended);
  EXPECT_EQ(r.misuse, "");
}

TEST_F(SshServerTest, ForwardingNeedsTheCertExtension) {
  DestinationServer destination(0, "");
  uint16_t local_port = FreePort();
  std::string forward = "-L 127.0.0.1:" + std::to_string(local_port) +
                        ":127.0.0.1:" + std::to_string(destination.port());
  log_level_ = "INFO";
  std::string flag = dir_.File("done");
  BackgroundCommand client(Ssh(GoodKey(), forward + " " + WaitForFile(flag)),
                           flag);  // GoodKey: permit-pty only
  EXPECT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  EXPECT_GE(fd, 0);
  if (fd >= 0) {
    EXPECT_EQ(ReadUntilClosed(fd), "");
    close(fd);
  }
  EXPECT_TRUE(WaitFor([&] {
    return Stderr().find("open failed") != std::string::npos;
  })) << Stderr();
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 1u);  // the session only: no tcpip tap
  EXPECT_EQ(taps[0].info.kind, ChannelKind::kExec);
}

TEST_F(SshServerTest, ForwardingCanBeDisabled) {
  StartServer([](SshServerOptions& o) { o.allow_tcpip_forwarding = false; });
  DestinationServer destination(0, "");
  uint16_t local_port = FreePort();
  std::string forward = "-L 127.0.0.1:" + std::to_string(local_port) +
                        ":127.0.0.1:" + std::to_string(destination.port());
  log_level_ = "INFO";
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  EXPECT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  EXPECT_GE(fd, 0);
  if (fd >= 0) {
    EXPECT_EQ(ReadUntilClosed(fd), "");
    close(fd);
  }
  EXPECT_TRUE(WaitFor([&] {
    return Stderr().find("open failed") != std::string::npos;
  })) << Stderr();
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  EXPECT_EQ(Taps().size(), 1u);  // the session only
}

TEST_F(SshServerTest, SlowDestinationTimesOutAfterTheOpen) {
  // A listener whose accept queue is full drops new SYNs: the connect
  // neither succeeds nor fails until connect_timeout_ms. The open is
  // answered before that (the connection's thread is not held), and the
  // timeout then closes the channel with OnExit(1) and no data.
  StartServer([](SshServerOptions& o) { o.connect_timeout_ms = 1500; });
  uint16_t slow_port = 0;
  int listener = BindLoopback(false, &slow_port);
  ASSERT_GE(listener, 0);
  ASSERT_EQ(listen(listener, 0), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 2; ++i) {
    int f = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(slow_port);
    connect(f, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    fillers.push_back(f);
  }
  uint16_t local_port = FreePort();
  std::string forward = "-L 127.0.0.1:" + std::to_string(local_port) +
                        ":127.0.0.1:" + std::to_string(slow_port);
  std::string flag = dir_.File("done");
  BackgroundCommand client(
      Ssh(ForwardingKey(), forward + " " + WaitForFile(flag)), flag);
  EXPECT_TRUE(WaitFor([&] { return Listening(local_port); }));
  int fd = ConnectLoopback(local_port);
  EXPECT_GE(fd, 0);
  if (fd >= 0) {
    EXPECT_EQ(send(fd, "lost", 4, MSG_NOSIGNAL), 4);
    EXPECT_EQ(ReadUntilClosed(fd), "");
    close(fd);
  }
  EXPECT_TRUE(WaitFor([&] {
    std::vector<TapRecord> taps = Taps();
    return taps.size() == 2 && !taps[1].exits.empty();
  }));
  EXPECT_EQ(client.Finish().exit_code, 0) << Stderr();
  for (int f : fillers) close(f);
  close(listener);
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 2u);
  EXPECT_EQ(taps[1].exits, std::vector<int>{1});
  EXPECT_EQ(taps[1].in, "");  // never delivered, so never reported
  EXPECT_EQ(taps[1].out, "");
  EXPECT_FALSE(taps[1].in_ended);
  EXPECT_EQ(taps[1].misuse, "");
}

TEST_F(SshServerTest, ConnectionEndIsReportedOnceWithTheId) {
  std::string key = GoodKey();
  auto result = mez::testing::Run(Ssh(key, "true"));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  ASSERT_TRUE(WaitFor([&] { return !ConnectionEnds().empty(); }));
  server_->Stop();  // Joins the connection threads: no late second call.
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 1u);
  EXPECT_TRUE(IsLowerHex32(taps[0].info.connection_id));
  EXPECT_EQ(ConnectionEnds(),
            std::vector<std::string>{taps[0].info.connection_id});
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_FALSE(ended_with_live_tap_);
}

TEST_F(SshServerTest, ConnectionIdsDiffer) {
  std::string key = GoodKey();
  EXPECT_EQ(mez::testing::Run(Ssh(key, "true")).exit_code, 0) << Stderr();
  EXPECT_EQ(mez::testing::Run(Ssh(key, "true")).exit_code, 0) << Stderr();
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 2u);
  EXPECT_NE(taps[0].info.connection_id, taps[1].info.connection_id);
}

TEST_F(SshServerTest, RefusesALoginWithoutPasswdEntry) {
  int64_t now = time(nullptr);
  std::string login = "meznosuchuser";
  std::string key = MakeKey("nosuch", ca_pem_, {login}, now - 60, now + 3600);
  auto result = mez::testing::Run(Ssh(key, "true", login));
  EXPECT_EQ(result.exit_code, 255) << Stderr();
  std::vector<AuthRefusal> refusals = Refusals();
  ASSERT_FALSE(refusals.empty());
  EXPECT_EQ(refusals[0].login, login);
  if (geteuid() == 0) {
    EXPECT_NE(refusals[0].reason.find("does not exist"), std::string::npos)
        << refusals[0].reason;
  } else {
    EXPECT_NE(refusals[0].reason.find("run mezd as root"), std::string::npos)
        << refusals[0].reason;
  }
}

TEST_F(SshServerTest, NonRootRefusesOtherLogins) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "runs as root, where other logins are allowed (see "
                    "RootRunsProgramsAsTheLogin)";
  }
  int64_t now = time(nullptr);
  std::string key = MakeKey("root", ca_pem_, {"root"}, now - 60, now + 3600);
  auto result = mez::testing::Run(Ssh(key, "true", "root"));
  EXPECT_EQ(result.exit_code, 255) << Stderr();
  std::vector<AuthRefusal> refusals = Refusals();
  ASSERT_FALSE(refusals.empty());
  EXPECT_EQ(refusals[0].login, "root");
  EXPECT_EQ(refusals[0].reason, "mezd runs as " + CurrentUser() +
                                    " and can only start sessions "
                                    "for " +
                                    CurrentUser() +
                                    ", not for root; run mezd as root "
                                    "to allow other logins");
}

// A throwaway system user with its own home, removed again in any case.
class TemporaryUser {
 public:
  TemporaryUser() {
    char tmpl[] = "/tmp/mez-home-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return;
    home_ = tmpl;
    name_ = "meztest" + std::to_string(getpid() % 100000);
    auto r = mez::testing::Run("useradd -M -s /bin/sh -d " + ShellQuote(home_) +
                               " " + ShellQuote(name_) + " 2>&1 && chown " +
                               ShellQuote(name_) + ": " + ShellQuote(home_));
    created_ = r.exit_code == 0;
    error_ = r.out;
  }
  ~TemporaryUser() {
    if (created_) mez::testing::Run("userdel " + ShellQuote(name_));
    if (!home_.empty()) mez::testing::Run("rm -rf " + ShellQuote(home_));
  }
  bool ok() const { return created_; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }
  const std::string& home() const { return home_; }

 private:
  std::string name_, home_, error_;
  bool created_ = false;
};

TEST_F(SshServerTest, RootRunsProgramsAsTheLogin) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to create a user and to change users (see "
                    "NonRootRefusesOtherLogins)";
  }
  TemporaryUser user;
  ASSERT_TRUE(user.ok()) << user.error();
  int64_t now = time(nullptr);
  std::string key =
      MakeKey("other-user", ca_pem_, {user.name()}, now - 60, now + 3600);
  auto result = mez::testing::Run(Ssh(key,
                                      ShellQuote("id -un; pwd; echo $HOME; "
                                                 "echo $USER $LOGNAME $SHELL; "
                                                 "echo $PATH; id -u"),
                                      user.name()));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  struct passwd* pw = getpwnam(user.name().c_str());
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(result.out, user.name() + "\n" + user.home() + "\n" + user.home() +
                            "\n" + user.name() + " " + user.name() +
                            " /bin/sh\n/usr/local/bin:/usr/bin:/bin\n" +
                            std::to_string(pw->pw_uid) + "\n");
  // With a pty, the terminal belongs to the user (mode 620).
  result = mez::testing::Run(
      Ssh(key, "-tt " + ShellQuote("stat -c '%U %a' $(tty)"), user.name()));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_NE(result.out.find(user.name() + " 620"), std::string::npos)
      << result.out;
  // A home that is gone: the session starts in / with a note, like sshd.
  ASSERT_EQ(rmdir(user.home().c_str()), 0);
  result = mez::testing::Run(Ssh(key, "pwd", user.name()));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out, "/\n");
  EXPECT_NE(Stderr().find("Could not chdir to home directory"),
            std::string::npos)
      << Stderr();
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 3u);
  EXPECT_EQ(taps[0].info.login, user.name());
}

// The jump host's policy through the server: the certificate's key id is
// a login (standing for its first principal), any other name must be a
// principal, and no session channel opens.
TEST_F(SshServerTest, JumpHostPolicyTakesTheKeyIdAndOpensNoSessions) {
  StartServer([](SshServerOptions& o) {
    o.login_policy = std::make_shared<JumpHostLoginPolicy>();
  });
  int64_t now = time(nullptr);
  std::string key =
      MakeKey("jump", ca_pem_, {"ubuntu"}, now - 60, now + 3600);  // id alice
  auto result = mez::testing::Run(Ssh(key, "true", "alice"));
  EXPECT_EQ(result.exit_code, 255);
  EXPECT_TRUE(Refusals().empty()) << Refusals()[0].reason;
  result = mez::testing::Run(Ssh(key, "true", "mallory"));
  EXPECT_EQ(result.exit_code, 255);
  std::vector<AuthRefusal> refusals = Refusals();
  ASSERT_FALSE(refusals.empty());
  EXPECT_EQ(refusals[0].login, "mallory");
  EXPECT_NE(refusals[0].reason.find("mallory"), std::string::npos)
      << refusals[0].reason;
  server_->Stop();
  {
    std::lock_guard<std::mutex> lock(tap_.mu);
    EXPECT_TRUE(tap_.starts.empty());
  }
  // Only alice's connection authenticated.
  EXPECT_EQ(ConnectionEnds().size(), 1u);
}

// The bridge's policy through the server: a login that is no local account
// is accepted when the certificate names it, and its session runs what the
// launcher made, recorded like any other.
TEST_F(SshServerTest, BridgePolicyRunsWhatTheLauncherMakes) {
  std::mutex seen_mu;
  std::vector<std::string> seen_env;
  StartServer([&](SshServerOptions& o) {
    o.login_policy = std::make_shared<BridgeLoginPolicy>(
        [&](const ChannelInfo& info, const std::vector<std::string>& env)
            -> Result<std::unique_ptr<Program>> {
          {
            std::lock_guard<std::mutex> lock(seen_mu);
            seen_env = env;
          }
          ChildSpec spec;
          spec.shell = "/bin/sh";
          spec.command = "echo bridged: " + info.command;
          spec.home = "/";
          spec.env = {"PATH=/usr/bin:/bin"};
          MEZ_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> child,
                               ChildProcess::Spawn(spec));
          return std::unique_ptr<Program>(std::move(child));
        });
  });
  int64_t now = time(nullptr);
  std::string login = "meznosuchuser";
  std::string key = MakeKey("bridge", ca_pem_, {login}, now - 60, now + 3600);
  auto result = mez::testing::Run("LANG=C.UTF-8 " +
                                  Ssh(key, "-o SendEnv=LANG hello", login));
  EXPECT_EQ(result.exit_code, 0) << Stderr();
  EXPECT_EQ(result.out, "bridged: hello\n");
  EXPECT_TRUE(Refusals().empty()) << Refusals()[0].reason;
  {
    std::lock_guard<std::mutex> lock(seen_mu);
    EXPECT_EQ(seen_env, std::vector<std::string>{"LANG=C.UTF-8"});
  }
  std::vector<TapRecord> taps = Taps();
  ASSERT_EQ(taps.size(), 1u);
  EXPECT_EQ(taps[0].info.login, login);
  EXPECT_EQ(taps[0].info.command, "hello");
}

TEST_F(SshServerTest, StartRejectsBadOptions) {
  SshServerOptions options;
  EXPECT_FALSE(SshServer::Start(options).ok());  // no CA
  options.trusted_user_ca_blob = "x";
  options.listen_address = "not-an-ip";
  EXPECT_FALSE(SshServer::Start(options).ok());
  options.listen_address = "127.0.0.1";
  options.host_key_openssh = "garbage";
  EXPECT_FALSE(SshServer::Start(options).ok());
}

}  // namespace
}  // namespace mez::ssh
