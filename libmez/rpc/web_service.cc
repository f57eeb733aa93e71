#include "libmez/rpc/web_service.h"

#include "libmez/rpc/grpc_status.h"
#include "libmez/util/log.h"

namespace mez::rpc {

grpc::ServerUnaryReactor* WebService::CreateSignInCode(
    grpc::CallbackServerContext* ctx,
    const mezite::v1::CreateSignInCodeRequest*,
    mezite::v1::CreateSignInCodeResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  opt_.pool->Submit([this, ctx, reactor, resp] {
    auto who = opt_.authorizer->Caller(ctx);
    if (!who.ok()) {
      reactor->Finish(ToGrpc(who.status()));
      return;
    }
    if (who->role != auth::Role::kUser && who->role != auth::Role::kAdmin) {
      reactor->Finish(ToGrpc(PermissionDenied(
          "CreateSignInCode needs a user or admin credential; you are " +
          who->subject + " (" + std::string(auth::RoleName(who->role)) + ")")));
      return;
    }
    if (!opt_.issue) {
      reactor->Finish(ToGrpc(FailedPrecondition(
          "this mezrecd serves no web UI: its operator enables it with "
          "--web-listen HOST:PORT (MEZITE_WEB_LISTEN, yaml web.listen)")));
      return;
    }
    auto code = opt_.issue(*who);
    if (!code.ok()) {
      reactor->Finish(ToGrpc(code.status()));
      return;
    }
    MEZ_LOG(kInfo) << "web sign-in code issued to " << who->subject;
    resp->set_code(code->code);
    resp->set_expires_at(code->expires_at);
    resp->set_public_url(code->public_url);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace mez::rpc
