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
  if (o.limit < 0) return InvalidArgument("--limit must be 0 or more");
  pb::ListSessionsRequest req;
  req.set_user(o.user);
  req.set_node(o.node);
  req.set_limit(o.limit);
  int64_t since = 0, until = 0;
  MEZ_RETURN_IF_ERROR(
      TimeWindow(o.last, "", "", RealClock()->WallMicros(), &since, &until));
  req.set_since_us(since);
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::ListSessionsResponse resp;
  MEZ_RETURN_IF_ERROR(client->ListSessions(req, &resp));
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
  Table t({"SESSION ID", "USER", "NODE", "LOGIN", "STARTED", "ENDED", "KIND",
           "STATUS"});
  for (const auto& s : resp.sessions()) {
    t.AddRow({s.id(), s.user(), s.node(), s.login(), IsoUtc(s.started_us()),
              IsoUtc(s.ended_us()), s.kind(), s.status()});
  }
  t.Print(stdout, StdoutIsTty(), TerminalWidth(), 7);
  return Status::Ok();
}

}  // namespace mez::cli
