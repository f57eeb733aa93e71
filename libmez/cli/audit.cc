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

// The DETAILS cell: for session.end "login=L exit=N 12m34s" from its JSON
// details, then any other fields; other events their details as sent.
std::string DetailsCell(const pb::AuditEventInfo& e) {
  if (e.type() != "session.end") return e.details();
  ordered_json d = ordered_json::parse(e.details(), nullptr, false);
  if (!d.is_object()) return e.details();
  std::string out;
  auto add = [&out](const std::string& s) {
    out += (out.empty() ? "" : " ") + s;
  };
  auto text = [](const ordered_json& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  if (d.contains("login")) add("login=" + text(d["login"]));
  if (d.contains("exit_status")) add("exit=" + text(d["exit_status"]));
  if (d.contains("duration_us") && d["duration_us"].is_number()) {
    add(ShortDuration(d["duration_us"].get<int64_t>()));
  }
  for (const auto& [k, v] : d.items()) {
    if (k == "login" || k == "exit_status" || k == "duration_us") continue;
    add(k + "=" + text(v));
  }
  return out;
}

}  // namespace

Status AuditLs(const AuditLsOptions& o) {
  MEZ_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(o.format));
  MEZ_ASSIGN_OR_RETURN(ListWindow w,
                       MakeListWindow(o.limit, o.last, o.since, o.until));
  pb::ListAuditRequest req;
  req.set_type(o.type);
  req.set_user(o.user);
  req.set_session_id(o.session);
  req.set_node(o.node);
  req.set_limit(w.ask);
  req.set_since_us(w.since_us);
  req.set_until_us(w.until_us);
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::ListAuditResponse resp;
  MEZ_RETURN_IF_ERROR(client->ListAudit(req, &resp));
  TrimToWindow(w, resp.mutable_events(), "mezctl", "events");
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
  // As sessions ls: whole session ids and times; piped, ISO times.
  const bool tty = StdoutIsTty();
  Table t({"TIME", "TYPE", "USER", "SESSION", "NODE", "DETAILS"});
  for (const auto& e : resp.events()) {
    t.AddRow({tty ? ShortUtc(e.time_us()) : IsoUtc(e.time_us()), e.type(),
              e.user(), e.session_id(), e.node(), DetailsCell(e)});
  }
  t.KeepWhole({0, 3});
  t.DropFirst({4, 2});
  t.Print(stdout, tty, TerminalWidth(), -1, tty || o.header);
  return Status::Ok();
}

}  // namespace mez::cli
