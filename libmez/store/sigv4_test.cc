// Vectors published by AWS:
//  - the Signature Version 4 test suite (aws-sig-v4-test-suite, "General
//    Reference: Signature Version 4 test suite"): region us-east-1, service
//    "service", AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
//    20150830T123600Z, host example.amazonaws.com;
//  - the S3 API Reference, "Examples: Signature Calculations in Authorization
//    Header" (sig-v4-header-based-auth): examplebucket, AKIAIOSFODNN7EXAMPLE
//    / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z.
#include "libmez/store/sigv4.h"

#include <gtest/gtest.h>

namespace mez::store {
namespace {

constexpr char kEmptySha[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kSuiteDate[] = "20150830T123600Z";

SigV4Credentials SuiteCred() {
  return {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
          "us-east-1", "service"};
}

SigV4Request SuiteGet() {
  SigV4Request r;
  r.method = "GET";
  r.path = "/";
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kSuiteDate}};
  r.payload_sha256 = kEmptySha;
  return r;
}

std::string SuiteAuth(const std::string& signed_headers,
                      const std::string& sig) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
         "aws4_request, SignedHeaders=" +
         signed_headers + ", Signature=" + sig;
}

TEST(SigV4Test, GetVanilla) {
  SigV4Request r = SuiteGet();
  EXPECT_EQ(CanonicalRequest(r),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:"
            "20150830T123600Z\n\nhost;x-amz-date\n" +
                std::string(kEmptySha));
  EXPECT_EQ(StringToSign(r, SuiteCred(), kSuiteDate),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/"
            "aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1"
            "c25292927e63");
  EXPECT_EQ(AuthorizationHeader(r, SuiteCred(), kSuiteDate),
            SuiteAuth("host;x-amz-date",
                      "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d"
                      "763fbf31"));
}

TEST(SigV4Test, GetVanillaQueryOrderKeyCase) {
  SigV4Request r = SuiteGet();
  r.query = {{"Param2", "value2"}, {"Param1", "value1"}};
  EXPECT_NE(CanonicalRequest(r).find("\nParam1=value1&Param2=value2\n"),
            std::string::npos);
  EXPECT_EQ(Signature(r, SuiteCred(), kSuiteDate),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(SigV4Test, GetVanillaEmptyQueryKey) {
  SigV4Request r = SuiteGet();
  r.query = {{"Param1", "value1"}};
  EXPECT_EQ(Signature(r, SuiteCred(), kSuiteDate),
            "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb");
}

TEST(SigV4Test, GetUnreserved) {
  SigV4Request r = SuiteGet();
  r.path =
      "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  EXPECT_EQ(Signature(r, SuiteCred(), kSuiteDate),
            "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

TEST(SigV4Test, GetUtf8) {
  SigV4Request r = SuiteGet();
  r.path = "/\xE1\x88\xB4";
  EXPECT_NE(CanonicalRequest(r).find("\n/%E1%88%B4\n"), std::string::npos);
  EXPECT_EQ(Signature(r, SuiteCred(), kSuiteDate),
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

TEST(SigV4Test, GetHeaderKeyDuplicate) {
  SigV4Request r = SuiteGet();
  r.headers.push_back({"My-Header1", "value2"});
  r.headers.push_back({"My-Header1", "value2"});
  r.headers.push_back({"My-Header1", "value1"});
  EXPECT_EQ(
      AuthorizationHeader(r, SuiteCred(), kSuiteDate),
      SuiteAuth("host;my-header1;x-amz-date",
                "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531"
                "a5138ea"));
}

TEST(SigV4Test, GetHeaderValueTrim) {
  SigV4Request r = SuiteGet();
  r.headers.push_back({"My-Header1", " value1"});
  r.headers.push_back({"My-Header2", " \"a   b   c\""});
  EXPECT_EQ(AuthorizationHeader(r, SuiteCred(), kSuiteDate),
            SuiteAuth("host;my-header1;my-header2;x-amz-date",
                      "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee3597"
                      "57a9c736"));
}

TEST(SigV4Test, PostXWwwFormUrlencoded) {
  SigV4Request r = SuiteGet();
  r.method = "POST";
  r.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
  r.payload_sha256 = Sha256Hex("Param1=value1");
  EXPECT_EQ(AuthorizationHeader(r, SuiteCred(), kSuiteDate),
            SuiteAuth("content-type;host;x-amz-date",
                      "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0"
                      "fe09473a"));
}

// --- S3 API Reference examples.

constexpr char kS3Date[] = "20130524T000000Z";

SigV4Credentials S3Cred() {
  return {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
          "us-east-1", "s3"};
}

SigV4Request S3Request(std::string method, std::string path,
                       std::string payload_sha) {
  SigV4Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.payload_sha256 = payload_sha;
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"x-amz-content-sha256", payload_sha},
               {"x-amz-date", kS3Date}};
  return r;
}

TEST(SigV4Test, S3GetObjectRange) {
  SigV4Request r = S3Request("GET", "/test.txt", kEmptySha);
  r.headers.push_back({"Range", "bytes=0-9"});
  EXPECT_EQ(CanonicalRequest(r),
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
            "range:bytes=0-9\nx-amz-content-sha256:" +
                std::string(kEmptySha) +
                "\nx-amz-date:20130524T000000Z\n\n"
                "host;range;x-amz-content-sha256;x-amz-date\n" +
                kEmptySha);
  EXPECT_EQ(AuthorizationHeader(r, S3Cred(), kS3Date),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
            "us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c"
            "6036bdb41");
}

TEST(SigV4Test, S3PutObject) {
  std::string body = "Welcome to Amazon S3.";
  SigV4Request r = S3Request("PUT", "/test$file.text", Sha256Hex(body));
  EXPECT_EQ(r.payload_sha256,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  r.headers.push_back({"Date", "Fri, 24 May 2013 00:00:00 GMT"});
  r.headers.push_back({"x-amz-storage-class", "REDUCED_REDUNDANCY"});
  EXPECT_NE(CanonicalRequest(r).find("\n/test%24file.text\n"),
            std::string::npos);
  EXPECT_EQ(Signature(r, S3Cred(), kS3Date),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4Test, S3GetBucketLifecycleValuelessParam) {
  SigV4Request r = S3Request("GET", "/", kEmptySha);
  r.query = {{"lifecycle", ""}};
  EXPECT_NE(CanonicalRequest(r).find("\nlifecycle=\n"), std::string::npos);
  EXPECT_EQ(Signature(r, S3Cred(), kS3Date),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4Test, S3ListObjects) {
  SigV4Request r = S3Request("GET", "/", kEmptySha);
  r.query = {{"prefix", "J"}, {"max-keys", "2"}};
  EXPECT_EQ(Signature(r, S3Cred(), kS3Date),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Test, UriEncode) {
  EXPECT_EQ(UriEncode("a b/c+d~e", true), "a%20b/c%2Bd~e");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b%2Fc");
  EXPECT_EQ(UriEncode("\xff", false), "%FF");
}

TEST(SigV4Test, AmzDate) { EXPECT_EQ(AmzDate(1440938160), kSuiteDate); }

}  // namespace
}  // namespace mez::store
