// mezctl web
#include "cmd/mezctl/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddWebCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* web = app->add_subcommand(
      "web",
      "print a single-use link that signs you in to the web UI with this "
      "identity (open it within 60 s)");
  web->callback(
      [=] { *rc = Report("mezctl", WebSignIn(*identity, "mezctl")); });
}

}  // namespace mez::cli
