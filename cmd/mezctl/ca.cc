// mezctl ca export --type=user|host|tls
#include "cmd/mezctl/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddCaCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* ca = app->add_subcommand("ca", "certificate authorities");
  ca->require_subcommand(1);
  auto type = std::make_shared<std::string>();
  auto* exp = ca->add_subcommand(
      "export",
      "print a CA: user (for sshd TrustedUserCAKeys), host (for known_hosts "
      "@cert-authority) or tls (the PEM mezrecd's TLS certificate chains to)");
  exp->add_option("--type", *type, "user, host or tls")
      ->required()
      ->check(CLI::IsMember({"user", "host", "tls"}));
  exp->callback([=] { *rc = Report("mezctl", CaExport(*identity, *type)); });
}

}  // namespace mez::cli
