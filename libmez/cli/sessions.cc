// msh sessions ls: the recorded sessions as a table, json or jsonl.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"
#include "libmez/cli/output.h"
#include "libmez/util/clock.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;
using nlohmann::ordered_json;

ordered_json SessionJson(const pb::SessionInfo& s) {
  return ordered_json{{"id", s.id()},
                      {"connection_id", s.connection_id()},
                      {"user", s.user()},
                      {"node", s.node()},
                      {"login", s.login()},
                      {"kind", s.kind()},
                      {"command", s.command()},
                      {"started", IsoUtc(s.started_us())},
                      {"ended", s.ended_us() ? IsoUtc(s.ended_us()) : ""},
                      {"started_us", s.started_us()},
                      {"ended_us", s.ended_us()},
                      {"bytes", s.bytes()},
                      {"status", s.status()},
                      {"storage_key", s.storage_key()},
                      {"format", s.format()},
                      {"encrypted", s.encrypted()}};
}

}  // namespace

Status SessionsLs(const SessionsLsOptions& o) {
  MEZ_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(o.format));
  MEZ_ASSIGN_OR_RETURN(ListWindow w,
                       MakeListWindow(o.limit, o.last, o.since, o.until));
  pb::ListSessionsRequest req;
  req.set_user(o.user);
  req.set_node(o.node);
  req.set_kind(o.kind);
  req.set_status(o.status);
  req.set_limit(w.ask);
  req.set_since_us(w.since_us);
  req.set_until_us(w.until_us);
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::ListSessionsResponse resp;
  MEZ_RETURN_IF_ERROR(client->ListSessions(req, &resp));
  TrimToWindow(w, resp.mutable_sessions(), "msh", "sessions");
  if (o.quiet) {
    for (const auto& s : resp.sessions()) std::printf("%s\n", s.id().c_str());
    return Status::Ok();
  }
  if (format != OutputFormat::kText) {
    std::vector<ordered_json> rows;
    for (const auto& s : resp.sessions()) rows.push_back(SessionJson(s));
    PrintJson(rows, format);
    return Status::Ok();
  }
  // Piped: ISO times, every column; on a terminal: times to the minute, and
  // the least useful columns go first when the width is short.
  const bool tty = StdoutIsTty();
  auto when = [tty](int64_t us) { return tty ? ShortUtc(us) : IsoUtc(us); };
  Table t({"SESSION ID", "USER", "NODE", "LOGIN", "STARTED", "ENDED", "KIND",
           "STATUS"});
  for (const auto& s : resp.sessions()) {
    t.AddRow({s.id(), s.user(), s.node(), s.login(), when(s.started_us()),
              when(s.ended_us()), s.kind(), s.status()});
  }
  t.KeepWhole({0, 4, 5});
  t.DropFirst({5, 3, 6, 1, 2});
  t.Print(stdout, tty, TerminalWidth(), 7, tty || o.header);
  return Status::Ok();
}

}  // namespace mez::cli
