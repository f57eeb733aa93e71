// msh sessions ls, msh sessions show
#include "cmd/msh/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddSessionsCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* sessions = app->add_subcommand("sessions", "recorded sessions");
  sessions->require_subcommand(1);
  auto* ls = sessions->add_subcommand(
      "ls", "list sessions, newest first (yours; admins see all)");
  auto o = std::make_shared<SessionsLsOptions>();
  ls->add_option("--user", o->user, "only this user's sessions");
  ls->add_option("--node", o->node, "only sessions on this node");
  ls->add_option("--kind", o->kind, "only sessions of this kind")
      ->check(CLI::IsMember({"shell", "exec", "tcpip"}));
  ls->add_option("--status", o->status, "only sessions in this state")
      ->check(CLI::IsMember({"recording", "complete", "incomplete"}));
  ls->add_option("--last", o->last, "only sessions started within, e.g. 24h");
  ls->add_option("--since", o->since,
                 "started at or after: ISO-8601 UTC time or a duration ago");
  ls->add_option("--until", o->until,
                 "started before: ISO-8601 UTC time or a duration ago");
  ls->add_option("--limit", o->limit,
                 "at most this many (default 50, with a note when there are "
                 "more; 0: all)");
  ls->add_option("--format", o->format, "text, json or jsonl")
      ->check(CLI::IsMember({"text", "json", "jsonl"}));
  ls->add_flag("-q,--quiet", o->quiet, "print session ids only");
  ls->add_flag("--header", o->header,
               "print the header line also when stdout is not a terminal");
  ls->callback([o, identity, rc] {
    o->identity = *identity;
    *rc = Report("msh", SessionsLs(*o));
  });

  auto* show = sessions->add_subcommand(
      "show",
      "a session's details, then the commands, files and connections its "
      "enhanced recording captured, in time order");
  auto so = std::make_shared<SessionsShowOptions>();
  show->add_option("id", so->id, "the session id (or a unique prefix)")
      ->required();
  show->add_option("--format", so->format,
                   "text, or json: the stored event lines, one per line")
      ->check(CLI::IsMember({"text", "json"}));
  show->callback([so, identity, rc] {
    so->identity = *identity;
    *rc = Report("msh", SessionsShow(*so));
  });
}

}  // namespace mez::cli
