// mezctl ca export: the cluster's user or host CA public key.
#include <cstdio>

#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;

}  // namespace

Status CaExport(const std::string& identity, const std::string& type) {
  if (type != "user" && type != "host") {
    return InvalidArgument("--type must be user or host (got '" + type + "')");
  }
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::ExportCARequest req;
  req.set_type(type);
  pb::ExportCAResponse resp;
  MEZ_RETURN_IF_ERROR(client->ExportCA(req, &resp));
  std::printf("%s\n", resp.public_key().c_str());
  return Status::Ok();
}

}  // namespace mez::cli
