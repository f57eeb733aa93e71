// mezrecd's web UI, started by libmez/server when web.listen is set: the
// listener (http_server.h) over the API (api.h) with its own sign-in
// store, and the issuer of sign-in codes the Web gRPC service calls.
#ifndef MEZ_WEB_WEB_ROLE_H_
#define MEZ_WEB_WEB_ROLE_H_

#include <memory>
#include <string>

#include "libmez/auth/keys.h"
#include "libmez/auth/token.h"
#include "libmez/catalog/catalog.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"
#include "libmez/web/web_config.h"

namespace mez::web {

struct WebRoleOptions {
  WebConfig config;  // Validated (ValidateWebConfig); listen set.
  catalog::Catalog* catalog = nullptr;            // required; must outlive
  const auth::TokenSigner* signer = nullptr;      // required; must outlive
  const auth::ClusterKeys* keys = nullptr;        // required; must outlive
  const auth::TokenVerifier* verifier = nullptr;  // required; must outlive
  Clock* clock = nullptr;                         // nullptr: RealClock()
};

class WebRole {
 public:
  // Reads the operator's certificate and key when configured (else uses
  // the cluster's TLS certificate), binds and serves.
  static Result<std::unique_ptr<WebRole>> Start(WebRoleOptions options);
  ~WebRole();  // Stops the listener.

  const std::string& address() const;  // Bound HOST:PORT.
  const std::string& public_url() const { return public_url_; }
  // A sign-in code for an identified user or admin (the Web RPC).
  struct Code {
    std::string code;
    int64_t expires_at = 0;  // Unix seconds
  };
  Result<Code> IssueCode(const auth::Claims& caller);

 private:
  struct Parts;
  explicit WebRole(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
  std::string public_url_;
};

}  // namespace mez::web

#endif  // MEZ_WEB_WEB_ROLE_H_
