// mezrecd's gRPC listener: the Recording and Cluster services on one
// address, plaintext or TLS, with the message size and memory bounds that
// keep what gRPC buffers ahead of the disk small. The services and what
// they use are built and owned by the caller (libmez/server).
#ifndef MEZ_RPC_GRPC_SERVER_H_
#define MEZ_RPC_GRPC_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "libmez/util/status.h"

namespace grpc {
class Server;
}

namespace mez::rpc {

class RecordingService;
class ClusterService;
class WebService;

struct GrpcServerOptions {
  std::string listen;  // "HOST:PORT"; port 0 picks a free one
  // Both empty: plaintext. Else the server's key and its certificate
  // chain, ending with the CA (a joining mezd finds the CA its join token
  // pins in the chain).
  std::string tls_key_pem;
  std::string tls_cert_chain_pem;
  RecordingService* recording = nullptr;  // required; must outlive
  ClusterService* cluster = nullptr;      // required; must outlive
  WebService* web = nullptr;              // optional; must outlive
};

class GrpcServer {
 public:
  // Binds and starts serving. kUnavailable (naming the address) when it
  // cannot listen there.
  static Result<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerOptions& options);
  ~GrpcServer();  // Shutdown(0) when not done yet
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // The address with the bound port ("HOST:PORT", host as given).
  const std::string& address() const { return address_; }
  // Stops taking calls, lets the running ones finish for up to `grace_us`
  // (then cancels them) and waits until every call has returned.
  // Idempotent.
  void Shutdown(int64_t grace_us);

 private:
  GrpcServer() = default;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  bool stopped_ = false;
};

}  // namespace mez::rpc

#endif  // MEZ_RPC_GRPC_SERVER_H_
