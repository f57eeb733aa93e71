// AWS Signature Version 4 (header-based, AWS4-HMAC-SHA256), as used by S3.
// Pure functions over strings: no I/O, no clock, thread-safe.
//
// The S3 flavour of the canonical request is implemented: the path is
// URI-encoded once (each segment; '/' kept), never normalized ("a//b" and
// "a/./b" stay as they are, as S3 requires). Query keys and values are
// URI-encoded ('/' too), sorted by key then value, a valueless parameter is
// written "key=". Header names are lowercased and sorted, values trimmed
// with inner runs of spaces collapsed.
#ifndef MEZ_STORE_SIGV4_H_
#define MEZ_STORE_SIGV4_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mez::store {

struct SigV4Credentials {
  std::string access_key;
  std::string secret_key;
  std::string region;  // "us-east-1"
  std::string service = "s3";
};

// One HTTP request, before signing. Strings are raw (not yet encoded).
struct SigV4Request {
  std::string method;  // "GET"
  std::string path;    // "/bucket/some key.cast"; empty means "/"
  std::vector<std::pair<std::string, std::string>> query;
  // Every header to sign, including "host" and "x-amz-date". Any case.
  std::vector<std::pair<std::string, std::string>> headers;
  // Lowercase hex SHA-256 of the body (S3 wants it in x-amz-content-sha256
  // too; the signer does not add headers itself).
  std::string payload_sha256;
};

// RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~) pass; every other
// byte becomes %XX (uppercase). With keep_slash, '/' passes too.
std::string UriEncode(std::string_view s, bool keep_slash);

// Lowercase hex SHA-256 / raw HMAC-SHA256.
std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);

std::string CanonicalRequest(const SigV4Request& req);
// "host;range;x-amz-date" for the request's headers.
std::string SignedHeaders(const SigV4Request& req);
// amz_date is "20150830T123600Z"; the scope's date is its first 8 chars.
std::string StringToSign(const SigV4Request& req, const SigV4Credentials& cred,
                         std::string_view amz_date);
// Lowercase hex signature.
std::string Signature(const SigV4Request& req, const SigV4Credentials& cred,
                      std::string_view amz_date);
// The full Authorization header value:
// "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/service/aws4_request,
//  SignedHeaders=host;x-amz-date, Signature=..."
std::string AuthorizationHeader(const SigV4Request& req,
                                const SigV4Credentials& cred,
                                std::string_view amz_date);

// "20150830T123600Z" for a Unix time (UTC).
std::string AmzDate(long long unix_seconds);

}  // namespace mez::store

#endif  // MEZ_STORE_SIGV4_H_
