#include "libmez/agent/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace mez::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The environment LoadAgentConfig sees: only what a test puts here.
std::map<std::string, std::string> g_env;

const char* FakeGetenv(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

class AgentConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { g_env.clear(); }

  // mezd with `args` after the program's name.
  Result<AgentConfig> Load(std::vector<std::string> args) {
    args.insert(args.begin(), "mezd");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    return LoadAgentConfig(static_cast<int>(argv.size()), argv.data(),
                           &FakeGetenv);
  }

  // The options of a command line that must load; `--auth a:1` first.
  AgentOptions Options(std::vector<std::string> args) {
    args.insert(args.begin(), {"--auth", "a:1"});
    auto c = Load(args);
    EXPECT_TRUE(c.ok()) << c.status().message();
    if (!c.ok()) return {};
    EXPECT_EQ(c->exit_code, -1) << c->err;
    return c->options;
  }

  // The error of a command line that must not load; `--auth a:1` first.
  Status Error(std::vector<std::string> args) {
    args.insert(args.begin(), {"--auth", "a:1"});
    auto c = Load(args);
    EXPECT_FALSE(c.ok()) << "loaded";
    return c.ok() ? Status::Ok() : c.status();
  }

  // A command line the flag parser refuses: exit 2 and its message.
  std::string Usage(std::vector<std::string> args) {
    auto c = Load(args);
    EXPECT_TRUE(c.ok()) << c.status().message();
    if (!c.ok()) return "";
    EXPECT_EQ(c->exit_code, 2);
    EXPECT_EQ(c->out, "");
    EXPECT_THAT(c->err, HasSubstr("Run with --help for more information."));
    return c->err;
  }

  mez::testing::TempDir dir_;
};

TEST_F(AgentConfigTest, DefaultsWithOnlyAuth) {
  AgentOptions o = Options({});
  EXPECT_EQ(o.auth_addr, "a:1");
  EXPECT_EQ(o.node_token, "");
  EXPECT_EQ(o.listen, "0.0.0.0:3022");
  EXPECT_EQ(o.advertise, "");
  EXPECT_EQ(o.data_dir, "/var/lib/mezd");
  EXPECT_EQ(o.ca_pem, "");
  EXPECT_FALSE(o.insecure);
  EXPECT_EQ(o.user_ca_line, "");
  EXPECT_EQ(o.spool_budget, 1ULL << 30);
  EXPECT_EQ(o.upload_retry_min_us, 1'000'000);
  EXPECT_EQ(o.upload_retry_max_us, 60'000'000);
  EXPECT_EQ(o.upload_rate_limit, 0u);
  EXPECT_EQ(o.heartbeat_us, 30'000'000);
  EXPECT_FALSE(o.mode_override.has_value());
  EXPECT_FALSE(o.start_credential.has_value());
  EXPECT_EQ(o.credentials, nullptr);
}

TEST_F(AgentConfigTest, EveryFlagSetsItsOption) {
  std::string ca = dir_.File("ca.pem"), user_ca = dir_.File("user_ca");
  mez::testing::WriteFileOrDie(ca, "PEM\n");
  mez::testing::WriteFileOrDie(user_ca, "ssh-ed25519 AAAA ca\n");
  AgentOptions o = Options({"--token",
                            "tok",
                            "--listen",
                            "127.0.0.1:0",
                            "--advertise",
                            "node1.example:22",
                            "--data-dir",
                            "/d",
                            "--ca-file",
                            ca,
                            "--user-ca-file",
                            user_ca,
                            "--spool-budget",
                            "10M",
                            "--upload-retry-max",
                            "2m",
                            "--upload-rate-limit",
                            "1K",
                            "--heartbeat",
                            "5s"});
  EXPECT_EQ(o.node_token, "tok");
  EXPECT_EQ(o.listen, "127.0.0.1:0");
  EXPECT_EQ(o.advertise, "node1.example:22");
  EXPECT_EQ(o.data_dir, "/d");
  EXPECT_EQ(o.ca_pem, "PEM\n");
  EXPECT_EQ(o.user_ca_line, "ssh-ed25519 AAAA ca\n");
  EXPECT_EQ(o.spool_budget, 10ULL << 20);
  EXPECT_EQ(o.upload_retry_max_us, 120'000'000);
  EXPECT_EQ(o.upload_retry_min_us, 1'000'000);
  EXPECT_EQ(o.upload_rate_limit, 1024u);
  EXPECT_EQ(o.heartbeat_us, 5'000'000);
  EXPECT_FALSE(o.insecure);

  EXPECT_TRUE(Options({"--insecure"}).insecure);
  // The shortest retry wait follows a maximum of exactly 1s.
  AgentOptions one = Options({"--upload-retry-max", "1s"});
  EXPECT_EQ(one.upload_retry_max_us, 1'000'000);
  EXPECT_EQ(one.upload_retry_min_us, 1'000'000);
}

TEST_F(AgentConfigTest, TokenFileGivesItsFirstLine) {
  std::string f = dir_.File("token");
  mez::testing::WriteFileOrDie(f, "mez1.join.abc\r\nignored\n");
  EXPECT_EQ(Options({"--token-file", f}).node_token, "mez1.join.abc");
}

TEST_F(AgentConfigTest, UnreadableFilesKeepTheirError) {
  // Opens (even for root) and fails to read: its first page is unmapped.
  const std::string f = "/proc/self/mem";
  for (const char* flag : {"--token-file", "--ca-file", "--user-ca-file"}) {
    Status s = Error({flag, f});
    // Not a setting's value: mezd exits 1, as for any failed read.
    EXPECT_NE(s.code(), Code::kInvalidArgument) << flag;
    EXPECT_THAT(s.message(), HasSubstr(f)) << flag;
  }
}

TEST_F(AgentConfigTest, RecordingModeFromTheEnvironment) {
  EXPECT_FALSE(Options({}).mode_override.has_value());
  g_env["MEZITE_RECORDING_MODE"] = "";
  EXPECT_FALSE(Options({}).mode_override.has_value());
  for (auto [text, mode] :
       {std::pair{"node-sync", recorder::RecordingMode::kNodeSync},
        std::pair{"node", recorder::RecordingMode::kNode},
        std::pair{"off", recorder::RecordingMode::kOff}}) {
    g_env["MEZITE_RECORDING_MODE"] = text;
    auto o = Options({});
    ASSERT_TRUE(o.mode_override.has_value()) << text;
    EXPECT_EQ(*o.mode_override, mode) << text;
  }
  g_env["MEZITE_RECORDING_MODE"] = "sometimes";
  Status s = Error({});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith("MEZITE_RECORDING_MODE: "));
  EXPECT_THAT(s.message(), HasSubstr("sometimes"));
}

TEST_F(AgentConfigTest, EnhancedRecordingFromFlagsAndTheEnvironment) {
  AgentOptions o = Options({});
  EXPECT_FALSE(o.bpf);
  EXPECT_FALSE(o.bpf_degraded);
  o = Options({"--bpf"});
  EXPECT_TRUE(o.bpf);
  EXPECT_FALSE(o.bpf_degraded);
  o = Options({"--bpf", "--bpf-degraded"});
  EXPECT_TRUE(o.bpf);
  EXPECT_TRUE(o.bpf_degraded);

  g_env["MEZITE_BPF_ENABLED"] = "true";
  o = Options({});
  EXPECT_TRUE(o.bpf);
  EXPECT_FALSE(o.bpf_degraded);
  g_env["MEZITE_BPF_DEGRADED"] = "true";
  EXPECT_TRUE(Options({}).bpf_degraded);
  g_env["MEZITE_BPF_DEGRADED"] = "false";
  EXPECT_FALSE(Options({}).bpf_degraded);
  // The flag turns it on whatever the variable says.
  EXPECT_TRUE(Options({"--bpf-degraded"}).bpf_degraded);
  g_env["MEZITE_BPF_ENABLED"] = "false";
  EXPECT_FALSE(Options({}).bpf);
  EXPECT_TRUE(Options({"--bpf"}).bpf);
  g_env["MEZITE_BPF_ENABLED"] = "";
  EXPECT_FALSE(Options({}).bpf);

  for (const char* name : {"MEZITE_BPF_ENABLED", "MEZITE_BPF_DEGRADED"}) {
    g_env.clear();
    g_env[name] = "yes";
    Status s = Error({"--bpf"});
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << name;
    EXPECT_THAT(s.message(), StartsWith(std::string(name) + " wants true or "
                                                            "false"));
    EXPECT_THAT(s.message(), HasSubstr("'yes'"));
  }

  // Degraded is a choice about BPF: alone it is a mistake to fix.
  g_env.clear();
  Status s = Error({"--bpf-degraded"});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("only applies with --bpf"));
  g_env["MEZITE_BPF_DEGRADED"] = "true";
  EXPECT_EQ(Error({}).code(), Code::kInvalidArgument);
}

TEST_F(AgentConfigTest, BadSizesNameTheFlag) {
  for (const char* flag : {"--spool-budget", "--upload-rate-limit"}) {
    for (const char* value : {"lots", "10Q", "1.5.5M", ""}) {
      Status s = Error({flag, value});
      EXPECT_EQ(s.code(), Code::kInvalidArgument) << flag << " " << value;
      EXPECT_THAT(s.message(), StartsWith(std::string(flag) + ": ")) << value;
    }
  }
}

TEST_F(AgentConfigTest, BadDurationsNameTheFlagAndTheRange) {
  for (const char* value : {"soon", "30", "999ms", "0s"}) {
    Status s = Error({"--upload-retry-max", value});
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << value;
    EXPECT_EQ(s.message(),
              "--upload-retry-max wants a duration of at least 1s");
  }
  for (const char* value : {"often", "30", "500ms", "301s", "1h"}) {
    Status s = Error({"--heartbeat", value});
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << value;
    EXPECT_EQ(s.message(), "--heartbeat wants a duration from 1s to 5m");
  }
  EXPECT_EQ(Options({"--heartbeat", "1s"}).heartbeat_us, 1'000'000);
  EXPECT_EQ(Options({"--heartbeat", "5m"}).heartbeat_us, 300'000'000);
}

TEST_F(AgentConfigTest, CommandLinesTheParserRefuses) {
  EXPECT_THAT(Usage({"--auth", "a:1", "--bogus"}), HasSubstr("--bogus"));
  EXPECT_THAT(Usage({}), HasSubstr("--auth is required"));
  EXPECT_THAT(Usage({"--auth", "a:1", "--auth", "b:2"}), HasSubstr("--auth"));
  EXPECT_THAT(Usage({"--auth", "a:1", "--token-file", dir_.File("none")}),
              HasSubstr("--token-file"));
  EXPECT_THAT(Usage({"--auth", "a:1", "--ca-file", dir_.File("none")}),
              HasSubstr("--ca-file"));
  EXPECT_THAT(Usage({"--auth", "a:1", "--user-ca-file", dir_.File("none")}),
              HasSubstr("--user-ca-file"));
  std::string f = dir_.File("file");
  mez::testing::WriteFileOrDie(f, "x");
  EXPECT_THAT(Usage({"--auth", "a:1", "--token", "t", "--token-file", f}),
              HasSubstr("excludes"));
  EXPECT_THAT(Usage({"--auth", "a:1", "--insecure", "--ca-file", f}),
              HasSubstr("excludes"));
}

TEST_F(AgentConfigTest, HelpListsEveryFlagAndExitsZero) {
  for (const char* help : {"--help", "-h"}) {
    auto c = Load({help});
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->exit_code, 0);
    EXPECT_EQ(c->err, "");
    EXPECT_THAT(c->out, HasSubstr("MEZITE_RECORDING_MODE"));
    for (const char* flag :
         {"--auth", "--token", "--token-file", "--listen", "--advertise",
          "--data-dir", "--ca-file", "--insecure", "--user-ca-file",
          "--spool-budget", "--upload-retry-max", "--upload-rate-limit",
          "--heartbeat", "--bpf", "--bpf-degraded"}) {
      EXPECT_THAT(c->out, HasSubstr(flag)) << help;
    }
  }
}

TEST_F(AgentConfigTest, PrepareRefusesAnUnsafeDataDirAsASetting) {
  std::string data = dir_.File("data");
  ASSERT_EQ(mkdir(data.c_str(), 0700), 0);
  ASSERT_EQ(chmod(data.c_str(), 0770), 0);
  AgentOptions o = Options({"--token", "t", "--data-dir", data});
  Status s = PrepareAgentStart(&o);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(data));
  EXPECT_FALSE(o.start_credential.has_value());
}

TEST_F(AgentConfigTest, PrepareWithoutAnyCredentialNamesToken) {
  std::string data = dir_.File("data");
  AgentOptions o = Options({"--insecure", "--data-dir", data});
  Status s = PrepareAgentStart(&o);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("--token"));
  // Nothing is created before the settings are known to be good.
  struct stat st;
  EXPECT_NE(stat(data.c_str(), &st), 0);
}

}  // namespace
}  // namespace mez::agent
