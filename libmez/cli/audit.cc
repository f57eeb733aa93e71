// mezctl audit ls: the cluster's audit events as a table, json or jsonl.
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

}  // namespace

Status AuditLs(const AuditLsOptions& o) {
  MEZ_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(o.format));
  if (o.limit < 0) return InvalidArgument("--limit must be 0 or more");
  pb::ListAuditRequest req;
  req.set_type(o.type);
  req.set_user(o.user);
  req.set_session_id(o.session);
  req.set_limit(o.limit);
  int64_t since = 0, until = 0;
  MEZ_RETURN_IF_ERROR(TimeWindow(o.last, o.since, o.until,
                                 RealClock()->WallMicros(), &since, &until));
  req.set_since_us(since);
  req.set_until_us(until);
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::ListAuditResponse resp;
  MEZ_RETURN_IF_ERROR(client->ListAudit(req, &resp));
  if (format != OutputFormat::kText) {
    std::vector<ordered_json> rows;
    for (const auto& e : resp.events()) {
      ordered_json details = ordered_json::parse(e.details(), nullptr, false);
      if (details.is_discarded()) details = e.details();
      rows.push_back(ordered_json{{"id", e.id()},
                                  {"time", IsoUtc(e.time_us())},
                                  {"time_us", e.time_us()},
                                  {"type", e.type()},
                                  {"user", e.user()},
                                  {"session_id", e.session_id()},
                                  {"node", e.node()},
                                  {"details", details}});
    }
    PrintJson(rows, format);
    return Status::Ok();
  }
  Table t({"TIME", "TYPE", "USER", "SESSION", "NODE", "DETAILS"});
  for (const auto& e : resp.events()) {
    t.AddRow({IsoUtc(e.time_us()), e.type(), e.user(), e.session_id(), e.node(),
              e.details()});
  }
  t.Print(stdout, StdoutIsTty(), TerminalWidth());
  return Status::Ok();
}

}  // namespace mez::cli
