#include "libmez/rpc/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "libmez/rpc/cluster_service.h"
#include "libmez/rpc/recording_service.h"
#include "libmez/rpc/web_service.h"
#include "libmez/util/log.h"

namespace mez::rpc {
namespace {

constexpr int kMaxMessageBytes = 2 << 20;  // A 1 MiB chunk plus framing.
constexpr size_t kMemoryBudgetBytes = size_t{512} << 20;

}  // namespace

Result<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const GrpcServerOptions& o) {
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (o.tls_key_pem.empty()) {
    creds = grpc::InsecureServerCredentials();
  } else {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({o.tls_key_pem, o.tls_cert_chain_pem});
    creds = grpc::SslServerCredentials(ssl);
  }
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.listen, creds, &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  // Bound what gRPC buffers ahead of the disk: no window growth from
  // bandwidth probing, and one memory budget for all connections. With one
  // frame in flight per stream, a slow disk then slows the senders.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  grpc::ResourceQuota quota("mezrecd");
  quota.Resize(kMemoryBudgetBytes);
  builder.SetResourceQuota(quota);
  builder.RegisterService(o.recording);
  builder.RegisterService(o.cluster);
  if (o.web != nullptr) builder.RegisterService(o.web);
  std::unique_ptr<GrpcServer> s(new GrpcServer());
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || port == 0) {
    return Status(Code::kUnavailable,
                  "cannot listen on " + o.listen +
                      " (in use, or not an address of this machine?)");
  }
  s->address_ =
      o.listen.substr(0, o.listen.rfind(':') + 1) + std::to_string(port);
  return s;
}

GrpcServer::~GrpcServer() { Shutdown(0); }

void GrpcServer::Shutdown(int64_t grace_us) {
  if (stopped_ || !server_) return;
  stopped_ = true;
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::microseconds(grace_us));
  MEZ_LOG(kDebug) << "gRPC shutdown returned";
  server_->Wait();
  MEZ_LOG(kDebug) << "gRPC server stopped";
}

}  // namespace mez::rpc
