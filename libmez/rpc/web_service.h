// The Web gRPC service (proto/mezite/v1/web.proto): sign-in codes for the
// web UI. The caller is identified by its credential (Authorizer, which
// checks it against the catalog); the code itself comes from `issue`,
// which the web module provides (libmez/web/sign_in.h) when mezrecd
// serves the web UI.
#ifndef MEZ_RPC_WEB_SERVICE_H_
#define MEZ_RPC_WEB_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>

#include "libmez/auth/token.h"
#include "libmez/rpc/cluster_service.h"
#include "libmez/util/thread_pool.h"
#include "mezite/v1/web.grpc.pb.h"

namespace mez::rpc {

struct SignInCode {
  std::string code;
  int64_t expires_at = 0;  // Unix seconds
  std::string public_url;
};

struct WebServiceOptions {
  const Authorizer* authorizer = nullptr;  // required
  ThreadPool* pool = nullptr;              // required (catalog lookups)
  // Issues a code for an identified user or admin; unset: the web UI is
  // off and every call is FAILED_PRECONDITION.
  std::function<Result<SignInCode>(const auth::Claims&)> issue;
};

class WebService final : public mezite::v1::Web::CallbackService {
 public:
  explicit WebService(WebServiceOptions options) : opt_(std::move(options)) {}

  grpc::ServerUnaryReactor* CreateSignInCode(
      grpc::CallbackServerContext* ctx,
      const mezite::v1::CreateSignInCodeRequest* req,
      mezite::v1::CreateSignInCodeResponse* resp) override;

 private:
  WebServiceOptions opt_;
};

}  // namespace mez::rpc

#endif  // MEZ_RPC_WEB_SERVICE_H_
