#include "libmez/cli/call.h"

#include <cstdio>

#include "libmez/cli/commands.h"
#include "libmez/util/clock.h"

namespace mez::cli {

Result<std::unique_ptr<rpc::ClusterClient>> Connect(
    const std::string& identity_flag) {
  MEZ_ASSIGN_OR_RETURN(auto id, rpc::ResolveIdentity(identity_flag));
  return rpc::ClusterClient::Connect(id);
}

void PrintJson(const std::vector<nlohmann::ordered_json>& rows,
               OutputFormat f) {
  if (f == OutputFormat::kJson) {
    std::printf("%s\n", nlohmann::ordered_json(rows).dump(2).c_str());
  } else {
    for (const auto& r : rows) std::printf("%s\n", r.dump().c_str());
  }
}

Result<ListWindow> MakeListWindow(int limit_flag, const std::string& last,
                                  const std::string& since,
                                  const std::string& until) {
  if (limit_flag < -1) return InvalidArgument("--limit must be 0 or more");
  ListWindow w;
  w.limit = limit_flag < 0 ? kDefaultListLimit : limit_flag;
  w.ask = w.limit == 0 ? 0 : w.limit + 1;
  w.note = limit_flag < 0;
  MEZ_RETURN_IF_ERROR(TimeWindow(last, since, until, RealClock()->WallMicros(),
                                 &w.since_us, &w.until_us));
  return w;
}

void NoteCut(const char* program, int limit, const char* what) {
  std::fprintf(stderr,
               "%s: the latest %d %s shown; --limit=0 lists all, "
               "--since/--until a time window\n",
               program, limit, what);
}

int Report(const char* program, const Status& s) {
  if (s.ok()) return 0;
  std::fprintf(stderr, "%s: %s\n", program, s.message().c_str());
  return ExitCode(s);
}

int ExitCode(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return kExitOk;
    case Code::kInvalidArgument:
      return kExitUsage;
    case Code::kNotFound:
      return kExitNotFound;
    case Code::kPermissionDenied:
    case Code::kUnauthenticated:
      return kExitDenied;
    case Code::kUnavailable:
      return kExitUnavailable;
    default:
      return kExitError;
  }
}

}  // namespace mez::cli
