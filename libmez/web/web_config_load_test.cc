// The web settings through mezrecd's three layers (libmez/server's
// LoadServerConfig): yaml `web:`, MEZITE_WEB_*, --web-* flags, each
// overriding the one before, and the checks that stop startup.
#include <gtest/gtest.h>

#include <map>

#include "libmez/server/server_config.h"
#include "libmez/util/file.h"

namespace mez::web {
namespace {

std::map<std::string, std::string>* g_env = nullptr;
const char* FakeEnv(const char* name) {
  auto it = g_env->find(name);
  return it == g_env->end() ? nullptr : it->second.c_str();
}

class WebConfigLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_env = &env_;
    char tmpl[] = "/tmp/mez_webcfg_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ASSERT_EQ(std::system(("rm -rf " + dir_).c_str()), 0);
  }
  Result<server::ServerConfig> Load(const std::string& yaml,
                                    server::ConfigFlags flags = {}) {
    flags.data_dir = dir_ + "/data";
    if (!yaml.empty()) {
      flags.config_path = dir_ + "/mezrecd.yaml";
      EXPECT_TRUE(AtomicWriteFile(flags.config_path, yaml).ok());
    }
    return server::LoadServerConfig(flags, FakeEnv);
  }
  std::map<std::string, std::string> env_;
  std::string dir_;
};

TEST_F(WebConfigLoadTest, OffByDefault) {
  auto c = Load("");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->web.listen, "");
  EXPECT_EQ(c->web.code_ttl_us, 60'000'000);
}

TEST_F(WebConfigLoadTest, FlagsOverrideEnvOverridesYaml) {
  std::string yaml =
      "web:\n"
      "  listen: 127.0.0.1:8443\n"
      "  publicUrl: https://from-yaml.example\n"
      "  trustedProxies: 10.0.0.1\n"
      "  signInCodeTtl: 30s\n";
  env_["MEZITE_WEB_PUBLIC_URL"] = "https://from-env.example/";
  env_["MEZITE_WEB_SIGN_IN_CODE_TTL"] = "20s";
  server::ConfigFlags flags;
  flags.web.emplace_back("signInCodeTtl", "10s");
  auto c = Load(yaml, flags);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->web.listen, "127.0.0.1:8443");
  EXPECT_EQ(c->web.public_url, "https://from-env.example");
  EXPECT_EQ(c->web.trusted_proxies, std::vector<std::string>{"10.0.0.1"});
  EXPECT_EQ(c->web.code_ttl_us, 10'000'000);
}

TEST_F(WebConfigLoadTest, ErrorsNameTheirSource) {
  auto yaml = Load("web:\n  colour: red\n");
  ASSERT_FALSE(yaml.ok());
  EXPECT_NE(yaml.status().message().find("web.colour"), std::string::npos);

  env_["MEZITE_WEB_INSECURE_HTTP"] = "maybe";
  auto env = Load("");
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("MEZITE_WEB_INSECURE_HTTP"),
            std::string::npos);
  env_.clear();

  server::ConfigFlags flags;
  flags.web.emplace_back("signInCodeTtl", "5m");
  auto flag = Load("", flags);
  ASSERT_FALSE(flag.ok());
  EXPECT_NE(flag.status().message().find("--web-sign-in-code-ttl"),
            std::string::npos);
}

TEST_F(WebConfigLoadTest, InsecureHttpOffLoopbackStopsStartup) {
  env_["MEZITE_WEB_LISTEN"] = "0.0.0.0:8080";
  env_["MEZITE_WEB_INSECURE_HTTP"] = "true";
  env_["MEZITE_WEB_PUBLIC_URL"] = "https://mez.example";
  auto c = Load("");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("loopback"), std::string::npos);
  env_["MEZITE_WEB_LISTEN"] = "[::1]:8080";
  EXPECT_TRUE(Load("").ok());
}

TEST_F(WebConfigLoadTest, ProxyOnlyMezrecdServesNoWebUi) {
  server::ConfigFlags flags;
  flags.roles = "proxy";
  flags.identity = dir_ + "/proxy.identity";
  flags.web.emplace_back("listen", "127.0.0.1:8443");
  auto c = Load("", flags);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("auth mezrecd"), std::string::npos);
}

}  // namespace
}  // namespace mez::web
