// mezctl config get/set: the cluster's settings.
#include <cstdio>

#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"
#include "libmez/settings/settings.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;

}  // namespace

Status ConfigGet(const std::string& identity, const std::string& key) {
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::GetConfigRequest req;
  req.set_key(key);
  pb::ConfigValue v;
  MEZ_RETURN_IF_ERROR(client->GetConfig(req, &v));
  std::printf("%s\n", v.value().c_str());
  return Status::Ok();
}

Status ConfigSet(const std::string& identity, const std::string& key,
                 const std::string& value) {
  MEZ_RETURN_IF_ERROR(settings::CheckValueIfKnown(key, value));
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(identity));
  pb::SetConfigRequest req;
  req.set_key(key);
  req.set_value(value);
  pb::ConfigValue v;
  MEZ_RETURN_IF_ERROR(client->SetConfig(req, &v));
  std::printf("%s = %s (applies to new sessions)\n", v.key().c_str(),
              v.value().c_str());
  return Status::Ok();
}

}  // namespace mez::cli
