// msh: the Mezite user CLI.
#include "cmd/common/run_app.h"
#include "cmd/msh/commands.h"
#include "libmez/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "msh - Mezite user CLI: log in, list and play recorded SSH "
      "sessions"};
  app.require_subcommand(1);
  app.footer(mez::cli::kExitCodesHelp);
  std::string identity;
  app.add_option("--identity", identity,
                 "identity file to use (default: $MEZ_IDENTITY, then the one "
                 "stored by 'msh login')")
      ->envname("MEZ_IDENTITY");
  int rc = 0;
  mez::cli::AddLoginCommand(&app, &rc);
  mez::cli::AddSessionsCommand(&app, &identity, &rc);
  mez::cli::AddPlayCommand(&app, &identity, &rc);
  mez::cli::AddSshCommand(&app, &identity, &rc);
  mez::cli::AddStatusCommands(&app, &identity, &rc);
  mez::cli::AddWebCommand(&app, &identity, &rc);
  return mez::cmd::RunApp(app, argc, argv, &rc);
}
