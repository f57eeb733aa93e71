// mezctl nodes add|ls|rm
#include "cmd/mezctl/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddNodesCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* nodes = app->add_subcommand("nodes", "nodes of the cluster");
  nodes->require_subcommand(1);

  auto o = std::make_shared<NodesAddOptions>();
  auto* add = nodes->add_subcommand(
      "add", "register a node (agent nodes get a join token, shown once)");
  add->add_option("name", o->name, "node name")->required();
  add->add_option("--addr", o->addr, "HOST:PORT where it serves SSH")
      ->required();
  add->add_flag("--openssh", o->openssh,
                "agentless OpenSSH node, recorded by the proxy");
  add->add_option("--login-hint", o->login_hint, "usual login, for display");
  add->add_option("--host-key", o->host_key,
                  "pin the SSH host public key line (default: the key mezd "
                  "reports when it first joins)");
  add->add_option("--auth", o->auth,
                  "mezrecd's HOST:PORT as the node reaches it, for the "
                  "printed mezd command (default: your identity's)");
  add->add_option("--data-dir", o->data_dir,
                  "the node's data dir, for the printed mezd command "
                  "(default /var/lib/mezd)");
  add->callback([o, identity, rc] {
    o->identity = *identity;
    *rc = Report("mezctl", NodesAdd(*o));
  });

  auto format = std::make_shared<std::string>("text");
  auto* ls = nodes->add_subcommand("ls", "list nodes");
  ls->add_option("--format", *format, "text, json or jsonl")
      ->check(CLI::IsMember({"text", "json", "jsonl"}));
  ls->callback([=] { *rc = Report("mezctl", NodesLs(*identity, *format)); });

  auto name = std::make_shared<std::string>();
  auto* rm =
      nodes->add_subcommand("rm", "remove a node (its token stops working)");
  rm->add_option("name", *name, "node name")->required();
  rm->callback([=] { *rc = Report("mezctl", NodesRm(*identity, *name)); });
}

}  // namespace mez::cli
