// mezctl audit ls
#include "cmd/mezctl/commands.h"
#include "libmez/cli/commands.h"

namespace mez::cli {

void AddAuditCommand(CLI::App* app, const std::string* identity, int* rc) {
  auto* audit = app->add_subcommand("audit", "the audit log");
  audit->require_subcommand(1);
  auto* ls = audit->add_subcommand("ls", "list audit events, newest first");
  auto o = std::make_shared<AuditLsOptions>();
  ls->add_option("--type", o->type, "only this type, e.g. session.end");
  ls->add_option("--user", o->user, "only events of this user");
  ls->add_option("--session", o->session, "only events of this session");
  ls->add_option("--node", o->node, "only events on this node");
  ls->add_option("--last", o->last, "only events within, e.g. 24h");
  ls->add_option("--since", o->since,
                 "from this ISO-8601 UTC time, or a duration ago (24h)");
  ls->add_option("--until", o->until,
                 "before this ISO-8601 UTC time, or a duration ago");
  ls->add_option("--limit", o->limit,
                 "at most this many (default 50, with a note when there are "
                 "more; 0: all)");
  ls->add_option("--format", o->format, "text, json or jsonl")
      ->check(CLI::IsMember({"text", "json", "jsonl"}));
  ls->add_flag("--header", o->header,
               "print the header line also when stdout is not a terminal");
  ls->callback([o, identity, rc] {
    o->identity = *identity;
    *rc = Report("mezctl", AuditLs(*o));
  });
}

}  // namespace mez::cli
