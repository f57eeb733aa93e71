#include "libmez/auth/identity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "tests/test_util.h"

namespace mez::auth {
namespace {

using ::mez::testing::TempDir;
using ::mez::testing::WriteFileOrDie;
using ::testing::AllOf;
using ::testing::HasSubstr;

Identity Sample() {
  Identity id;
  id.auth_addr = "mez.example.com:3025";
  id.proxy_addr = "mez.example.com:3023";
  id.tls_ca_pem =
      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  id.token = "eyJhbGciOiJFZERTQSJ9.e30.sig";
  id.username = "alice";
  return id;
}

TEST(IdentityTest, RoundTripWithMode0600) {
  TempDir tmp;
  std::string path = tmp.File("identity.json");
  ASSERT_TRUE(WriteIdentityFile(path, Sample()).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  Result<Identity> read = ReadIdentityFile(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  Identity want = Sample();
  EXPECT_EQ(read->auth_addr, want.auth_addr);
  EXPECT_EQ(read->proxy_addr, want.proxy_addr);
  EXPECT_EQ(read->tls_ca_pem, want.tls_ca_pem);
  EXPECT_EQ(read->token, want.token);
  EXPECT_EQ(read->username, want.username);
}

TEST(IdentityTest, EmptyOptionalValuesRoundTrip) {
  TempDir tmp;
  std::string path = tmp.File("identity.json");
  Identity id = Sample();
  id.proxy_addr.clear();
  id.tls_ca_pem.clear();
  ASSERT_TRUE(WriteIdentityFile(path, id).ok());
  Result<Identity> read = ReadIdentityFile(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->proxy_addr, "");
  EXPECT_EQ(read->tls_ca_pem, "");
}

TEST(IdentityTest, MissingFieldIsNamedWithTheFile) {
  TempDir tmp;
  std::string path = tmp.File("identity.json");
  WriteFileOrDie(path, R"({"auth_addr":"a:1","proxy_addr":"","tls_ca_pem":"",)"
                       R"("username":"alice"})");
  Result<Identity> read = ReadIdentityFile(path);
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(
      read.status().message(),
      AllOf(HasSubstr(path), HasSubstr("\"token\""), HasSubstr("missing")));
}

TEST(IdentityTest, WrongTypeIsNamed) {
  TempDir tmp;
  std::string path = tmp.File("identity.json");
  WriteFileOrDie(path, R"({"auth_addr":"a:1","proxy_addr":"","tls_ca_pem":"",)"
                       R"("token":"t","username":42})");
  Result<Identity> read = ReadIdentityFile(path);
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(read.status().message(),
              AllOf(HasSubstr(path), HasSubstr("\"username\""),
                    HasSubstr("not a string")));
}

TEST(IdentityTest, UnknownFieldsAreIgnored) {
  TempDir tmp;
  std::string path = tmp.File("identity.json");
  WriteFileOrDie(path, R"({"auth_addr":"a:1","proxy_addr":"","tls_ca_pem":"",)"
                       R"("token":"t","username":"bob","future":{"x":1}})");
  Result<Identity> read = ReadIdentityFile(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->username, "bob");
}

TEST(IdentityTest, MalformedOrMissingFileIsAnError) {
  TempDir tmp;
  std::string path = tmp.File("identity.json");
  WriteFileOrDie(path, "{\"auth_addr\": ");
  Result<Identity> read = ReadIdentityFile(path);
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(read.status().message(), HasSubstr(path));
  WriteFileOrDie(path, "[1, 2]");
  EXPECT_FALSE(ReadIdentityFile(path).ok());
  Result<Identity> missing = ReadIdentityFile(tmp.File("nope.json"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
}

TEST(IdentityTest, WriteRefusesNonUtf8) {
  TempDir tmp;
  Identity id = Sample();
  id.username = "\xff";
  Status s = WriteIdentityFile(tmp.File("identity.json"), id);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace mez::auth
