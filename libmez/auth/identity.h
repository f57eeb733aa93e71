// Identity files: what a CLI needs to reach the cluster as someone. JSON:
// {"auth_addr": "...", "proxy_addr": "...", "tls_ca_pem": "...",
//  "token": "...", "username": "..."}; mode 0600.
#ifndef MEZ_AUTH_IDENTITY_H_
#define MEZ_AUTH_IDENTITY_H_

#include <string>

#include "libmez/util/status.h"

namespace mez::auth {

struct Identity {
  std::string auth_addr;   // host:port of mezrecd's gRPC endpoint
  std::string proxy_addr;  // host:port of the SSH proxy; may be empty
  std::string tls_ca_pem;  // CA that signed the server certificate; empty
                           // for an --insecure (plaintext) cluster
  std::string token;
  std::string username;
};

// Writes atomically with mode 0600.
Status WriteIdentityFile(const std::string& path, const Identity& identity);
// Errors name the file and the missing or malformed field.
Result<Identity> ReadIdentityFile(const std::string& path);

}  // namespace mez::auth

#endif  // MEZ_AUTH_IDENTITY_H_
