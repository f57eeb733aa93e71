// S3 credentials: explicit keys, or the standard AWS credentials chain.
//
// The chain, in the order of the AWS SDKs (the first source that is
// configured wins):
//   1. explicit keys (MEZITE_S3_ACCESS_KEY / MEZITE_S3_SECRET_KEY or the
//      recording.s3 yaml keys; mezrecd passes them in as `explicit_*`);
//   2. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
//      optionally AWS_SESSION_TOKEN;
//   3. the shared credentials file: AWS_SHARED_CREDENTIALS_FILE or
//      ~/.aws/credentials, profile AWS_PROFILE or "default";
//   4. ECS container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
//      (against http://169.254.170.2) or AWS_CONTAINER_CREDENTIALS_FULL_URI
//      (https, or http to a loopback or ECS/EKS agent address only), with
//      AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) as the Authorization header;
//   5. EC2 instance metadata, IMDSv2 only (a session token from
//      PUT /latest/api/token, then the role under
//      /latest/meta-data/iam/security-credentials/). The endpoint is
//      AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254;
//      AWS_EC2_METADATA_DISABLED=true skips it. Requests time out after
//      about a second, so a machine that is not on EC2 fails fast.
//
// A source that is configured but broken (a malformed credentials file, a
// profile without a secret, an ECS endpoint that does not answer) stops the
// chain with an error naming it, rather than falling through to the next
// source: the operator meant that source. Sources 4 and 5 hand out
// temporary credentials with a session token and an expiry; they are
// fetched again a few minutes before they expire.
#ifndef MEZ_STORE_S3_CREDENTIALS_H_
#define MEZ_STORE_S3_CREDENTIALS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::store {

struct AwsCredentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // Empty for long-term keys.
  // Unix seconds after which the keys no longer work; nullopt: never.
  std::optional<int64_t> expiration;
};

// Hands out the current credentials. Thread-safe.
class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  // The credentials to sign the next request with.
  virtual Result<AwsCredentials> Get() = 0;
  // Where they come from, for logs and error messages ("environment
  // (AWS_ACCESS_KEY_ID)", "EC2 instance metadata, role r").
  virtual std::string source() const = 0;
};

// Fixed credentials.
std::unique_ptr<CredentialsProvider> StaticCredentials(AwsCredentials cred,
                                                       std::string source);

// Credentials that `fetch` returns, cached and fetched again
// `refresh_margin_s` before they expire (or at half their remaining
// lifetime when that is shorter). If a refresh fails while the cached keys
// are still valid, they keep being used and the refresh is retried at
// most every 10 s; once they have expired, Get() returns the error.
// Thread-safe: one caller fetches while the others keep using valid keys.
std::unique_ptr<CredentialsProvider> RefreshingCredentials(
    std::function<Result<AwsCredentials>()> fetch, std::string source,
    Clock* clock, int64_t refresh_margin_s = 300);

// A parsed INI file: section -> key -> value. Keys are lowercased; values
// are trimmed. Later duplicates win.
using IniFile = std::map<std::string, std::map<std::string, std::string>>;

// Parses the AWS shared credentials/config format: "[section]" headers,
// "key = value" lines, '#' and ';' comment lines, blank lines. An indented
// line continues the previous key (a nested block such as "s3 =" followed
// by indented settings) and is skipped. Anything else is an error
// (kInvalidArgument) naming the line. Never crashes on any input.
Result<IniFile> ParseIni(std::string_view text);

// Parses the JSON that the ECS agent and EC2 instance metadata service
// return ({"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}), with
// `what` naming the source in errors. kDataLoss when malformed, when a key
// is missing, or when IMDS reports a "Code" other than "Success".
Result<AwsCredentials> ParseCredentialsJson(std::string_view body,
                                            const std::string& what);

// "2017-05-17T15:09:54Z" (fractions and +hh:mm offsets allowed) to Unix
// seconds.
Result<int64_t> ParseIso8601(std::string_view s);

struct CredentialChainOptions {
  // Step 1. Both or neither.
  std::string explicit_access_key;
  std::string explicit_secret_key;
  std::string explicit_session_token;
  // Environment lookups (nullptr: ::getenv); returns nullptr when unset.
  std::function<const char*(const char*)> getenv;
  Clock* clock = nullptr;  // nullptr: RealClock().
  // Per request to the ECS agent or the metadata service.
  int metadata_timeout_ms = 1000;
  // Base of AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; tests point it at a
  // loopback server.
  std::string ecs_base = "http://169.254.170.2";
  int64_t refresh_margin_s = 300;
};

// Walks the chain (see above) and returns a provider for the first source
// that has credentials, having fetched them once. When none has, the error
// (kFailedPrecondition) names MEZITE_S3_ACCESS_KEY / MEZITE_S3_SECRET_KEY
// and what each step of the chain found.
Result<std::unique_ptr<CredentialsProvider>> ResolveCredentials(
    const CredentialChainOptions& options);

}  // namespace mez::store

#endif  // MEZ_STORE_S3_CREDENTIALS_H_
