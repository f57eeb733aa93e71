#include "libmez/server/server_config.h"

#include <gtest/gtest.h>

#include <map>

#include "libmez/util/file.h"

namespace mez::server {
namespace {

std::map<std::string, std::string>* g_env = nullptr;
const char* FakeEnv(const char* name) {
  auto it = g_env->find(name);
  return it == g_env->end() ? nullptr : it->second.c_str();
}

class ServerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_env = &env_;
    char tmpl[] = "/tmp/mez_cfg_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ASSERT_EQ(std::system(("rm -rf " + dir_).c_str()), 0);
  }
  Result<ServerConfig> Load(const std::string& yaml, ConfigFlags flags = {}) {
    if (!yaml.empty()) {
      flags.config_path = dir_ + "/mezrecd.yaml";
      EXPECT_TRUE(AtomicWriteFile(flags.config_path, yaml).ok());
    }
    return LoadServerConfig(flags, FakeEnv);
  }
  std::map<std::string, std::string> env_;
  std::string dir_;
};

TEST_F(ServerConfigTest, DefaultsFollowTheDataDir) {
  auto c = Load("");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "/var/lib/mezite");
  EXPECT_EQ(c->listen, "127.0.0.1:3025");
  EXPECT_EQ(c->recording.storage_path, "/var/lib/mezite/recordings");
  EXPECT_FALSE(c->recording.gzip);
  EXPECT_EQ(c->recording.formats.at("tcpip"), "pcap");
  ConfigFlags f;
  f.data_dir = "/srv/mez/";
  auto d = Load("", f);
  EXPECT_EQ(d->recording.storage_path, "/srv/mez/recordings");
}

TEST_F(ServerConfigTest, S3AndPostgresSettings) {
  auto c = Load(
      "dbUrl: postgres://mez@db/mezite\n"
      "recording:\n"
      "  backend: s3\n"
      "  s3:\n"
      "    bucket: recs\n"
      "    accessKey: from-file\n"
      "    secretKey: file-secret\n"
      "    forcePathStyle: true\n"
      "    endpoint: http://127.0.0.1:9000\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->db_url, "postgres://mez@db/mezite");
  EXPECT_EQ(c->recording.backend, "s3");
  EXPECT_EQ(c->recording.s3.bucket, "recs");
  EXPECT_TRUE(c->recording.s3.force_path_style);
  EXPECT_EQ(c->recording.s3.endpoint, "http://127.0.0.1:9000");

  // The AWS variables fill in; MEZITE_S3_* win over them and the file.
  env_ = {{"MEZITE_RECORDING_BACKEND", "s3"},
          {"MEZITE_S3_BUCKET", "b"},
          {"AWS_ACCESS_KEY_ID", "aws-key"},
          {"AWS_SECRET_ACCESS_KEY", "aws-secret"},
          {"AWS_REGION", "eu-west-1"},
          {"MEZITE_S3_SECRET_KEY", "mez-secret"},
          {"MEZITE_S3_PREFIX", "p/"}};
  c = Load("");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->recording.s3.access_key, "aws-key");
  EXPECT_EQ(c->recording.s3.secret_key, "mez-secret");
  EXPECT_EQ(c->recording.s3.region, "eu-west-1");
  EXPECT_EQ(c->recording.s3.prefix, "p/");

  // What is missing or wrong is named.
  env_ = {{"MEZITE_RECORDING_BACKEND", "s3"}};
  c = Load("");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("MEZITE_S3_BUCKET"), std::string::npos);
  env_ = {{"MEZITE_RECORDING_BACKEND", "tape"}};
  c = Load("");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("local or s3"), std::string::npos);
  env_ = {{"MEZITE_DB_URL", "mysql://x"}};
  c = Load("");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("postgres://"), std::string::npos);
  env_.clear();
  c = Load("recording:\n  s3:\n    bukket: x\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("recording.s3.bukket"), std::string::npos)
      << c.status().ToString();
}

TEST_F(ServerConfigTest, FileThenEnvThenFlags) {
  std::string yaml =
      "listen: 127.0.0.1:4000\n"
      "recording:\n"
      "  storagePath: /from/file\n"
      "  gzip: true\n"
      "  formats:\n"
      "    tcpip: none\n"
      "    shell: asciinema\n"
      "  pcapIdleTimeout: 90s\n";
  auto a = Load(yaml);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->recording.storage_path, "/from/file");
  EXPECT_TRUE(a->recording.gzip);
  EXPECT_EQ(a->recording.formats.at("tcpip"), "none");
  EXPECT_EQ(a->recording.formats.at("shell"), "asciicast");
  EXPECT_EQ(a->recording.pcap_idle_timeout_us, 90'000'000);
  env_["MEZITE_RECORDING_STORAGE_PATH"] = "/from/env";
  env_["MEZITE_RECORDING_GZIP"] = "false";
  env_["MEZITE_RECORDING_FORMATS"] = "tcpip=pcap,exec=none";
  auto b = Load(yaml);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->recording.storage_path, "/from/env");
  EXPECT_FALSE(b->recording.gzip);
  EXPECT_EQ(b->recording.formats.at("tcpip"), "pcap");
  EXPECT_EQ(b->recording.formats.at("exec"), "none");
  ConfigFlags f;
  f.storage_path = "/from/flag";
  f.gzip = true;
  auto c = Load(yaml, f);
  EXPECT_EQ(c->recording.storage_path, "/from/flag");
  EXPECT_TRUE(c->recording.gzip);
  EXPECT_EQ(c->listen, "127.0.0.1:4000");
}

TEST_F(ServerConfigTest, ErrorsNameTheKey) {
  struct Case {
    std::string yaml;
    std::string key;
  } cases[] = {
      {"recordng: {}\n", "recordng"},
      {"recording:\n  gzipp: true\n", "recording.gzipp"},
      {"recording:\n  gzip: maybe\n", "recording.gzip"},
      {"recording:\n  storagePath: relative/dir\n", "recording.storagePath"},
      {"recording:\n  formats:\n    shell: mp4\n", "recording.formats.shell"},
      {"recording:\n  formats:\n    video: asciicast\n", "recording.formats"},
      {"recording:\n  pcapIdleTimeout: soon\n", "recording.pcapIdleTimeout"},
      {"recording:\n  encryption:\n    keyFile: /nonexistent\n",
       "recording.encryption.keyFile"},
      {"recording: [1, 2]\n", "recording"},
      {"listen: [a]\n", "listen"},
      {"key: value: other\n", "mezrecd.yaml"},
  };
  for (const Case& c : cases) {
    auto r = Load(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_NE(r.status().message().find(c.key), std::string::npos)
        << c.yaml << " -> " << r.status().message();
  }
}

TEST_F(ServerConfigTest, EncryptionKeyFromEnvOrFile) {
  std::string hex(64, 'a');
  env_["MEZITE_RECORDING_ENC_KEY"] = hex;
  auto a = Load("");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a->recording.encryption_key.has_value());
  EXPECT_EQ(*a->recording.encryption_key, std::string(32, '\xaa'));
  env_["MEZITE_RECORDING_ENC_KEY"] = hex.substr(0, 62);
  auto b = Load("");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("MEZITE_RECORDING_ENC_KEY"),
            std::string::npos);
  EXPECT_NE(b.status().message().find("openssl rand -hex 32"),
            std::string::npos);
  env_.clear();
  ASSERT_TRUE(AtomicWriteFile(dir_ + "/key", std::string(64, 'b') + "\n").ok());
  auto c = Load("recording:\n  encryption:\n    keyFile: " + dir_ + "/key\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(*c->recording.encryption_key, std::string(32, '\xbb'));
}

TEST_F(ServerConfigTest, InsecureOnlyOnLoopback) {
  ConfigFlags f;
  f.insecure = true;
  f.listen = "127.0.0.1:0";
  EXPECT_TRUE(Load("", f).ok());
  f.listen = "[::1]:3025";
  EXPECT_TRUE(Load("", f).ok());
  f.listen = "0.0.0.0:3025";
  auto r = Load("", f);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("loopback"), std::string::npos);
  f.insecure = false;
  EXPECT_TRUE(Load("", f).ok());
  f.listen = "no-port";
  EXPECT_FALSE(Load("", f).ok());
  f.listen = "127.0.0.1:99999";
  EXPECT_FALSE(Load("", f).ok());
}

TEST_F(ServerConfigTest, ReplicaLeaseTimeoutFileEnvFlagAndMinimum) {
  auto c = Load("");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->replica_lease_timeout_us, 60'000'000);
  c = Load("replicaLeaseTimeout: 2m\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->replica_lease_timeout_us, 120'000'000);
  env_["MEZITE_REPLICA_LEASE_TIMEOUT"] = "30s";
  c = Load("replicaLeaseTimeout: 2m\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->replica_lease_timeout_us, 30'000'000);
  ConfigFlags f;
  f.replica_lease_timeout = "2s";
  c = Load("replicaLeaseTimeout: 2m\n", f);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->replica_lease_timeout_us, 2'000'000);

  // Each source is named in its error.
  env_.clear();
  c = Load("replicaLeaseTimeout: 500ms\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("replicaLeaseTimeout"), std::string::npos)
      << c.status().ToString();
  EXPECT_NE(c.status().message().find("minimum of 1s"), std::string::npos);
  env_["MEZITE_REPLICA_LEASE_TIMEOUT"] = "60";
  c = Load("");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("MEZITE_REPLICA_LEASE_TIMEOUT"),
            std::string::npos)
      << c.status().ToString();
  env_.clear();
  f.replica_lease_timeout = "0s";
  c = Load("", f);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--replica-lease-timeout"),
            std::string::npos)
      << c.status().ToString();
}

}  // namespace
}  // namespace mez::server

namespace mez::server {
namespace {

TEST_F(ServerConfigTest, SeekIndexMinBytesFileEnvFlag) {
  auto c = Load("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->recording.seek_index_min_bytes, 16u << 20);
  c = Load("recording:\n  seekIndexMinBytes: 4MiB\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->recording.seek_index_min_bytes, 4u << 20);
  env_["MEZITE_SEEK_INDEX_MIN_BYTES"] = "1G";
  c = Load("recording:\n  seekIndexMinBytes: 4MiB\n");
  EXPECT_EQ(c->recording.seek_index_min_bytes, 1u << 30);
  ConfigFlags f;
  f.seek_index_min_bytes = "0";
  c = Load("", f);
  EXPECT_EQ(c->recording.seek_index_min_bytes, 0u);
  for (const char* bad : {"", "-1", "16 MiB", "1T", "9999999999999"}) {
    f.seek_index_min_bytes = bad;
    auto e = Load("", f);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_NE(e.status().message().find("--seek-index-min-bytes"),
              std::string::npos)
        << e.status().message();
  }
  env_.clear();
  auto y = Load("recording:\n  seekIndexMinBytes: lots\n");
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("recording.seekIndexMinBytes"),
            std::string::npos);
}

TEST_F(ServerConfigTest, TlsNamesFileEnvFlag) {
  auto c = Load("");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->tls_names.empty());
  c = Load("tlsNames: [auth.example, 10.0.0.5]\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->tls_names,
            (std::vector<std::string>{"auth.example", "10.0.0.5"}));
  c = Load("tlsNames: \"a.example, [2001:db8::1]\"\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->tls_names,
            (std::vector<std::string>{"a.example", "[2001:db8::1]"}));
  env_["MEZITE_TLS_NAMES"] = "env.example";
  c = Load("tlsNames: [auth.example]\n");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->tls_names, (std::vector<std::string>{"env.example"}));
  ConfigFlags f;
  f.tls_names = "flag.example,lb.example";
  c = Load("", f);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->tls_names,
            (std::vector<std::string>{"flag.example", "lb.example"}));
  // A name that would smuggle another subjectAltName is refused by key.
  f.tls_names = "ok.example,bad name/DNS:evil";
  auto e = Load("", f);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("--tls-names"), std::string::npos)
      << e.status().message();
  env_.clear();
  auto y = Load("tlsNames: [\"x y\"]\n");
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("tlsNames"), std::string::npos)
      << y.status().message();
}

}  // namespace
}  // namespace mez::server
