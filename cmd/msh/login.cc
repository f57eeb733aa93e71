// msh login --identity FILE
#include "cmd/msh/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddLoginCommand(CLI::App* app, int* rc) {
  auto* cmd = app->add_subcommand(
      "login", "store an identity file (from 'mezctl users add') as yours");
  auto file = std::make_shared<std::string>();
  // A subcommand-local --identity: here it names the file to store.
  cmd->add_option("--identity", *file, "identity file to store")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->callback([file, rc] { *rc = Report("msh", Login(*file)); });
}

}  // namespace mez::cli
