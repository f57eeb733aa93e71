#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "libmez/store/blob_store.h"
#include "libmez/util/file.h"

namespace mez::store {
namespace {

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mez_store_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = LocalStore::New(dir_ + "/rec");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    ASSERT_EQ(std::system(("rm -rf " + dir_).c_str()), 0);
  }
  std::string dir_;
  std::unique_ptr<LocalStore> store_;
};

TEST_F(LocalStoreTest, CreatesInTheLayoutAndReadsBack) {
  auto sink = store_->Create("alice/shell/s1.cast");
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  ASSERT_TRUE((*sink)->Append("data").ok());
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ(*ReadFile(dir_ + "/rec/alice/shell/s1.cast"), "data");
  EXPECT_TRUE(*store_->Exists("alice/shell/s1.cast"));
  EXPECT_FALSE(*store_->Exists("alice/shell/s2.cast"));
  auto again = store_->Create("alice/shell/s1.cast");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
}

TEST_F(LocalStoreTest, DeleteRemovesOneObjectInsideTheRoot) {
  auto sink = store_->Create("alice/shell/s1.cast");
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  ASSERT_TRUE((*sink)->Close().ok());
  ASSERT_TRUE(AtomicWriteFile(dir_ + "/outside", "keep").ok());
  EXPECT_FALSE(store_->Delete("../outside").ok());
  EXPECT_FALSE(store_->Delete("alice/../../outside").ok());
  EXPECT_EQ(*ReadFile(dir_ + "/outside"), "keep");
  ASSERT_TRUE(store_->Delete("alice/shell/s1.cast").ok());
  EXPECT_FALSE(*store_->Exists("alice/shell/s1.cast"));
  EXPECT_EQ(store_->Delete("alice/shell/s1.cast").code(), Code::kNotFound);
}

TEST_F(LocalStoreTest, NeverWritesOutsideTheRoot) {
  for (const char* key :
       {"../x.cast", "alice/../../x", "/etc/x", "a/./b", "a//b", ""}) {
    EXPECT_FALSE(store_->Create(key).ok()) << key;
  }
  // A symlink planted in the tree is not followed.
  ASSERT_EQ(symlink(dir_.c_str(), (dir_ + "/rec/mallory").c_str()), 0);
  EXPECT_FALSE(store_->Create("mallory/shell/x.cast").ok());
  struct stat st;
  EXPECT_NE(stat((dir_ + "/shell").c_str(), &st), 0);
  EXPECT_NE(stat((dir_ + "/x.cast").c_str(), &st), 0);
}

}  // namespace
}  // namespace mez::store
