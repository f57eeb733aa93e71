// Output for the CLIs: ISO-8601 times, text tables that scripts can cut,
// and JSON / JSON Lines with stable field names.
#ifndef MEZ_CLI_OUTPUT_H_
#define MEZ_CLI_OUTPUT_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/util/status.h"

namespace mez::cli {

enum class OutputFormat { kText, kJson, kJsonl };
// "text", "json", "jsonl"; anything else names the allowed values.
Result<OutputFormat> ParseOutputFormat(const std::string& s);

// "2026-11-22T10:00:00Z" for Unix microseconds; "-" for 0.
std::string IsoUtc(int64_t unix_us);
// Parses "2026-11-22", "2026-11-22T10:00:00Z" (or without Z, as UTC).
Result<int64_t> ParseIsoUtc(const std::string& s);

// "2026-11-22 10:00" (UTC, to the minute) for a table on a terminal.
std::string ShortUtc(int64_t unix_us);

// Resolves --last / --since / --until into a [since, until) window in Unix
// microseconds (0 = open). --last excludes the other two. --since and
// --until take an ISO-8601 UTC time or a duration back from now ("24h").
Status TimeWindow(const std::string& last, const std::string& since,
                  const std::string& until, int64_t now_us, int64_t* since_us,
                  int64_t* until_us);

// "12m34s", "1h02m03s", "45s", "0.25s" for a duration in microseconds
// (negative as 0).
std::string ShortDuration(int64_t us);

// A text table. On a terminal: columns fit the width (droppable columns go
// first, in the order given, then long cells of the columns that are not
// kept whole are cut with "…") and the status column may be coloured.
// Otherwise: every cell whole, no colour, empty cells as "-", one row per
// line, columns separated by two spaces, so awk and cut work.
// `s` as a terminal may show it without acting on it: control characters
// (C0 and DEL as \xNN, the C1 controls U+0080..U+009F as \uNNNN) and bytes
// that are not UTF-8 (\xNN) escaped, everything else as is. For text that
// comes from a recorded session or a server: argv, paths, audit details.
std::string TerminalSafe(std::string_view s);

class Table {
 public:
  explicit Table(std::vector<std::string> headers)
      : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> cells) {
    rows_.push_back(std::move(cells));
  }
  // Columns never cut on a terminal (ids, times), whatever the width.
  void KeepWhole(std::vector<int> columns) { whole_ = std::move(columns); }
  // Columns left out on a terminal too narrow for the table, first first.
  void DropFirst(std::vector<int> columns) { drop_ = std::move(columns); }
  // `color_column`: index of a column whose values get colours on a tty
  // (complete green, recording yellow, incomplete red), or -1. The header
  // line is printed when `header` is true.
  void Print(FILE* out, bool tty, int tty_width, int color_column = -1,
             bool header = true) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<int> whole_, drop_;
};

// Whether fd 1 is a terminal, and its width (80 when unknown).
bool StdoutIsTty();
int TerminalWidth();

}  // namespace mez::cli

#endif  // MEZ_CLI_OUTPUT_H_
