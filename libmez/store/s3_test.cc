// S3Client and S3Store against a real S3 server that checks SigV4
// signatures: OpenStack Swift + s3api on 127.0.0.1 (scripts/start-s3),
// started once for the whole binary.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "libmez/record/gzip.h"
#include "libmez/store/fake_http_server.h"
#include "libmez/store/s3_client.h"
#include "libmez/store/s3_credentials.h"
#include "libmez/store/s3_store.h"
#include "tests/s3_server.h"

namespace mez::store {
namespace {

testing::S3Server* server = nullptr;

class S3Environment : public ::testing::Environment {
 public:
  void SetUp() override { server = new testing::S3Server(MEZ_START_S3); }
  void TearDown() override {
    delete server;
    server = nullptr;
  }
};
[[maybe_unused]] auto* const env =
    ::testing::AddGlobalTestEnvironment(new S3Environment);

S3Options Options(const std::string& bucket) {
  S3Options o;
  o.endpoint = server->endpoint();
  o.region = server->region();
  o.access_key = server->access_key();
  o.secret_key = server->secret_key();
  o.bucket = bucket;
  o.force_path_style = true;
  o.initial_backoff_ms = 20;
  return o;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class S3Test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server->ok()) << server->error();
    // One bucket per test: "mez-" + the test's name, lowercased.
    std::string name =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    bucket_ = "mez-";
    for (char c : name) {
      bucket_ += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    auto c = S3Client::New(Options(bucket_));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(c).value();
    Status s = client_->CreateBucket();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::string bucket_;
  std::unique_ptr<S3Client> client_;
};

TEST_F(S3Test, WrongSecretIsRejectedWithAClearError) {
  S3Options o = Options(bucket_);
  o.secret_key = "not-the-secret";
  auto c = S3Client::New(o);
  ASSERT_TRUE(c.ok());
  Status s = (*c)->PutObject("k", "data");
  EXPECT_EQ(s.code(), Code::kUnauthenticated) << s.ToString();
  EXPECT_NE(s.message().find("check MEZITE_S3_SECRET_KEY"), std::string::npos)
      << s.ToString();
  EXPECT_NE(s.message().find("SignatureDoesNotMatch"), std::string::npos)
      << s.ToString();

  S3StoreOptions so;
  so.s3 = o;
  auto store = S3Store::New(so);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("MEZITE_S3_SECRET_KEY"),
            std::string::npos)
      << store.status().ToString();
}

TEST_F(S3Test, UnknownAccessKeyNamesTheSetting) {
  S3Options o = Options(bucket_);
  o.access_key = "nobody:none";
  auto c = S3Client::New(o);
  ASSERT_TRUE(c.ok());
  auto page = (*c)->ListObjectsV2("");
  ASSERT_FALSE(page.ok());
  // AWS says InvalidAccessKeyId; Swift's tempauth cannot tell an unknown
  // key from a bad signature. Either way the message names the key setting.
  EXPECT_EQ(page.status().code(), Code::kUnauthenticated);
  EXPECT_NE(page.status().message().find("MEZITE_S3_ACCESS_KEY"),
            std::string::npos)
      << page.status().ToString();
}

TEST_F(S3Test, MissingBucketNamesTheSetting) {
  S3StoreOptions so;
  so.s3 = Options("mez-no-such-bucket");
  auto store = S3Store::New(so);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(store.status().message().starts_with(
      "bucket mez-no-such-bucket does not exist: check MEZITE_S3_BUCKET"))
      << store.status().ToString();
}

TEST_F(S3Test, UnreachableEndpointIsRetriedThenNamesTheSetting) {
  S3Options o = Options(bucket_);
  o.endpoint = "http://127.0.0.1:1";
  o.max_attempts = 3;
  auto c = S3Client::New(o);
  ASSERT_TRUE(c.ok());
  auto start = std::chrono::steady_clock::now();
  auto head = (*c)->HeadObject("k");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().code(), Code::kUnavailable);
  EXPECT_NE(head.status().message().find("after 3 attempts"), std::string::npos)
      << head.status().ToString();
  EXPECT_NE(head.status().message().find("check MEZITE_S3_ENDPOINT"),
            std::string::npos);
  // Two backoffs: 20 ms + 40 ms at least.
  EXPECT_GE(took, std::chrono::milliseconds(60));
}

TEST_F(S3Test, PutGetRangeHeadDelete) {
  std::string data = RandomBytes(100'000, 1);
  std::string key = "alice/shell/odd key+(1)&=.cast";
  ASSERT_TRUE(client_->PutObject(key, data).ok());

  auto all = client_->GetObject(key);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, data);
  auto mid = client_->GetObject(key, 1000, 500);
  ASSERT_TRUE(mid.ok()) << mid.status().ToString();
  EXPECT_EQ(*mid, data.substr(1000, 500));
  auto tail = client_->GetObject(key, 99'990);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_EQ(*tail, data.substr(99'990));
  auto past = client_->GetObject(key, 200'000, 10);
  ASSERT_TRUE(past.ok()) << past.status().ToString();
  EXPECT_EQ(*past, "");

  auto head = client_->HeadObject(key);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, data.size());
  EXPECT_FALSE(head->etag.empty());

  ASSERT_TRUE(client_->DeleteObject(key).ok());
  auto gone = client_->HeadObject(key);
  EXPECT_EQ(gone.status().code(), Code::kNotFound) << gone.status().ToString();
  auto get_gone = client_->GetObject(key);
  EXPECT_EQ(get_gone.status().code(), Code::kNotFound);
}

TEST_F(S3Test, ListFollowsContinuationTokens) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(
        client_->PutObject("p/k" + std::to_string(i), std::string(i, 'x'))
            .ok());
  }
  ASSERT_TRUE(client_->PutObject("other", "x").ok());
  auto first = client_->ListObjectsV2("p/", "", 3);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->objects.size(), 3u);
  EXPECT_TRUE(first->truncated);
  EXPECT_FALSE(first->next_continuation_token.empty());
  auto second = client_->ListObjectsV2("p/", first->next_continuation_token, 3);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_EQ(second->objects.size(), 3u);
  EXPECT_EQ(second->objects[0].key, "p/k3");

  auto all = client_->ListAll("p/");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 7u);
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ((*all)[i].key, "p/k" + std::to_string(i));
    EXPECT_EQ((*all)[i].size, static_cast<uint64_t>(i));
  }
}

TEST_F(S3Test, MultipartUploadCanBeAborted) {
  std::string key = "big/aborted";
  auto id = client_->CreateMultipartUpload(key);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto etag = client_->UploadPart(key, *id, 1, RandomBytes(5 << 20, 2));
  ASSERT_TRUE(etag.ok()) << etag.status().ToString();
  auto uploads = client_->ListMultipartUploads("big/");
  ASSERT_TRUE(uploads.ok()) << uploads.status().ToString();
  ASSERT_EQ(uploads->size(), 1u);
  EXPECT_EQ((*uploads)[0].upload_id, *id);

  ASSERT_TRUE(client_->AbortMultipartUpload(key, *id).ok());
  uploads = client_->ListMultipartUploads("big/");
  ASSERT_TRUE(uploads.ok());
  EXPECT_TRUE(uploads->empty());
  Status done = client_->CompleteMultipartUpload(key, *id, {{1, *etag}});
  EXPECT_EQ(done.code(), Code::kNotFound) << done.ToString();
  EXPECT_EQ(client_->HeadObject(key).status().code(), Code::kNotFound);
}

TEST_F(S3Test, StoreWritesLargeObjectsInPartsAndReadsThemWithRanges) {
  S3StoreOptions so;
  so.s3 = Options(bucket_);
  so.read_chunk_size = 1 << 20;
  auto store = S3Store::New(so);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::string data = RandomBytes(12'000'000, 3);
  auto sink = (*store)->Create("alice/shell/big.cast");
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  for (size_t off = 0; off < data.size(); off += 65536) {
    ASSERT_TRUE(
        (*sink)->Append(std::string_view(data).substr(off, 65536)).ok());
  }
  // Two full 5 MiB parts are on their way (the store's upload threads
  // begin the multipart upload), but nothing is visible yet.
  auto uploads = client_->ListMultipartUploads("alice/");
  for (int i = 0; i < 3000; ++i) {
    uploads = client_->ListMultipartUploads("alice/");
    ASSERT_TRUE(uploads.ok()) << uploads.status().ToString();
    if (!uploads->empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(uploads->size(), 1u);
  EXPECT_FALSE(*(*store)->Exists("alice/shell/big.cast"));
  Status closed = (*sink)->Close();
  ASSERT_TRUE(closed.ok()) << closed.ToString();
  EXPECT_EQ((*sink)->bytes_written(), data.size());

  // A multipart object's ETag ends in "-<number of parts>".
  auto head = client_->HeadObject("alice/shell/big.cast");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, data.size());
  EXPECT_NE(head->etag.find("-3"), std::string::npos) << head->etag;

  auto src = (*store)->Open("alice/shell/big.cast");
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  std::string back;
  char buf[100'000];
  for (;;) {
    auto n = (*src)->Read(buf, sizeof(buf));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
    back.append(buf, *n);
  }
  EXPECT_TRUE(back == data) << "read back " << back.size() << " bytes";
}

// With a spool directory (as mezrecd runs it): bytes go to local disk first
// and leave as parts. A process killed mid-recording (after two parts went
// up) leaves a spool; the next S3Store::New aborts the half-done multipart
// upload and completes the object from the spool, byte-identical.
TEST_F(S3Test, SpooledRecordingIsCompletedAfterAKill) {
  char tmpl[] = "/tmp/mez_s3_spool.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string spool = std::string(tmpl) + "/spool";
  S3StoreOptions so;
  so.s3 = Options(bucket_);
  so.spool_dir = spool;
  std::string data = RandomBytes(12'000'000, 7);

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Parts upload inside Append, so that two are up when the kill comes.
    so.upload_threads = 0;
    auto store = S3Store::New(so);
    if (!store.ok()) _exit(2);
    auto sink = (*store)->Create("alice/shell/killed.cast");
    if (!sink.ok()) _exit(3);
    for (size_t off = 0; off < data.size(); off += 65536) {
      if (!(*sink)->Append(std::string_view(data).substr(off, 65536)).ok()) {
        _exit(4);
      }
    }
    kill(getpid(), SIGKILL);  // No Close, no destructors: a crash.
    _exit(5);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exit " << WEXITSTATUS(status);
  auto uploads = client_->ListMultipartUploads("alice/");
  ASSERT_TRUE(uploads.ok());
  EXPECT_EQ(uploads->size(), 1u);  // Two parts up, never completed.
  EXPECT_FALSE(client_->HeadObject("alice/shell/killed.cast").ok());

  auto store = S3Store::New(so);  // The restart.
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto got = client_->GetObject("alice/shell/killed.cast");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data) << got->size() << " bytes";
  uploads = client_->ListMultipartUploads("alice/");
  ASSERT_TRUE(uploads.ok());
  EXPECT_EQ(uploads->size(), 0u);
  EXPECT_EQ(std::system(("test -z \"$(ls -A " + spool + ")\"").c_str()), 0)
      << "spool left behind";

  // A normal close through the spool leaves nothing behind either.
  auto sink = (*store)->Create("alice/shell/closed.cast");
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE(
      (*sink)->Append(std::string_view(data).substr(0, 6'000'000)).ok());
  ASSERT_TRUE((*sink)->Sync().ok());
  ASSERT_TRUE((*sink)->Close().ok());
  auto head = client_->HeadObject("alice/shell/closed.cast");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->size, 6'000'000u);
  EXPECT_EQ(std::system(("test -z \"$(ls -A " + spool + ")\"").c_str()), 0);
  std::system(("rm -rf " + std::string(tmpl)).c_str());
}

TEST_F(S3Test, StoreKeepsKeysUnderItsPrefix) {
  S3StoreOptions so;
  so.s3 = Options(bucket_);
  so.prefix = "team1/recordings";
  auto s = S3Store::New(so);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  S3Store& store = **s;
  EXPECT_EQ(store.Describe("alice/exec/s1.cast"),
            "s3://" + bucket_ + "/team1/recordings/alice/exec/s1.cast");

  auto sink = store.Create("alice/exec/s1.cast");
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  ASSERT_TRUE((*sink)->Append("small").ok());
  ASSERT_TRUE((*sink)->Close().ok());

  auto listed = client_->ListAll("");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, "team1/recordings/alice/exec/s1.cast");

  EXPECT_TRUE(*store.Exists("alice/exec/s1.cast"));
  EXPECT_FALSE(*store.Exists("alice/exec/s2.cast"));
  EXPECT_EQ(store.Create("alice/exec/s1.cast").status().code(),
            Code::kAlreadyExists);
  EXPECT_EQ(store.Create("../escape").status().code(), Code::kInvalidArgument);

  auto src = store.Open("alice/exec/s1.cast");
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  char buf[16];
  auto n = (*src)->Read(buf, sizeof(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "small");

  EXPECT_TRUE(store.Delete("alice/exec/s1.cast").ok());
  EXPECT_EQ(store.Delete("alice/exec/s1.cast").code(), Code::kNotFound);
  EXPECT_EQ(store.Open("alice/exec/s1.cast").status().code(), Code::kNotFound);
}

TEST_F(S3Test, EmptyObjectIsWrittenAtClose) {
  S3StoreOptions so;
  so.s3 = Options(bucket_);
  auto store = S3Store::New(so);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  {
    auto sink = (*store)->Create("alice/tcpip/empty.pcap");
    ASSERT_TRUE(sink.ok());
    // Destroyed without Close: what was appended (nothing) is kept.
  }
  auto head = client_->HeadObject("alice/tcpip/empty.pcap");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, 0u);
  auto src = (*store)->Open("alice/tcpip/empty.pcap");
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  char buf[4];
  auto n = (*src)->Read(buf, sizeof(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

TEST_F(S3Test, GzipObjectsAreDecompressedOnOpen) {
  S3StoreOptions so;
  so.s3 = Options(bucket_);
  auto store = S3Store::New(so);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto sink = (*store)->Create("alice/shell/s.cast.gz");
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  auto gz = record::GzipSink::Create(std::move(sink).value());
  ASSERT_TRUE(gz.ok());
  std::string text(300'000, 'x');
  ASSERT_TRUE((*gz)->Append(text).ok());
  ASSERT_TRUE((*gz)->Close().ok());

  auto raw = client_->GetObject("alice/shell/s.cast.gz", 0, 2);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(*raw, "\x1f\x8b");
  auto src = (*store)->Open("alice/shell/s.cast.gz");
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  std::string back;
  char buf[8192];
  for (;;) {
    auto n = (*src)->Read(buf, sizeof(buf));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
    back.append(buf, *n);
  }
  EXPECT_EQ(back, text);
}

std::string ReadAll(record::ByteSource* src) {
  std::string out;
  char buf[65536];
  for (;;) {
    auto n = src->Read(buf, sizeof(buf));
    if (!n.ok() || *n == 0) return out;
    out.append(buf, *n);
  }
}

std::string TempDir() {
  char tmpl[] = "/tmp/mez-s3-XXXXXX";
  return mkdtemp(tmpl) ? tmpl : "";
}

// The EC2 metadata service (a loopback fake: there is no EC2 here) hands
// out the real Swift keys, with or without a session token; the store signs
// with them and round-trips a multipart object through the real server.
// Swift's s3api accepts x-amz-security-token and checks it as a signed
// header (it does not validate the token itself).
TEST_F(S3Test, InstanceMetadataCredentialsWorkAgainstRealServer) {
  for (std::string token : {"imds-session-token", ""}) {
    SCOPED_TRACE("token '" + token + "'");
    FakeHttpServer imds([&token](const FakeHttpRequest& r) {
      if (r.method == "PUT") return FakeHttpReply{200, "t", false};
      if (r.Header("x-aws-ec2-metadata-token") != "t") {
        return FakeHttpReply{401, "", false};
      }
      if (r.target.ends_with("/security-credentials/")) {
        return FakeHttpReply{200, "rec-role", false};
      }
      std::string json = R"({"Code":"Success","AccessKeyId":")" +
                         server->access_key() + R"(","SecretAccessKey":")" +
                         server->secret_key() + R"(")";
      if (!token.empty()) {
        json += R"(,"Token":")" + token +
                R"(","Expiration":"2999-01-01T00:00:00Z")";
      }
      return FakeHttpReply{200, json + "}", false};
    });
    std::map<std::string, std::string> vars = {
        {"HOME", "/nonexistent"},
        {"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url()}};
    CredentialChainOptions chain;
    chain.getenv = [&vars](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
    auto provider = ResolveCredentials(chain);
    ASSERT_TRUE(provider.ok()) << provider.status().ToString();
    EXPECT_EQ((*provider)->Get()->session_token, token);

    S3StoreOptions so;
    so.s3 = Options(bucket_);
    so.s3.access_key.clear();
    so.s3.secret_key.clear();
    so.s3.credentials = std::move(provider).value();
    so.prefix = token.empty() ? "plain" : "token";
    auto store = S3Store::New(so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::string data = RandomBytes((6 << 20) + 123, 11);
    auto sink = (*store)->Create("alice/imds.cast");
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    ASSERT_TRUE((*sink)->Append(data).ok());
    Status closed = (*sink)->Close();
    ASSERT_TRUE(closed.ok()) << closed.ToString();
    auto src = (*store)->Open("alice/imds.cast");
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    EXPECT_TRUE(ReadAll(src->get()) == data);
  }
}

// A part upload that hangs (an endpoint that takes the request and never
// answers) does not hold up the writer: Append hands parts to the store's
// upload threads, and the same thread goes on to write another recording
// through the real server. Were uploads synchronous, the first Append
// would block until the watchdog released the hang, and the test fails.
// The hung object's error then comes out of its own Flush, Append and
// Close.
TEST_F(S3Test, HungPartUploadDoesNotBlockTheWriter) {
  FakeHttpServer hang([](const FakeHttpRequest& r) {
    if (r.method == "HEAD") return FakeHttpReply{404, "", false};
    return FakeHttpReply{0, "", true};
  });
  ASSERT_TRUE(hang.ok());
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::atomic<bool> watchdog_fired{false};
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(90), [&] { return done; })) {
      watchdog_fired = true;
      hang.Stop();
    }
  });
  std::string slow_spool = TempDir(), fast_spool = TempDir();
  ASSERT_FALSE(slow_spool.empty());
  ASSERT_FALSE(fast_spool.empty());

  S3StoreOptions slow_opt;
  slow_opt.s3 = Options("hang");
  slow_opt.s3.endpoint = hang.url();
  slow_opt.s3.max_attempts = 1;
  slow_opt.s3.stall_timeout_ms = 600'000;
  slow_opt.check_bucket = false;
  slow_opt.spool_dir = slow_spool;
  auto slow_store = S3Store::New(slow_opt);
  ASSERT_TRUE(slow_store.ok()) << slow_store.status().ToString();
  S3StoreOptions fast_opt;
  fast_opt.s3 = Options(bucket_);
  fast_opt.spool_dir = fast_spool;
  auto fast_store = S3Store::New(fast_opt);
  ASSERT_TRUE(fast_store.ok()) << fast_store.status().ToString();

  auto slow = (*slow_store)->Create("slow/a.cast");
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  // Two full parts: both queued (max_parts_in_flight), neither waited for.
  std::string part = RandomBytes(5 << 20, 1);
  ASSERT_TRUE((*slow)->Append(part).ok());
  ASSERT_TRUE((*slow)->Append(part).ok());
  ASSERT_TRUE((*slow)->Flush().ok());

  std::string data = RandomBytes((12 << 20) + 7, 2);
  auto fast = (*fast_store)->Create("fast/b.cast");
  ASSERT_TRUE(fast.ok()) << fast.status().ToString();
  for (size_t off = 0; off < data.size(); off += 1 << 20) {
    ASSERT_TRUE((*fast)->Append(data.substr(off, 1 << 20)).ok());
  }
  Status fast_closed = (*fast)->Close();
  ASSERT_TRUE(fast_closed.ok()) << fast_closed.ToString();
  auto src = (*fast_store)->Open("fast/b.cast");
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  EXPECT_TRUE(ReadAll(src->get()) == data);
  EXPECT_FALSE(watchdog_fired.load())
      << "the writer waited for the hung upload";

  // Release the hang: the slow object's upload fails, and says so.
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  hang.Stop();
  Status flushed;
  for (int i = 0; i < 6000 && flushed.ok(); ++i) {
    flushed = (*slow)->Flush();
    if (flushed.ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ASSERT_FALSE(flushed.ok());
  EXPECT_EQ(flushed.code(), Code::kUnavailable) << flushed.ToString();
  EXPECT_NE(flushed.message().find("MEZITE_S3_ENDPOINT"), std::string::npos)
      << flushed.ToString();
  EXPECT_EQ((*slow)->Append("more").code(), Code::kUnavailable);
  Status slow_closed = (*slow)->Close();
  EXPECT_EQ(slow_closed.code(), Code::kUnavailable) << slow_closed.ToString();
  slow->reset();
  // The spool of the failed object stays for recovery at the next start.
  std::string cmd = "ls " + slow_spool + " | grep -q '.spool.meta$'";
  EXPECT_EQ(system(cmd.c_str()), 0);
  for (const std::string& d : {slow_spool, fast_spool}) {
    std::string rm = "rm -rf '" + d + "'";
    EXPECT_EQ(system(rm.c_str()), 0);
  }
}

// A part upload answered NoSuchUpload: when the bucket itself is gone
// (Swift's s3api deletes a bucket's unfinished uploads with it), the
// object's error is the missing bucket, naming MEZITE_S3_BUCKET; when
// the bucket is there, it stays NoSuchUpload.
TEST(S3StoreLostUpload, NamesTheBucketSettingWhenTheBucketIsGone) {
  for (bool bucket_gone : {true, false}) {
    SCOPED_TRACE(bucket_gone ? "bucket gone" : "bucket there");
    FakeHttpServer fake([bucket_gone](const FakeHttpRequest& r) {
      auto has = [&r](const char* s) {
        return r.target.find(s) != std::string::npos;
      };
      if (r.method == "HEAD") return FakeHttpReply{404, "", false};
      if (r.method == "DELETE") return FakeHttpReply{204, "", false};
      if (r.method == "POST" && has("uploads")) {
        return FakeHttpReply{200,
                             "<InitiateMultipartUploadResult><UploadId>u-1"
                             "</UploadId></InitiateMultipartUploadResult>",
                             false};
      }
      if (r.method == "PUT" && has("partNumber")) {
        return FakeHttpReply{404,
                             "<Error><Code>NoSuchUpload</Code><Message>gone"
                             "</Message></Error>",
                             false};
      }
      if (r.method == "GET" && has("list-type") && bucket_gone) {
        return FakeHttpReply{404,
                             "<Error><Code>NoSuchBucket</Code><Message>no"
                             "</Message></Error>",
                             false};
      }
      if (r.method == "GET" && has("list-type")) {
        return FakeHttpReply{200,
                             "<ListBucketResult><IsTruncated>false"
                             "</IsTruncated></ListBucketResult>",
                             false};
      }
      return FakeHttpReply{500, "", false};
    });
    ASSERT_TRUE(fake.ok());
    S3StoreOptions o;
    o.s3.endpoint = fake.url();
    o.s3.bucket = "recs";
    o.s3.access_key = "AKID";
    o.s3.secret_key = "secret";
    o.s3.force_path_style = true;
    o.s3.max_attempts = 1;
    o.check_bucket = false;
    o.upload_threads = 0;  // The part is uploaded inside Append.
    auto store = S3Store::New(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto sink = (*store)->Create("alice/shell/s.cast");
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    (void)(*sink)->Append(RandomBytes(5 << 20, 3));
    Status flushed = (*sink)->Flush();
    if (bucket_gone) {
      EXPECT_EQ(flushed.code(), Code::kFailedPrecondition)
          << flushed.ToString();
      EXPECT_TRUE(flushed.message().starts_with(
          "bucket recs does not exist: check MEZITE_S3_BUCKET"))
          << flushed.ToString();
    } else {
      EXPECT_EQ(flushed.code(), Code::kNotFound) << flushed.ToString();
      EXPECT_NE(flushed.message().find("no longer exists"), std::string::npos)
          << flushed.ToString();
      EXPECT_NE(flushed.message().find("MEZITE_S3_BUCKET"), std::string::npos)
          << flushed.ToString();
    }
    EXPECT_EQ((*sink)->Close().code(), flushed.code());
    sink->reset();
  }
}

}  // namespace
}  // namespace mez::store
