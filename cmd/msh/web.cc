// msh web
#include "cmd/msh/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddWebCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* web = app->add_subcommand(
      "web",
      "print a single-use link that signs you in to the web UI (open it "
      "within 60 s)");
  web->callback([=] { *rc = Report("msh", WebSignIn(*identity, "msh")); });
}

}  // namespace mez::cli
