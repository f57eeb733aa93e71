// mezctl ca export: the cluster's user or host CA public key, or its TLS CA.
#include <cstdio>

#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;

}  // namespace

Status CaExport(const std::string& identity, const std::string& type) {
  if (type != "user" && type != "host" && type != "tls") {
    return InvalidArgument("--type must be user, host or tls (got '" + type +
                           "')");
  }
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  if (type == "tls") {
    // The identity pins the TLS CA; a call that succeeds over it proves it
    // is the one mezrecd's certificate chains to.
    if (client->identity().tls_ca_pem.empty()) {
      return FailedPrecondition(
          "this identity talks plaintext to mezrecd (--insecure): the "
          "cluster has no TLS CA");
    }
    pb::WhoAmIResponse me;
    MEZ_RETURN_IF_ERROR(client->WhoAmI(pb::WhoAmIRequest(), &me));
    std::printf("%s", client->identity().tls_ca_pem.c_str());
    return Status::Ok();
  }
  pb::ExportCARequest req;
  req.set_type(type);
  pb::ExportCAResponse resp;
  MEZ_RETURN_IF_ERROR(client->ExportCA(req, &resp));
  std::printf("%s\n", resp.public_key().c_str());
  return Status::Ok();
}

}  // namespace mez::cli
