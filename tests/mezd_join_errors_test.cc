// What a joining mezd says when it cannot join, with the real binaries:
// each cause a node operator can meet (nothing listening at --auth, a
// name that does not resolve, something that is not a TLS mezrecd, a
// plaintext mezrecd, mezd told --insecure for a TLS one, another cluster's
// mezrecd) is named as such, never "start mezd once while mezrecd is up",
// and the join token is not used up by a failed attempt.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "libmez/auth/identity.h"
#include "libmez/util/file.h"
#include "tests/mezd_harness.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kWrongAdvice[] = "start mezd once while mezrecd is up";

// A TCP listener on 127.0.0.1 that answers every connection with bytes
// that are neither TLS nor HTTP/2, then hangs up.
class GarbageListener {
 public:
  GarbageListener() {
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
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p = {fd_, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        static const char kGarbage[] = "SSH-2.0-not-mezrecd\r\n\x01\x02\x03";
        ssize_t n = write(c, kGarbage, sizeof(kGarbage) - 1);
        (void)n;
        close(c);
      }
    });
  }
  ~GarbageListener() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class MezdJoinErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Mezrecd>(dir_.File("cluster"));
    ASSERT_TRUE(cluster_->Start()) << cluster_->log();
    node_port_ = FreeLoopbackPort();
    ASSERT_NE(node_port_, 0);
    std::string error;
    token_ = RegisterNode(*cluster_, "node-1", NodeAddr(), &error);
    ASSERT_FALSE(token_.empty()) << error;
    auto id = auth::ReadIdentityFile(cluster_->data_dir() + "/admin.identity");
    ASSERT_TRUE(id.ok());
    ASSERT_FALSE(id->tls_ca_pem.empty());
    ca_file_ = dir_.File("cluster-ca.pem");
    WriteFileOrDie(ca_file_, id->tls_ca_pem);
  }

  std::string NodeAddr() const {
    return "127.0.0.1:" + std::to_string(node_port_);
  }
  // The real mezd with the join token, joining at `auth`; it must exit.
  CommandResult RunMezd(const std::string& auth, const std::string& extra,
                        const std::string& data_dir = "") {
    std::string data = data_dir.empty() ? dir_.File("mezd") : data_dir;
    return testing::Run("timeout 60 " + ShellQuote(MEZD_PATH) + " --auth " +
                        ShellQuote(auth) + " --token " + ShellQuote(token_) +
                        " --listen " + NodeAddr() + " --data-dir " +
                        ShellQuote(data) + " " + extra + " 2>&1");
  }
  size_t Joins(const Mezrecd& cluster) {
    auto r = Mezctl(cluster, "audit ls --type=node.join --format=json");
    auto arr = nlohmann::json::parse(r.out, nullptr, false);
    return arr.is_array() ? arr.size() : 0;
  }
  // The token still joins node-1 at the right address.
  void ExpectTokenStillJoins() {
    auto ok = RunMezdInBackground();
    ASSERT_TRUE(ok->Start()) << ok->log();
    EXPECT_EQ(Joins(*cluster_), 1u);
  }
  std::unique_ptr<Mezd> RunMezdInBackground(
      std::vector<std::string> extra = {}) {
    MezdOptions o;
    o.token = token_;
    o.listen = NodeAddr();
    o.extra_args = {"--data-dir", dir_.File("mezd")};
    o.extra_args.insert(o.extra_args.end(), extra.begin(), extra.end());
    return std::make_unique<Mezd>(cluster_.get(), dir_.path(), o);
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> cluster_;
  uint16_t node_port_ = 0;
  std::string token_;
  std::string ca_file_;
};

// --auth names a port nothing listens on: said so, with what --auth must
// be; the same when mezd is given --ca-file (then gRPC fails first).
TEST_F(MezdJoinErrorsTest, NothingListensAtAuth) {
  uint16_t closed = FreeLoopbackPort();
  ASSERT_NE(closed, 0);
  std::string auth = "127.0.0.1:" + std::to_string(closed);
  for (const std::string& extra :
       {std::string(), "--ca-file " + ShellQuote(ca_file_)}) {
    CommandResult r = RunMezd(auth, extra);
    EXPECT_EQ(r.exit_code, 1) << extra << "\n" << r.out;
    EXPECT_THAT(r.out, HasSubstr("nothing listens at " + auth +
                                 " (connection refused)"))
        << extra;
    EXPECT_THAT(r.out, HasSubstr("--auth must be mezrecd's --listen address"));
    EXPECT_THAT(r.out, Not(HasSubstr(kWrongAdvice)));
  }
  ExpectTokenStillJoins();
}

TEST_F(MezdJoinErrorsTest, AuthNameDoesNotResolve) {
  // .invalid never resolves (RFC 2606).
  for (const std::string& extra :
       {std::string(), "--ca-file " + ShellQuote(ca_file_)}) {
    CommandResult r = RunMezd("mezrecd.invalid:3025", extra);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_THAT(r.out, HasSubstr("the name mezrecd.invalid in --auth does "
                                 "not resolve"))
        << extra;
    EXPECT_THAT(r.out, Not(HasSubstr(kWrongAdvice)));
  }
  ExpectTokenStillJoins();
}

// Something that is not mezrecd (it answers with garbage) at --auth.
TEST_F(MezdJoinErrorsTest, NoTlsHandshakeWithWhatListens) {
  GarbageListener garbage;
  for (const std::string& extra :
       {std::string(), "--ca-file " + ShellQuote(ca_file_)}) {
    CommandResult r = RunMezd(garbage.addr(), extra);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_THAT(r.out, HasSubstr("no TLS handshake with " + garbage.addr()))
        << extra;
    EXPECT_THAT(r.out, HasSubstr("not a mezrecd serving TLS"));
    EXPECT_THAT(r.out, Not(HasSubstr(kWrongAdvice)));
  }
  ExpectTokenStillJoins();
}

// A real mezrecd started with --insecure, mezd trusting the cluster's CA.
TEST_F(MezdJoinErrorsTest, PlaintextMezrecdWhileMezdExpectsTls) {
  Mezrecd plain(dir_.File("plain"), {"--insecure"});
  ASSERT_TRUE(plain.Start()) << plain.log();
  CommandResult r = RunMezd(plain.addr(), "--ca-file " + ShellQuote(ca_file_));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("mezrecd at " + plain.addr() +
                               " speaks plaintext (it runs with --insecure), "
                               "but mezd expects TLS"));
  EXPECT_THAT(r.out, Not(HasSubstr(kWrongAdvice)));
  // Without --ca-file (and none kept from the run above) the pinned CA
  // cannot be read from it either.
  r = RunMezd(plain.addr(), "", dir_.File("mezd-2"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("no TLS handshake with " + plain.addr()));
  ExpectTokenStillJoins();
}

// The join token is this cluster's; --auth names another cluster's mezrecd
// (or a man in the middle with a certificate of its own): refused before
// anything is sent, and no CA is kept. A node that joined and is pointed
// at the other mezrecd later refuses it too (and says why).
TEST_F(MezdJoinErrorsTest, AnotherClustersMezrecdIsRefused) {
  Mezrecd other(dir_.File("other"));
  ASSERT_TRUE(other.Start()) << other.log();
  CommandResult r = RunMezd(other.addr(), "");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("did not present the TLS CA this node's join "
                               "token pins"));
  EXPECT_THAT(r.out, Not(HasSubstr(kWrongAdvice)));
  EXPECT_FALSE(ReadFile(dir_.File("mezd") + "/cluster_ca.pem").ok());
  EXPECT_EQ(Joins(other), 0u);
  ExpectTokenStillJoins();

  // Joined; restarted with --auth naming the other cluster (no token: the
  // stored credential). It keeps the node serving from its cached user CA
  // (recording in node mode), talks to no one, and says why.
  MezdOptions o;
  o.listen = NodeAddr();
  o.extra_args = {"--data-dir", dir_.File("mezd")};
  Mezd moved(&other, dir_.path(), o);
  ASSERT_TRUE(moved.Start()) << moved.log();
  EXPECT_THAT(moved.log(),
              HasSubstr("the TLS certificate of the server at " + other.addr() +
                        " was not issued by the cluster CA this node trusts"));
  EXPECT_EQ(Joins(other), 0u);
}

// mezd told --insecure while mezrecd serves TLS: a join token pins the CA
// and is refused at once; a joined node restarted with --insecure (its
// stored credential) is told that mezrecd serves TLS.
TEST_F(MezdJoinErrorsTest, InsecureMezdWhileMezrecdServesTls) {
  CommandResult r = RunMezd(cluster_->addr(), "--insecure");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("drop --insecure"));
  ExpectTokenStillJoins();

  MezdOptions o;
  o.listen = NodeAddr();
  o.extra_args = {"--data-dir", dir_.File("mezd"), "--insecure"};
  Mezd insecure(cluster_.get(), dir_.path(), o);
  ASSERT_TRUE(insecure.Start()) << insecure.log();
  EXPECT_THAT(insecure.log(),
              HasSubstr("mezrecd at " + cluster_->addr() +
                        " serves TLS, but mezd was started with --insecure"));
}

}  // namespace
}  // namespace mez::testing
