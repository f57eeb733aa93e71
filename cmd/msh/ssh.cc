// msh ssh [-p PORT] [-t|-T] [login@]NODE [command...]
#include "cmd/msh/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddSshCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* ssh = app->add_subcommand(
      "ssh",
      "connect to a node with a short-lived certificate (runs OpenSSH ssh)");
  auto o = std::make_shared<SshOptions>();
  ssh->add_option("-p,--port", o->port,
                  "SSH port (default: the node's registered port)")
      ->check(CLI::Range(1, 65535));
  auto* t = ssh->add_flag("-t", o->force_tty, "force a pseudo-terminal");
  auto* nt = ssh->add_flag("-T", o->no_tty, "disable the pseudo-terminal");
  t->excludes(nt);
  ssh->add_option("target", o->target, "[login@]NODE")->required();
  ssh->add_option("command", o->command, "command to run on the node");
  ssh->positionals_at_end();
  ssh->callback([o, identity, rc] {
    o->identity = *identity;
    *rc = Report("msh", Ssh(*o));
  });
}

}  // namespace mez::cli
