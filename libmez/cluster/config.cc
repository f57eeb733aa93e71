// Cluster settings: read and set through the settings registry.
#include <nlohmann/json.hpp>

#include "libmez/cluster/cluster.h"
#include "libmez/settings/settings.h"

namespace mez::cluster {

using auth::Role;

Result<std::string> ReadSetting(catalog::Catalog* catalog,
                                std::string_view key) {
  MEZ_RETURN_IF_ERROR(settings::CheckKey(key));
  MEZ_ASSIGN_OR_RETURN(auto value, catalog->GetConfig(std::string(key)));
  if (value.has_value()) return *value;
  return *settings::DefaultValue(key);
}

Result<std::string> Cluster::GetSetting(const auth::Claims& caller,
                                        const std::string& key) {
  // Nodes and proxies learn session_recording from their join, heartbeat
  // and hello answers; they may still ask.
  MEZ_RETURN_IF_ERROR(
      Require(caller, "GetConfig",
              {Role::kUser, Role::kAdmin, Role::kNode, Role::kProxy}));
  return ReadSetting(opt_.catalog, key);
}

Status Cluster::SetSetting(const auth::Claims& caller, const std::string& key,
                           const std::string& value) {
  MEZ_RETURN_IF_ERROR(Require(caller, "SetConfig", {Role::kAdmin}));
  MEZ_RETURN_IF_ERROR(settings::Validate(key, value));
  auto old = opt_.catalog->GetConfig(key);
  MEZ_RETURN_IF_ERROR(opt_.catalog->SetConfig(key, value));
  nlohmann::json d = {{"key", key}, {"value", value}};
  if (old.ok() && old->has_value()) d["previous"] = **old;
  Audit("config.set", caller.subject, "", d.dump());
  return Status::Ok();
}

}  // namespace mez::cluster
