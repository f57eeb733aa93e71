// The AWS credentials chain against fake ECS and EC2 metadata services on
// 127.0.0.1 (there is no real EC2 here), the INI and JSON parsers, and
// refresh before expiry with a fake clock.
#include "libmez/store/s3_credentials.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "libmez/store/fake_http_server.h"
#include "libmez/store/s3_client.h"
#include "libmez/util/file.h"

namespace mez::store {
namespace {

bool Has(const Status& s, const std::string& part) {
  return s.message().find(part) != std::string::npos;
}

std::string Iso(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string CredJson(const std::string& id, int64_t expiration,
                     const std::string& token = "session-token") {
  return R"({"Code":"Success","Type":"AWS-HMAC","AccessKeyId":")" + id +
         R"(","SecretAccessKey":"secret-)" + id + R"(","Token":")" + token +
         R"(","Expiration":")" + Iso(expiration) + R"("})";
}

// A fake IMDSv2: the token must come back on every GET.
class FakeImds {
 public:
  explicit FakeImds(std::function<std::string()> creds)
      : creds_(std::move(creds)),
        server_([this](const FakeHttpRequest& r) { return Handle(r); }) {}
  std::string url() const { return server_.url(); }
  FakeHttpServer& server() { return server_; }
  std::atomic<int> credential_fetches{0};

 private:
  FakeHttpReply Handle(const FakeHttpRequest& r) {
    if (r.method == "PUT" && r.target == "/latest/api/token") {
      if (r.Header("x-aws-ec2-metadata-token-ttl-seconds").empty()) {
        return {400, "", false};
      }
      return {200, "imds-token", false};
    }
    if (r.Header("x-aws-ec2-metadata-token") != "imds-token") {
      return {401, "", false};
    }
    if (r.target == "/latest/meta-data/iam/security-credentials/") {
      return {200, "recorder-role\n", false};
    }
    if (r.target ==
        "/latest/meta-data/iam/security-credentials/recorder-role") {
      ++credential_fetches;
      return {200, creds_(), false};
    }
    return {404, "", false};
  }
  std::function<std::string()> creds_;
  FakeHttpServer server_;
};

class ChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mez-cred-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // Nothing from the real environment leaks in; no real 169.254.169.254.
    env_ = {{"HOME", dir_}, {"AWS_EC2_METADATA_DISABLED", "true"}};
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  CredentialChainOptions Options() {
    CredentialChainOptions o;
    o.getenv = [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
    o.clock = &clock_;
    return o;
  }
  void WriteCredentials(const std::string& text) {
    ASSERT_EQ(mkdir((dir_ + "/.aws").c_str(), 0700), 0);
    ASSERT_TRUE(AtomicWriteFile(dir_ + "/.aws/credentials", text, 0600).ok());
  }

  std::string dir_;
  std::map<std::string, std::string> env_;
  FakeClock clock_;
};

TEST(IniTest, ParsesProfilesCommentsAndNestedBlocks) {
  auto ini = ParseIni(
      "# comment\r\n"
      "; another\n"
      "[default]\n"
      "aws_access_key_id = AKID\r\n"
      "AWS_Secret_Access_Key=  s/e=cret  \n"
      "\n"
      "[ other ]\n"
      "aws_access_key_id = OTHER\n"
      "s3 =\n"
      "    max_concurrent_requests = 20\n"
      "aws_session_token = tok\n");
  ASSERT_TRUE(ini.ok()) << ini.status().ToString();
  EXPECT_EQ((*ini)["default"]["aws_access_key_id"], "AKID");
  EXPECT_EQ((*ini)["default"]["aws_secret_access_key"], "s/e=cret");
  EXPECT_EQ((*ini)["other"]["aws_access_key_id"], "OTHER");
  EXPECT_EQ((*ini)["other"]["aws_session_token"], "tok");
  EXPECT_EQ((*ini)["other"].count("max_concurrent_requests"), 0u);
  EXPECT_TRUE(ParseIni("").ok());
}

TEST(IniTest, MalformedInputGivesTheLine) {
  struct Case {
    std::string text;
    const char* want;
  } cases[] = {
      {"aws_access_key_id = x\n", "line 1: key before any [section]"},
      {"[default]\nnot a pair\n", "line 2: expected [section] or key = value"},
      {"[default\n", "line 1: section header without ']'"},
      {"[  ]\n", "line 1: empty section name"},
      {"[default]\n= v\n", "line 2: empty key"},
      {"[default]\n  indented\n", "line 2: indented line"},
      {std::string("[a]\nk = v\0x\n", 11), "line 2: NUL byte"},
  };
  for (const Case& c : cases) {
    auto ini = ParseIni(c.text);
    ASSERT_FALSE(ini.ok()) << c.text;
    EXPECT_EQ(ini.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(Has(ini.status(), c.want)) << ini.status().ToString();
  }
}

TEST(IniTest, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  const char alphabet[] = "[]=# ;\t\r\n\0ab";
  for (int i = 0; i < 5000; ++i) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = alphabet[rng() % (sizeof(alphabet) - 1)];
    auto ini = ParseIni(s);
    if (!ini.ok()) {
      EXPECT_TRUE(Has(ini.status(), "line ")) << s;
    }
  }
}

TEST(CredentialsJsonTest, ParsesAndRejectsMalformed) {
  auto c = ParseCredentialsJson(CredJson("AK", 1'700'003'600), "test");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key, "AK");
  EXPECT_EQ(c->secret_key, "secret-AK");
  EXPECT_EQ(c->session_token, "session-token");
  EXPECT_EQ(c->expiration, 1'700'003'600);

  const char* bad[] = {
      "",
      "not json",
      "[1,2]",
      R"({"AccessKeyId":"a"})",
      R"({"AccessKeyId":"a","SecretAccessKey":7})",
      R"({"Code":"Failed","Message":"no role","AccessKeyId":"a",)"
      R"("SecretAccessKey":"b"})",
      R"({"AccessKeyId":"a","SecretAccessKey":"b","Expiration":"soon"})",
      R"({"AccessKeyId":"a","SecretAccessKey":"b","Expiration":12})",
      R"({"AccessKeyId":"a","SecretAccessKey":"b","Token":"x\ny"})",
      R"({"AccessKeyId":"a","SecretAccessKey":"b")",
  };
  for (const char* b : bad) {
    auto r = ParseCredentialsJson(b, "the fake");
    ASSERT_FALSE(r.ok()) << b;
    EXPECT_EQ(r.status().code(), Code::kDataLoss) << b;
    EXPECT_TRUE(Has(r.status(), "the fake")) << r.status().ToString();
  }
}

TEST(CredentialsJsonTest, Iso8601) {
  EXPECT_EQ(*ParseIso8601("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseIso8601("2017-05-17T15:09:54Z"), 1495033794);
  EXPECT_EQ(*ParseIso8601("2017-05-17T15:09:54.123Z"), 1495033794);
  EXPECT_EQ(*ParseIso8601("2017-05-17T17:09:54+02:00"), 1495033794);
  for (const char* b :
       {"", "2017-05-17", "2017-13-17T15:09:54Z", "2017-05-17T15:09:54",
        "2017-05-17T15:09:54Zjunk", "2017-05-17T15:09:54.Z"}) {
    EXPECT_FALSE(ParseIso8601(b).ok()) << b;
  }
}

TEST_F(ChainTest, OrderExplicitEnvFileContainerInstance) {
  FakeImds imds([] { return CredJson("IMDS", 1'700'003'600); });
  FakeHttpServer ecs([](const FakeHttpRequest& r) {
    if (r.target != "/v2/creds" || r.Header("authorization") != "ecs-auth") {
      return FakeHttpReply{403, "", false};
    }
    return FakeHttpReply{200, CredJson("ECS", 1'700'003'600), false};
  });
  ASSERT_TRUE(ecs.ok());
  env_ = {{"HOME", dir_},
          {"AWS_ACCESS_KEY_ID", "ENV"},
          {"AWS_SECRET_ACCESS_KEY", "env-secret"},
          {"AWS_SESSION_TOKEN", "env-token"},
          {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds"},
          {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth"},
          {"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url()}};
  WriteCredentials(
      "[default]\naws_access_key_id = FILE\n"
      "aws_secret_access_key = file-secret\n");
  CredentialChainOptions o = Options();
  o.ecs_base = ecs.url();

  // 1. Explicit keys win over everything.
  o.explicit_access_key = "EXPLICIT";
  o.explicit_secret_key = "explicit-secret";
  auto p = ResolveCredentials(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Get()->access_key, "EXPLICIT");
  o.explicit_access_key.clear();
  o.explicit_secret_key.clear();

  // 2. The environment, with its session token.
  p = ResolveCredentials(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Get()->access_key, "ENV");
  EXPECT_EQ((*p)->Get()->session_token, "env-token");
  env_.erase("AWS_ACCESS_KEY_ID");
  env_.erase("AWS_SECRET_ACCESS_KEY");

  // 3. The shared credentials file.
  p = ResolveCredentials(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Get()->access_key, "FILE");
  EXPECT_TRUE((*p)->Get()->session_token.empty());
  EXPECT_NE((*p)->source().find(dir_ + "/.aws/credentials [default]"),
            std::string::npos);
  env_["AWS_SHARED_CREDENTIALS_FILE"] = dir_ + "/none";

  // 4. The ECS agent, with the authorization token.
  p = ResolveCredentials(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Get()->access_key, "ECS");
  EXPECT_EQ((*p)->Get()->session_token, "session-token");
  EXPECT_EQ((*p)->Get()->expiration, 1'700'003'600);
  env_.erase("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");

  // 5. EC2 instance metadata (IMDSv2).
  p = ResolveCredentials(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Get()->access_key, "IMDS");
  EXPECT_EQ((*p)->Get()->secret_key, "secret-IMDS");
  EXPECT_EQ((*p)->Get()->session_token, "session-token");
  auto reqs = imds.server().requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].Header("x-aws-ec2-metadata-token-ttl-seconds"), "21600");
  EXPECT_EQ(reqs[2].target,
            "/latest/meta-data/iam/security-credentials/recorder-role");

  // Nothing left: one message naming the settings and every step.
  env_["AWS_EC2_METADATA_DISABLED"] = "true";
  p = ResolveCredentials(o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kFailedPrecondition);
  for (const char* part :
       {"MEZITE_S3_ACCESS_KEY", "MEZITE_S3_SECRET_KEY", "AWS_ACCESS_KEY_ID",
        "shared credentials file", "ECS container credentials",
        "AWS_EC2_METADATA_DISABLED=true"}) {
    EXPECT_TRUE(Has(p.status(), part)) << part << ": " << p.status().ToString();
  }
}

TEST_F(ChainTest, ProfileAndFullUri) {
  WriteCredentials(
      "[default]\naws_access_key_id = D\n"
      "aws_secret_access_key = d\n"
      "[rec]\naws_access_key_id = R\naws_secret_access_key = r\n"
      "aws_session_token = rt\n");
  env_["AWS_PROFILE"] = "rec";
  auto p = ResolveCredentials(Options());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Get()->access_key, "R");
  EXPECT_EQ((*p)->Get()->session_token, "rt");

  // A named profile that is not there is an error, not a fall-through.
  env_["AWS_PROFILE"] = "missing";
  p = ResolveCredentials(Options());
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Has(p.status(), "'missing'")) << p.status().ToString();
  EXPECT_TRUE(Has(p.status(), "MEZITE_S3_ACCESS_KEY"));
  env_.erase("AWS_PROFILE");
  env_["AWS_SHARED_CREDENTIALS_FILE"] = dir_ + "/none";

  FakeHttpServer agent([](const FakeHttpRequest& r) {
    bool ok = r.Header("authorization") == "from-file";
    return FakeHttpReply{ok ? 200 : 403, CredJson("FULL", 1'700'003'600),
                         false};
  });
  ASSERT_TRUE(AtomicWriteFile(dir_ + "/token", "from-file\n", 0600).ok());
  env_["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = agent.url() + "/creds";
  env_["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = dir_ + "/token";
  p = ResolveCredentials(Options());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Get()->access_key, "FULL");

  // Plain http only to loopback.
  env_["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://192.0.2.1/creds";
  p = ResolveCredentials(Options());
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Has(p.status(), "must be https, or http to a loopback"))
      << p.status().ToString();
  env_["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1.evil/creds";
  EXPECT_FALSE(ResolveCredentials(Options()).ok());
}

TEST_F(ChainTest, BrokenSourcesStopTheChainWithAClearError) {
  FakeImds imds([] { return CredJson("IMDS", 1'700'003'600); });
  env_.erase("AWS_EC2_METADATA_DISABLED");
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url();

  // A malformed credentials file is reported, not skipped for IMDS.
  WriteCredentials("[default]\naws_access_key_id AKID\n");
  auto p = ResolveCredentials(Options());
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Has(p.status(), "malformed shared credentials file"));
  EXPECT_TRUE(Has(p.status(), "line 2")) << p.status().ToString();

  ASSERT_TRUE(AtomicWriteFile(dir_ + "/.aws/credentials",
                              "[default]\naws_access_key_id = A\n", 0600)
                  .ok());
  p = ResolveCredentials(Options());
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Has(p.status(), "no aws_secret_access_key"))
      << p.status().ToString();

  env_["AWS_ACCESS_KEY_ID"] = "only-the-id";
  p = ResolveCredentials(Options());
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Has(p.status(), "must be set together")) << p.status().ToString();
}

TEST_F(ChainTest, MalformedMetadataAnswers) {
  std::string answer;
  std::mutex mu;
  FakeImds imds([&] {
    std::lock_guard<std::mutex> lock(mu);
    return answer;
  });
  env_.erase("AWS_EC2_METADATA_DISABLED");
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url();
  for (const char* bad : {"{", "<html>oops</html>", R"({"Code":"Success"})",
                          R"({"Code":"AssumeRoleUnauthorizedAccess"})"}) {
    {
      std::lock_guard<std::mutex> lock(mu);
      answer = bad;
    }
    auto p = ResolveCredentials(Options());
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), Code::kDataLoss) << p.status().ToString();
    EXPECT_TRUE(Has(p.status(), "EC2 instance metadata"))
        << p.status().ToString();
  }
  // Keys that expired before they arrived are no use either.
  {
    std::lock_guard<std::mutex> lock(mu);
    answer = CredJson("OLD", 1'600'000'000);
  }
  auto p = ResolveCredentials(Options());
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Has(p.status(), "already expired")) << p.status().ToString();
}

TEST_F(ChainTest, NotOnEc2FailsFast) {
  // A port with nothing listening: refused at once. (A silent address
  // would take metadata_timeout_ms per request.)
  FakeHttpServer gone([](const FakeHttpRequest&) { return FakeHttpReply{}; });
  std::string url = gone.url();
  gone.Stop();
  env_.erase("AWS_EC2_METADATA_DISABLED");
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = url;
  auto p = ResolveCredentials(Options());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(Has(p.status(), "EC2 instance metadata " + url + ": no answer"))
      << p.status().ToString();
  EXPECT_TRUE(Has(p.status(), "MEZITE_S3_SECRET_KEY"));
}

TEST_F(ChainTest, InstanceCredentialsAreRefreshedBeforeExpiry) {
  const int64_t t0 = clock_.WallMicros() / 1'000'000;
  std::atomic<int> generation{1};
  FakeImds imds([&] {
    int g = generation.load();
    return CredJson("GEN" + std::to_string(g), t0 + 3600 * g);
  });
  env_.erase("AWS_EC2_METADATA_DISABLED");
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url();
  auto p = ResolveCredentials(Options());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Get()->access_key, "GEN1");
  EXPECT_EQ(imds.credential_fetches.load(), 1);

  // 6 minutes before expiry: still cached.
  clock_.Advance(int64_t{3600 - 360} * 1'000'000);
  EXPECT_EQ((*p)->Get()->access_key, "GEN1");
  EXPECT_EQ(imds.credential_fetches.load(), 1);

  // 4 minutes before: fetched again, from several threads at once.
  generation = 2;
  clock_.Advance(int64_t{120} * 1'000'000);
  std::vector<std::thread> threads;
  std::atomic<int> fresh{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto c = (*p)->Get();
      if (c.ok() && (c->access_key == "GEN2" || c->access_key == "GEN1")) {
        fresh += c->access_key == "GEN2";
      } else {
        ADD_FAILURE() << (c.ok() ? c->access_key : c.status().ToString());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ((*p)->Get()->access_key, "GEN2");
  EXPECT_EQ(imds.credential_fetches.load(), 2);
}

TEST(RefreshingTest, FailedRefreshKeepsValidKeysThenFails) {
  FakeClock clock;
  int fetches = 0;
  bool fail = false;
  auto p = RefreshingCredentials(
      [&]() -> Result<AwsCredentials> {
        ++fetches;
        if (fail) return Status(Code::kUnavailable, "metadata down");
        return AwsCredentials{"K", "S", "T",
                              clock.WallMicros() / 1'000'000 + 1000};
      },
      "test", &clock, 300);
  ASSERT_TRUE(p->Get().ok());
  EXPECT_EQ(fetches, 1);
  clock.Advance(int64_t{600} * 1'000'000);
  EXPECT_EQ(fetches, 1);
  clock.Advance(int64_t{200} * 1'000'000);  // 200 s left: refresh is due.
  fail = true;
  auto c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();  // The old keys still work.
  EXPECT_EQ(fetches, 2);
  EXPECT_TRUE(p->Get().ok());
  EXPECT_EQ(fetches, 2);  // Retried only after 10 s.
  clock.Advance(int64_t{11} * 1'000'000);
  EXPECT_TRUE(p->Get().ok());
  EXPECT_EQ(fetches, 3);
  clock.Advance(int64_t{300} * 1'000'000);  // Expired.
  c = p->Get();
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Has(c.status(), "metadata down"));
  fail = false;
  EXPECT_TRUE(p->Get().ok());

  // Keys without an expiry are fetched once.
  int once = 0;
  auto fixed = RefreshingCredentials(
      [&]() -> Result<AwsCredentials> {
        ++once;
        return AwsCredentials{"K", "S", "", std::nullopt};
      },
      "test", &clock);
  EXPECT_TRUE(fixed->Get().ok());
  clock.Advance(int64_t{1} << 50);
  EXPECT_TRUE(fixed->Get().ok());
  EXPECT_EQ(once, 1);
}

// The session token goes out as x-amz-security-token and is signed.
TEST(S3ClientTokenTest, SessionTokenIsSentAndSigned) {
  FakeHttpServer s3([](const FakeHttpRequest&) {
    return FakeHttpReply{200, "", false};
  });
  S3Options o;
  o.endpoint = s3.url();
  o.bucket = "b";
  o.force_path_style = true;
  o.credentials =
      StaticCredentials({"AK", "SK", "the-token", std::nullopt}, "test");
  auto client = S3Client::New(o);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE((*client)->PutObject("k", "data").ok());
  auto reqs = s3.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].Header("x-amz-security-token"), "the-token");
  std::string auth = reqs[0].Header("authorization");
  EXPECT_NE(auth.find("Credential=AK/"), std::string::npos) << auth;
  EXPECT_NE(auth.find("x-amz-security-token"), std::string::npos) << auth;

  // Without a token, no header.
  o.credentials = StaticCredentials({"AK", "SK", "", std::nullopt}, "test");
  client = S3Client::New(o);
  ASSERT_TRUE((*client)->PutObject("k", "data").ok());
  reqs = s3.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].headers.count("x-amz-security-token"), 0u);
}

}  // namespace
}  // namespace mez::store
