// A throwaway SigV4-checking S3 server for tests: runs scripts/start-s3
// (Swift + s3api + memcached on free 127.0.0.1 ports) in a fresh temporary
// directory and stops it on destruction. The script's watchdog also stops
// every server when this process exits, so a crashed or killed test leaves
// nothing running. Startup takes ~7 s: start one per test binary. Once
// ok(), the server has answered a bucket PUT (see WarmUp).
#ifndef MEZ_TESTS_S3_SERVER_H_
#define MEZ_TESTS_S3_SERVER_H_

#include <string>

#include "libmez/util/status.h"

namespace mez::testing {

class S3Server {
 public:
  // `script` is the path of scripts/start-s3. Check ok() afterwards.
  explicit S3Server(const std::string& script);
  ~S3Server();
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;

  bool ok() const { return error_.empty(); }
  // Why the server did not start (the script's stderr tail included).
  const std::string& error() const { return error_; }

  const std::string& endpoint() const { return endpoint_; }  // http://...
  const std::string& region() const { return region_; }
  const std::string& access_key() const { return access_key_; }
  const std::string& secret_key() const { return secret_key_; }
  const std::string& dir() const { return dir_; }

 private:
  Status WarmUp();

  std::string script_;
  std::string dir_;
  std::string error_;
  std::string endpoint_, region_, access_key_, secret_key_;
};

}  // namespace mez::testing

#endif  // MEZ_TESTS_S3_SERVER_H_
