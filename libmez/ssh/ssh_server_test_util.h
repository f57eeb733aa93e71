// What the SshServer tests share: a tap that records what it saw and
// checks the tap contract, and the fixture that runs a server on loopback
// and the stock OpenSSH client against it. Test-only.
#ifndef MEZ_SSH_SSH_SERVER_TEST_UTIL_H_
#define MEZ_SSH_SSH_SERVER_TEST_UTIL_H_

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/auth/token.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/util/file.h"
#include "tests/test_util.h"

namespace mez::ssh {

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
inline bool WaitFor(const std::function<bool()>& done, int seconds = 30) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

inline bool IsLowerHex32(const std::string& s) {
  return s.size() == 32 &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

inline std::string CurrentUser() {
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
    std::string cmd =
        "timeout 30 ssh -F /dev/null -i " + mez::testing::ShellQuote(key);
    if (access((key + "-cert.pub").c_str(), R_OK) == 0) {
      cmd +=
          " -o CertificateFile=" + mez::testing::ShellQuote(key + "-cert.pub");
    }
    return cmd +
           " -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes"
           " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
           " -o LogLevel=" +
           log_level_ + " -o ConnectTimeout=10 -p " +
           std::to_string(server_->port()) + " " + login + "@127.0.0.1 " +
           args + " 2>" + mez::testing::ShellQuote(dir_.File("err.txt"));
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

  mez::testing::TempDir dir_;
  std::string ca_pem_;
  std::unique_ptr<SshServer> server_;
  std::mutex mu_;
  std::vector<AuthRefusal> refusals_;
  std::vector<std::string> connection_ends_;
  bool ended_with_live_tap_ = false;
  std::string log_level_ = "ERROR";
  TapLog tap_;
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_SSH_SERVER_TEST_UTIL_H_
