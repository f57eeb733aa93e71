// mezctl users add|reissue|ls|rm
#include "cmd/mezctl/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddUsersCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* users = app->add_subcommand("users", "users of the cluster");
  users->require_subcommand(1);

  auto o = std::make_shared<UsersAddOptions>();
  auto* add = users->add_subcommand(
      "add", "create a user and write (or print) their identity file");
  add->add_option("name", o->name, "user name")->required();
  add->add_option("--logins", o->logins, "OS logins they may use, a,b")
      ->delimiter(',');
  add->add_option("--role", o->role,
                  "user, admin, or proxy (a token for a proxy-only mezrecd)")
      ->check(CLI::IsMember({"user", "admin", "proxy"}));
  add->add_option("--ttl", o->ttl,
                  "how long the identity is valid (default 12h; 8760h for a "
                  "proxy)");
  add->add_option("--identity-out", o->identity_out,
                  "write the identity here (default: print it)");
  add->callback([o, identity, rc] {
    o->identity = *identity;
    *rc = Report("mezctl", UsersAdd(*o));
  });

  auto r = std::make_shared<UsersReissueOptions>();
  auto* reissue = users->add_subcommand(
      "reissue",
      "write (or print) a new identity for an existing user, e.g. when "
      "theirs expired; earlier ones stay valid until they expire");
  reissue->add_option("name", r->name, "user name")->required();
  reissue->add_option("--ttl", r->ttl,
                      "how long the identity is valid (default 12h; 8760h "
                      "for a proxy)");
  reissue->add_option("--identity-out", r->identity_out,
                      "write the identity here (default: print it)");
  reissue->callback([r, identity, rc] {
    r->identity = *identity;
    *rc = Report("mezctl", UsersReissue(*r));
  });

  auto format = std::make_shared<std::string>("text");
  auto* ls = users->add_subcommand("ls", "list users and proxies");
  ls->add_option("--format", *format, "text, json or jsonl")
      ->check(CLI::IsMember({"text", "json", "jsonl"}));
  ls->callback([=] { *rc = Report("mezctl", UsersLs(*identity, *format)); });

  auto name = std::make_shared<std::string>();
  auto* rm = users->add_subcommand(
      "rm", "remove a user or proxy (every token issued for it is revoked)");
  rm->add_option("name", *name, "user name")->required();
  rm->callback([=] { *rc = Report("mezctl", UsersRm(*identity, *name)); });
}

}  // namespace mez::cli
