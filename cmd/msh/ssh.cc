// msh ssh [-p PORT] [-t|-T] [-N] [-L [BIND:]PORT:HOST:HOSTPORT]...
//         [login@]NODE [command...]
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
  // One spec per -L, repeatable; never swallows the node name after it.
  ssh->add_option("-L,--local-forward", o->local_forwards,
                  "forward a local port through the node to HOST:HOSTPORT "
                  "(loopback unless BIND is given; repeatable)")
      ->type_name("[BIND:]PORT:HOST:HOSTPORT")
      ->allow_extra_args(false);
  ssh->add_flag("-N,--no-command", o->no_command,
                "run no command or shell, only forward ports");
  ssh->add_option("target", o->target, "[login@]NODE")->required();
  ssh->add_option("command", o->command, "command to run on the node");
  ssh->positionals_at_end();
  ssh->callback([o, identity, rc] {
    o->identity = *identity;
    int code = 1;
    Status s = Ssh(*o, &code);
    *rc = s.ok() ? code : Report("msh", s);
  });
}

}  // namespace mez::cli
