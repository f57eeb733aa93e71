// What every msh and mezctl command shares: reaching mezrecd with the
// caller's identity (its calls are rpc::ClusterClient's typed methods),
// JSON rows, and the exit-code rule.
#ifndef MEZ_CLI_CALL_H_
#define MEZ_CLI_CALL_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "libmez/cli/output.h"
#include "libmez/rpc/client.h"
#include "libmez/util/status.h"

namespace mez::cli {

// Resolves the identity (`identity_flag`, then $MEZ_IDENTITY, then the one
// stored by msh login) and connects to the mezrecd it names.
Result<std::unique_ptr<rpc::ClusterClient>> Connect(
    const std::string& identity_flag);

// The window of a list command: --limit (-1: kDefaultListLimit, 0: all)
// and --last/--since/--until, as a server request asks for them.
struct ListWindow {
  int limit = 0;      // rows shown; 0: all
  int ask = 0;        // rows to ask for: one more, to know a list was cut
  bool note = false;  // the default window: say so when it cuts
  int64_t since_us = 0, until_us = 0;
};
Result<ListWindow> MakeListWindow(int limit_flag, const std::string& last,
                                  const std::string& since,
                                  const std::string& until);
// "PROGRAM: the latest LIMIT WHAT shown; ..." on stderr.
void NoteCut(const char* program, int limit, const char* what);
// Drops the extra row asked for; with the default window, says on stderr
// that `what` were cut and how to see more. Returns whether it cut.
template <typename Rows>
bool TrimToWindow(const ListWindow& w, Rows* rows, const char* program,
                  const char* what) {
  if (w.limit == 0 || rows->size() <= w.limit) return false;
  rows->DeleteSubrange(w.limit, rows->size() - w.limit);
  if (w.note) NoteCut(program, w.limit, what);
  return true;
}
// Prints rows to stdout as json (one array) or jsonl (one object per line).
void PrintJson(const std::vector<nlohmann::ordered_json>& rows, OutputFormat f);

}  // namespace mez::cli

#endif  // MEZ_CLI_CALL_H_
