// mezctl: the Mezite operator CLI.
#include "cmd/common/run_app.h"
#include "cmd/mezctl/commands.h"
#include "libmez/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "mezctl - Mezite operator CLI: cluster settings, audit log, "
      "nodes, users and certificate authorities"};
  app.require_subcommand(1);
  app.footer(mez::cli::kExitCodesHelp);
  std::string identity;
  app.add_option("--identity", identity,
                 "identity file to use, e.g. DATA_DIR/admin.identity "
                 "(default: $MEZ_IDENTITY, then the one stored by 'msh login')")
      ->envname("MEZ_IDENTITY");
  int rc = 0;
  mez::cli::AddConfigCommand(&app, &identity, &rc);
  mez::cli::AddAuditCommand(&app, &identity, &rc);
  mez::cli::AddNodesCommand(&app, &identity, &rc);
  mez::cli::AddUsersCommand(&app, &identity, &rc);
  mez::cli::AddCaCommand(&app, &identity, &rc);
  mez::cli::AddWebCommand(&app, &identity, &rc);
  return mez::cmd::RunApp(app, argc, argv, &rc);
}
