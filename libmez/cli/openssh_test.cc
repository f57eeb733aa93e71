#include "libmez/cli/openssh.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mez::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

// What every run passes before its own options: only this run's key,
// certificate and known_hosts.
std::vector<std::string> Base(const std::string& dir) {
  return {"ssh",
          "-i",
          dir + "/id_ed25519",
          "-o",
          "CertificateFile=" + dir + "/id_ed25519-cert.pub",
          "-o",
          "IdentitiesOnly=yes",
          "-o",
          "StrictHostKeyChecking=yes",
          "-o",
          "UserKnownHostsFile=" + dir + "/known_hosts",
          "-o",
          "GlobalKnownHostsFile=/dev/null",
          "-o",
          "UpdateHostKeys=no",
          "-o",
          "LogLevel=INFO"};
}

std::vector<std::string> Concat(std::vector<std::string> a,
                                const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

OpenSshLaunch Direct() {
  OpenSshLaunch l;
  l.login = "alice";
  l.host = "10.0.0.5";
  l.port = "3022";
  return l;
}

TEST(CliOpenSshArgvTest, DirectRunUsesOnlyTheRunsKeyAndKnownHosts) {
  EXPECT_THAT(OpenSshArgv(Direct(), "/h/.mez/keys/ssh-a"),
              ElementsAreArray(Concat(Base("/h/.mez/keys/ssh-a"),
                                      {"-p", "3022", "--", "alice@10.0.0.5"})));
}

TEST(CliOpenSshArgvTest, LocalForwardsBindLoopbackAndFailHard) {
  OpenSshLaunch l = Direct();
  l.local_forwards = {"8080:web:80", "[::1]:9000:db:5432"};
  EXPECT_THAT(OpenSshArgv(l, "/k"),
              ElementsAreArray(Concat(
                  Base("/k"),
                  {"-o", "GatewayPorts=no", "-o", "ExitOnForwardFailure=yes",
                   "-L", "8080:web:80", "-L", "[::1]:9000:db:5432", "-p",
                   "3022", "--", "alice@10.0.0.5"})));
}

TEST(CliOpenSshArgvTest, ModeFlagsAndCommandFollowTheDestination) {
  OpenSshLaunch l = Direct();
  l.no_command = true;
  l.no_tty = true;
  EXPECT_THAT(OpenSshArgv(l, "/k"),
              ElementsAreArray(Concat(Base("/k"), {"-N", "-T", "-p", "3022",
                                                   "--", "alice@10.0.0.5"})));

  l = Direct();
  l.force_tty = true;
  // CLI11 hands msh's own "--" on with the command; only that one goes.
  l.command = {"--", "ls", "--", "-l"};
  EXPECT_THAT(OpenSshArgv(l, "/k"),
              ElementsAreArray(
                  Concat(Base("/k"), {"-t", "-p", "3022", "--",
                                      "alice@10.0.0.5", "ls", "--", "-l"})));

  l.command = {"echo", "--"};
  std::vector<std::string> argv = OpenSshArgv(l, "/k");
  EXPECT_THAT(std::vector<std::string>(argv.end() - 2, argv.end()),
              ElementsAre("echo", "--"));
}

TEST(CliOpenSshArgvTest, ThroughTheProxyTheFirstHopUsesTheSameKey) {
  OpenSshLaunch l;
  l.login = "alice";
  l.host = "db1";
  l.port = "22";
  l.via_proxy = true;
  l.proxy_host = "proxy.example";
  l.proxy_port = "3023";
  EXPECT_THAT(
      OpenSshArgv(l, "/k"),
      ElementsAreArray(Concat(
          Base("/k"),
          {"-o",
           "ProxyCommand=ssh -F /dev/null -i '/k/id_ed25519' -o "
           "CertificateFile='/k/id_ed25519-cert.pub' -o IdentitiesOnly=yes "
           "-o StrictHostKeyChecking=yes -o UserKnownHostsFile='/k/"
           "known_hosts' -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR "
           "-p '3023' -W %h:%p 'alice@proxy.example'",
           "-p", "22", "--", "alice@db1"})));
}

TEST(CliOpenSshArgvTest, ProxyCommandQuotesEveryWordForTheShell) {
  OpenSshLaunch l = Direct();
  l.login = "o'brien";
  l.via_proxy = true;
  l.proxy_host = "p";
  l.proxy_port = "1";
  std::vector<std::string> argv = OpenSshArgv(l, "/home/x y/k;rm");
  std::string proxy_command;
  for (const auto& a : argv) {
    if (a.rfind("ProxyCommand=", 0) == 0) proxy_command = a;
  }
  EXPECT_NE(proxy_command.find("-i '/home/x y/k;rm/id_ed25519'"),
            std::string::npos)
      << proxy_command;
  EXPECT_NE(proxy_command.find(" 'o'\\''brien@p'"), std::string::npos)
      << proxy_command;
  // The destination itself is one argv word; no shell sees it.
  EXPECT_EQ(argv.back(), "o'brien@10.0.0.5");
}

TEST(CliKnownHostsLineTest, PinsTheKeyForTheAddressSshLooksUp) {
  auto line = KnownHostsLine("n1", "10.0.0.5", "3022",
                             "ssh-ed25519 AAAAC3Nza+/= root@n1");
  ASSERT_TRUE(line.ok()) << line.status().message();
  EXPECT_EQ(*line, "[10.0.0.5]:3022 ssh-ed25519 AAAAC3Nza+/=\n");

  line = KnownHostsLine("n1", "n1.example", "22", "ssh-ed25519 AAAA");
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(*line, "n1.example ssh-ed25519 AAAA\n");
}

TEST(CliKnownHostsLineTest, RefusesWhatCouldInjectAnotherLine) {
  auto bad_key = KnownHostsLine("n1", "h", "22", "ssh-ed25519 AA\nAA");
  EXPECT_EQ(bad_key.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(bad_key.status().message().find("node n1 is malformed"),
            std::string::npos)
      << bad_key.status().message();
  EXPECT_FALSE(KnownHostsLine("n1", "h", "22", "ssh-ed25519").ok());
  EXPECT_FALSE(KnownHostsLine("n1", "h", "22", "").ok());

  auto bad_host = KnownHostsLine("n1", "h,*", "22", "ssh-ed25519 AAAA");
  EXPECT_EQ(bad_host.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(bad_host.status().message().find("unusable address 'h,*'"),
            std::string::npos)
      << bad_host.status().message();
}

TEST(CliSplitAddrTest, HostPortBracketsAndDefaults) {
  std::string host, port;
  SplitAddr("node1:3022", &host, &port);
  EXPECT_EQ(host, "node1");
  EXPECT_EQ(port, "3022");
  SplitAddr("[::1]:3022", &host, &port);
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, "3022");
  SplitAddr("node1", &host, &port);
  EXPECT_EQ(host, "node1");
  EXPECT_EQ(port, "22");
  SplitAddr("fe80::1", &host, &port);
  EXPECT_EQ(host, "fe80::1");
  EXPECT_EQ(port, "22");
  SplitAddr("[::1]", &host, &port);
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, "22");
}

}  // namespace
}  // namespace mez::cli
