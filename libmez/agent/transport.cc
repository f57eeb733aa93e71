#include "libmez/agent/transport.h"

#include "libmez/rpc/server_config.h"

namespace mez::agent {

Result<std::shared_ptr<grpc::ChannelCredentials>> NodeChannelCredentials(
    const std::string& auth_addr, const std::string& ca_pem, bool insecure) {
  if (insecure) {
    if (!ca_pem.empty()) {
      return InvalidArgument(
          "--insecure and --ca-file contradict each other: --ca-file asks for "
          "TLS, --insecure for plaintext; drop one");
    }
    if (!rpc::IsLoopbackHost(auth_addr)) {
      return InvalidArgument(
          "--insecure sends this node's credential in plaintext and is "
          "allowed only to a mezrecd on loopback (127.0.0.1, ::1); '" +
          auth_addr +
          "' is not one. Give --ca-file with the cluster's TLS CA instead");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (ca_pem.empty()) {
    return InvalidArgument(
        "no TLS CA for mezrecd at " + auth_addr +
        ": give --ca-file with the cluster's TLS CA (tls_ca.crt in "
        "mezrecd's data dir, or tls_ca_pem in an identity file); plaintext "
        "(--insecure) is allowed only to a mezrecd on loopback");
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_pem;
  return grpc::SslCredentials(ssl);
}

}  // namespace mez::agent
