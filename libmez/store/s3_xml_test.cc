// The XML response parsers of s3_client.h, on answers captured from Swift's
// s3api and on malformed input.
#include <gtest/gtest.h>

#include "libmez/store/s3_client.h"

namespace mez::store {
namespace {

TEST(S3XmlTest, ParsesAnError) {
  auto e = ParseS3Error(
      "<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>"
      "SignatureDoesNotMatch</Code><Message>The request signature we "
      "calculated does not match the signature you provided. Check your key "
      "and signing method.</Message><RequestId>tx1</RequestId></Error>");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, "SignatureDoesNotMatch");
  EXPECT_EQ(e->message.substr(0, 21), "The request signature");
  EXPECT_FALSE(ParseS3Error("<html>nope</html>").has_value());
  EXPECT_FALSE(ParseS3Error("").has_value());
}

TEST(S3XmlTest, ParsesAListingWithEntitiesAndNamespaces) {
  auto page = ParseListObjectsV2(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount>"
      "<MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
      "<NextContinuationToken>cC9rMQ==</NextContinuationToken>"
      "<Contents><Key>p/a&amp;b&#x20;&#233;</Key><Size>12</Size>"
      "<ETag>&quot;abc&quot;</ETag></Contents>"
      "<Contents><Key><![CDATA[p/<c>]]></Key><Size>0</Size></Contents>"
      "<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes>"
      "</ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "p/a&b \xC3\xA9");
  EXPECT_EQ(page->objects[0].size, 12u);
  EXPECT_EQ(page->objects[0].etag, "\"abc\"");
  EXPECT_EQ(page->objects[1].key, "p/<c>");
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "cC9rMQ==");
  ASSERT_EQ(page->common_prefixes.size(), 1u);
}

TEST(S3XmlTest, RejectsMalformedDocuments) {
  for (const char* bad :
       {"", "<", "<a>", "<a></b>", "<a>&bogus;</a>", "<a>&#0;</a>",
        "<a>&#xD800;</a>", "<a>&#x110000;</a>", "<a b></a>", "<a/><b/>",
        "<a><!-- x</a>", "text", "<a>x</a>junk"}) {
    EXPECT_FALSE(ParseXml(bad).ok()) << bad;
  }
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "<a>";
  EXPECT_FALSE(ParseXml(deep).ok());
  EXPECT_TRUE(ParseXml("<a x='1' y=\"2\"><b/>t</a>").ok());
}

TEST(S3XmlTest, RejectsBadSizesAndWrongRoots) {
  EXPECT_FALSE(ParseListObjectsV2("<ListBucketResult><Contents><Key>k</Key>"
                                  "<Size>-1</Size></Contents>"
                                  "</ListBucketResult>")
                   .ok());
  EXPECT_FALSE(ParseListObjectsV2("<Error/>").ok());
  EXPECT_FALSE(ParseListObjectsV2("<ListBucketResult><IsTruncated>true"
                                  "</IsTruncated></ListBucketResult>")
                   .ok());
}

}  // namespace
}  // namespace mez::store
