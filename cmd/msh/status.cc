// msh status | msh logout
#include "cmd/msh/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddStatusCommands(CLI::App* app, const std::string* identity, int* rc) {
  auto* status = app->add_subcommand(
      "status",
      "show the identity in use: user, role, logins, cluster, expiry (exit "
      "1 when expired or missing)");
  status->callback([=] { *rc = Report("msh", ShowStatus(*identity)); });
  auto* logout = app->add_subcommand(
      "logout", "remove the identity stored by 'msh login'");
  logout->callback([=] { *rc = Report("msh", Logout()); });
}

}  // namespace mez::cli
