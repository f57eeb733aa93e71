// A small S3 client: libcurl for HTTP, our own SigV4 signer (sigv4.h), and a
// small XML parser for the responses. Enough of the API for recordings:
// objects (PUT, GET with Range, HEAD, DELETE), ListObjectsV2 with
// continuation, multipart uploads, and CreateBucket and DeleteBucket for
// setup and tests.
//
// Errors: transient failures (HTTP 5xx and 429, S3 "RequestTimeout" and
// "SlowDown", timeouts, refused or reset connections) are retried with
// exponential backoff up to S3Options::max_attempts. Permanent ones come
// back at once as one Status whose message names the setting to fix
// (MEZITE_S3_SECRET_KEY, MEZITE_S3_BUCKET, ...), with S3's own Code and
// Message from the XML error body.
#ifndef MEZ_STORE_S3_CLIENT_H_
#define MEZ_STORE_S3_CLIENT_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/store/s3_credentials.h"
#include "libmez/store/sigv4.h"
#include "libmez/util/status.h"

namespace mez::store {

// Where and how to reach the bucket. Field comments name the MEZITE_S3_*
// setting that the error messages tell the operator to check.
struct S3Options {
  // "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000". Empty:
  // https://s3.<region>.amazonaws.com. No path after the host.
  std::string endpoint;              // MEZITE_S3_ENDPOINT
  std::string bucket;                // MEZITE_S3_BUCKET
  std::string region = "us-east-1";  // MEZITE_S3_REGION
  // Both set: these keys. Both empty (and no `credentials`): the AWS
  // chain of s3_credentials.h, resolved by New().
  std::string access_key;     // MEZITE_S3_ACCESS_KEY
  std::string secret_key;     // MEZITE_S3_SECRET_KEY
  std::string session_token;  // With temporary explicit keys.
  // When set, wins over the keys above: every request is signed with what
  // it hands out at that moment (temporary keys are refreshed).
  std::shared_ptr<CredentialsProvider> credentials;
  // http://host/bucket/key instead of http://bucket.host/key (MinIO, Swift,
  // and any bucket name with dots under TLS).
  bool force_path_style = false;  // MEZITE_S3_FORCE_PATH_STYLE
  // PEM bundle to verify the endpoint's TLS certificate; empty: system CAs.
  std::string ca_file;  // MEZITE_S3_CA_FILE

  int max_attempts = 4;          // Per request, including the first.
  int initial_backoff_ms = 200;  // Doubles after each failed attempt.
  int connect_timeout_ms = 10'000;
  // A request fails (and is retried) when it moves less than 1 KiB/s for
  // this long; large parts on slow links still complete.
  int stall_timeout_ms = 30'000;
};

// A parsed XML element. Namespace prefixes are dropped from names;
// attributes, comments, processing instructions and DOCTYPEs are skipped.
struct XmlElement {
  std::string name;
  std::string text;  // Character data directly inside, entities decoded.
  std::vector<XmlElement> children;

  const XmlElement* Child(std::string_view child_name) const;
  // Text of the first child named so, or "" when there is none.
  std::string ChildText(std::string_view child_name) const;
};

// Parses one XML document of untrusted bytes. Rejects (kDataLoss) anything
// malformed, nesting deeper than 32, or more than 100,000 elements.
Result<XmlElement> ParseXml(std::string_view doc);

struct S3ErrorBody {
  std::string code;     // "NoSuchKey"
  std::string message;  // "The specified key does not exist."
};
// Parses an <Error> document; nullopt when `body` is not one.
std::optional<S3ErrorBody> ParseS3Error(std::string_view body);

struct S3Object {
  std::string key;
  uint64_t size = 0;
  std::string etag;
};

struct ListPage {
  std::vector<S3Object> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_continuation_token;  // Set when truncated.
};
Result<ListPage> ParseListObjectsV2(std::string_view body);

struct MultipartUpload {
  std::string key;
  std::string upload_id;
};
Result<std::vector<MultipartUpload>> ParseListMultipartUploads(
    std::string_view body);

struct CompletedPart {
  int number = 0;  // 1..10000
  std::string etag;
};

// Thread-safe: requests may run concurrently from several threads; idle
// libcurl handles (and their connections) are kept for reuse. Temporary
// credentials go out as x-amz-security-token, which is signed.
class S3Client {
 public:
  static Result<std::unique_ptr<S3Client>> New(S3Options options);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3Options& options() const { return options_; }

  Status CreateBucket();
  // The bucket must hold no objects (S3 answers BucketNotEmpty, kIoError).
  Status DeleteBucket();
  Status PutObject(const std::string& key, std::string_view data);
  // Bytes [offset, offset+length) (length 0: to the end). A range that
  // starts at or past the end gives an empty string. kNotFound if no object.
  Result<std::string> GetObject(const std::string& key, uint64_t offset = 0,
                                uint64_t length = 0);
  // kNotFound if no object.
  Result<S3Object> HeadObject(const std::string& key);
  // S3 answers 204 whether or not the object existed.
  Status DeleteObject(const std::string& key);
  // One page of keys under `prefix`; pass the previous page's
  // next_continuation_token to get the next one.
  Result<ListPage> ListObjectsV2(const std::string& prefix,
                                 const std::string& continuation_token = "",
                                 int max_keys = 1000);
  // Every key under `prefix`, following continuation tokens.
  Result<std::vector<S3Object>> ListAll(const std::string& prefix);

  // Multipart: parts are 5 MiB or more, except the last; at most 10,000.
  Result<std::string> CreateMultipartUpload(const std::string& key);
  // Returns the part's ETag.
  Result<std::string> UploadPart(const std::string& key,
                                 const std::string& upload_id, int part_number,
                                 std::string_view data);
  Status CompleteMultipartUpload(const std::string& key,
                                 const std::string& upload_id,
                                 const std::vector<CompletedPart>& parts);
  Status AbortMultipartUpload(const std::string& key,
                              const std::string& upload_id);
  // Uploads in progress under `prefix` (first 1,000).
  Result<std::vector<MultipartUpload>> ListMultipartUploads(
      const std::string& prefix);

  // "s3://bucket/key", for logs.
  std::string Describe(const std::string& key) const;

  struct Request;
  struct Response;

 private:
  S3Client(S3Options options, std::string scheme, std::string host);
  // Runs `req` with retries; any HTTP status comes back as a Response.
  Result<Response> Execute(const Request& req);
  Result<Response> Attempt(const Request& req, bool* transient);
  // Maps a non-2xx response to the Status the caller should see.
  Status ErrorStatus(const Request& req, const Response& resp) const;
  // "'AKID' (from <source>)", for error messages.
  std::string KeyForMessages() const;
  void* TakeHandle();
  void ReturnHandle(void* handle);

  S3Options options_;
  std::string scheme_;  // "https"
  std::string host_;    // "s3.amazonaws.com:443" as given (port kept)
  std::mutex mu_;
  std::vector<void*> idle_;  // CURL* easy handles; guarded by mu_.
};

}  // namespace mez::store

#endif  // MEZ_STORE_S3_CLIENT_H_
