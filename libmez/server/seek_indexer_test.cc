// mezrecd's seek indexer over a real local store: it builds the index of a
// recording that ended (only of those large enough, shell or exec,
// complete), seals it like the recording, serves it back, refuses a damaged
// or misplaced one, builds a missing one when asked, and goes with the
// recording when that is deleted.
#include "libmez/server/seek_indexer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "libmez/play/play_test_util.h"
#include "libmez/play/seek_index_file.h"
#include "libmez/util/file.h"
#include "tests/test_util.h"

namespace mez::server {
namespace {

const std::string kKey(32, '\x5a');

std::string Cast(const std::optional<std::string>& key = std::nullopt,
                 const std::string& id = "s1") {
  play::Events events;
  for (int i = 0; i < 400; ++i) {
    events.push_back({i * 100'000, "\033[3" + std::to_string(i % 8) + "mline " +
                                       std::to_string(i) +
                                       std::string(2000, '.') + "\033[m\r\n"});
  }
  record::AsciicastOptions o;
  o.key = key;
  o.session_id = id;
  return play::MakeCast(events, 80, 24, o);
}

bool Write(const std::string& path, const std::string& data) {
  return AtomicWriteFile(path, data, 0640).ok();
}

bool WaitFor(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

class SeekIndexerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(store::LocalStore::New(dir_.File("rec")).value());
  }
  catalog::Session Put(const std::string& id, const std::string& cast,
                       bool encrypted = false) {
    catalog::Session s;
    s.id = id;
    s.kind = "shell";
    s.format = "asciicast-v2";
    s.status = catalog::SessionStatus::kComplete;
    s.storage_key = "alice/shell/" + id + ".cast";
    s.bytes = cast.size();
    s.encrypted = encrypted;
    auto sink = store_->Create(s.storage_key);
    EXPECT_TRUE(sink.ok());
    EXPECT_TRUE((*sink)->Append(cast).ok());
    EXPECT_TRUE((*sink)->Close().ok());
    return s;
  }
  std::string IndexPath(const catalog::Session& s) {
    return dir_.File("rec/" + store::SeekIndexKey(s.storage_key));
  }
  std::unique_ptr<SeekIndexer> Indexer(
      std::optional<std::string> key = std::nullopt, uint64_t min = 1000) {
    SeekIndexerOptions o;
    o.store = store_.get();
    o.encryption_key = std::move(key);
    o.min_bytes = min;
    return std::make_unique<SeekIndexer>(std::move(o));
  }

  mez::testing::TempDir dir_;
  std::unique_ptr<store::LocalStore> store_;
};

TEST_F(SeekIndexerTest, BuildsStoresAndServesTheIndexOfAnEndedRecording) {
  auto ix = Indexer();
  catalog::Session s = Put("s1", Cast());
  ix->Ended(s);
  ASSERT_TRUE(WaitFor([&] { return ix->built() == 1; }));
  EXPECT_TRUE(*store_->Exists(store::SeekIndexKey(s.storage_key)));
  EXPECT_EQ(ReadFile(IndexPath(s))->substr(0, 9), "MEZSEEK1p");
  auto body = ix->Read(s);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  auto index = play::ParseSeekIndex(*body);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ(index->end_us, 39'900'000);
  // One every 256 KiB of the ~800 KiB, and the first.
  EXPECT_GE(index->checkpoints.size(), 4u);
  // Ended again (an upload replayed): nothing is built twice.
  ix->Ended(s);
  ASSERT_TRUE(WaitFor([&] { return ix->pending() == 0; }));
  EXPECT_EQ(ix->built(), 1u);
}

TEST_F(SeekIndexerTest, OnlyCompleteShellAndExecRecordingsAboveTheSize) {
  auto ix = Indexer(std::nullopt, 1 << 20);
  catalog::Session small = Put("small", Cast());  // ~800 KiB
  ix->Ended(small);
  catalog::Session big = Put("big", Cast());
  big.bytes = 2 << 20;
  catalog::Session incomplete = big;
  incomplete.id = "inc";
  incomplete.status = catalog::SessionStatus::kIncomplete;
  catalog::Session pcap = big;
  pcap.id = "pcap";
  pcap.kind = "tcpip";
  pcap.format = "pcap";
  ix->Ended(incomplete);
  ix->Ended(pcap);
  ix->Ended(big);
  ASSERT_TRUE(WaitFor([&] { return ix->built() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return ix->pending() == 0; }));
  EXPECT_EQ(ix->built(), 1u);
  EXPECT_FALSE(*store_->Exists(store::SeekIndexKey(small.storage_key)));
  EXPECT_TRUE(*store_->Exists(store::SeekIndexKey(big.storage_key)));
  // Off: no thread, nothing queued, nothing served.
  auto off = Indexer(std::nullopt, 0);
  off->Ended(big);
  EXPECT_EQ(off->pending(), 0u);
}

TEST_F(SeekIndexerTest, MissingIndexIsNotFoundAndBuiltOnceAskedFor) {
  auto ix = Indexer();
  catalog::Session s = Put("s1", Cast());
  EXPECT_EQ(ix->Read(s).status().code(), Code::kNotFound);
  ASSERT_TRUE(WaitFor([&] { return ix->built() == 1; }));
  EXPECT_TRUE(ix->Read(s).ok());
}

TEST_F(SeekIndexerTest, EncryptedRecordingsGetASealedIndexBoundToTheSession) {
  auto ix = Indexer(kKey);
  catalog::Session a = Put("sa", Cast(kKey, "sa"), true);
  catalog::Session b = Put("sb", Cast(kKey, "sb"), true);
  ix->Ended(a);
  ix->Ended(b);
  ASSERT_TRUE(WaitFor([&] { return ix->built() == 2; }));
  std::string file = *ReadFile(IndexPath(a));
  EXPECT_EQ(file.substr(0, 9), "MEZSEEK1e");
  EXPECT_EQ(file.find("line 1"), std::string::npos);
  ASSERT_TRUE(ix->Read(a).ok());
  // Session b's index put in place of a's: refused.
  ASSERT_TRUE(Write(IndexPath(a), *ReadFile(IndexPath(b))));
  EXPECT_EQ(ix->Read(a).status().code(), Code::kDataLoss);
  // One byte changed: refused.
  std::string bad = *ReadFile(IndexPath(b));
  bad[bad.size() / 2] ^= 0x20;
  ASSERT_TRUE(Write(IndexPath(b), bad));
  EXPECT_EQ(ix->Read(b).status().code(), Code::kDataLoss);
  // An unsealed index where recordings are sealed: refused.
  auto plain = play::EncodeSeekIndexFile("x", std::nullopt, "sa");
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(Write(IndexPath(a), *plain));
  EXPECT_EQ(ix->Read(a).status().code(), Code::kDataLoss);
}

// A store whose Exists waits until released: holds the worker on a job.
class GatedStore : public store::BlobStore {
 public:
  explicit GatedStore(store::BlobStore* inner) : inner_(inner) {}
  Result<std::unique_ptr<record::ByteSink>> Create(
      const std::string& key) override {
    return inner_->Create(key);
  }
  Result<std::unique_ptr<record::ByteSource>> Open(
      const std::string& key) override {
    return inner_->Open(key);
  }
  Result<bool> Exists(const std::string& key) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.wait(lock, [this] { return open_; });
    return inner_->Exists(key);
  }
  Status Delete(const std::string& key) override { return inner_->Delete(key); }
  std::string Describe(const std::string& key) const override {
    return inner_->Describe(key);
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  int waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_;
  }

 private:
  store::BlobStore* inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

TEST_F(SeekIndexerTest, TheQueueIsBoundedAndEndingNeverWaits) {
  GatedStore gated(store_.get());
  SeekIndexerOptions o;
  o.store = &gated;
  o.min_bytes = 1000;
  o.max_queue = 2;
  auto ix = std::make_unique<SeekIndexer>(std::move(o));
  std::vector<catalog::Session> sessions;
  for (int i = 0; i < 5; ++i) {
    sessions.push_back(Put("q" + std::to_string(i), Cast()));
  }
  ix->Ended(sessions[0]);
  ASSERT_TRUE(WaitFor([&] { return gated.waiting() == 1; }));  // Running.
  for (int i = 1; i < 5; ++i) ix->Ended(sessions[i]);  // Returns at once.
  EXPECT_EQ(ix->pending(), 3u);  // The running one and two queued.
  gated.Open();
  ASSERT_TRUE(WaitFor([&] { return ix->pending() == 0; }));
  EXPECT_EQ(ix->built(), 3u);
  EXPECT_FALSE(*store_->Exists(store::SeekIndexKey(sessions[4].storage_key)));
  // Stopping abandons what waits.
  ix.reset();
}

TEST_F(SeekIndexerTest, DeletingARecordingDeletesItsIndex) {
  auto ix = Indexer();
  catalog::Session s = Put("s1", Cast());
  ix->Ended(s);
  ASSERT_TRUE(WaitFor([&] { return ix->built() == 1; }));
  ASSERT_TRUE(store::DeleteRecording(store_.get(), s.storage_key).ok());
  EXPECT_FALSE(*store_->Exists(s.storage_key));
  EXPECT_FALSE(*store_->Exists(store::SeekIndexKey(s.storage_key)));
  // No index: the recording still goes.
  catalog::Session t = Put("s2", Cast());
  EXPECT_TRUE(store::DeleteRecording(store_.get(), t.storage_key).ok());
  EXPECT_EQ(store::DeleteRecording(store_.get(), t.storage_key).code(),
            Code::kNotFound);
}

}  // namespace
}  // namespace mez::server
