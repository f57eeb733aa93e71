// mezctl ca export --type=user|host
#include "cmd/mezctl/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddCaCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* ca = app->add_subcommand("ca", "certificate authorities");
  ca->require_subcommand(1);
  auto type = std::make_shared<std::string>();
  auto* exp = ca->add_subcommand(
      "export",
      "print a CA public key: user (for sshd TrustedUserCAKeys) or host (for "
      "known_hosts @cert-authority)");
  exp->add_option("--type", *type, "user or host")
      ->required()
      ->check(CLI::IsMember({"user", "host"}));
  exp->callback([=] { *rc = Report("mezctl", CaExport(*identity, *type)); });
}

}  // namespace mez::cli
