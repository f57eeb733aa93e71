#include "libmez/auth/identity.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "libmez/util/file.h"

namespace mez::auth {
namespace {

using nlohmann::json;

constexpr mode_t kIdentityMode = 0600;

Result<std::string> StringField(const json& j, const char* name,
                                const std::string& path) {
  auto it = j.find(name);
  if (it == j.end()) {
    return DataLoss("identity file " + path + ": field \"" + name +
                    "\" is missing");
  }
  if (!it->is_string()) {
    return DataLoss("identity file " + path + ": field \"" + name +
                    "\" is not a string");
  }
  return it->get<std::string>();
}

}  // namespace

Status WriteIdentityFile(const std::string& path, const Identity& identity) {
  std::string text;
  try {
    json j = {{"auth_addr", identity.auth_addr},
              {"proxy_addr", identity.proxy_addr},
              {"tls_ca_pem", identity.tls_ca_pem},
              {"token", identity.token},
              {"username", identity.username}};
    text = j.dump(2) + "\n";
  } catch (const std::exception& e) {
    // dump() throws on strings that are not UTF-8.
    return InvalidArgument("cannot encode identity for " + path + ": " +
                           e.what());
  }
  return AtomicWriteFile(path, text, kIdentityMode);
}

Result<Identity> ReadIdentityFile(const std::string& path) {
  MEZ_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    return DataLoss("identity file " + path +
                    " is not valid JSON: " + e.what());
  }
  if (!j.is_object()) {
    return DataLoss("identity file " + path + " is not a JSON object");
  }
  Identity id;
  MEZ_ASSIGN_OR_RETURN(id.auth_addr, StringField(j, "auth_addr", path));
  MEZ_ASSIGN_OR_RETURN(id.proxy_addr, StringField(j, "proxy_addr", path));
  MEZ_ASSIGN_OR_RETURN(id.tls_ca_pem, StringField(j, "tls_ca_pem", path));
  MEZ_ASSIGN_OR_RETURN(id.token, StringField(j, "token", path));
  MEZ_ASSIGN_OR_RETURN(id.username, StringField(j, "username", path));
  return id;
}

}  // namespace mez::auth
