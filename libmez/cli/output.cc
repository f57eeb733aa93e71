#include "libmez/cli/output.h"

#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "libmez/util/duration.h"

namespace mez::cli {
namespace {

// Display width of UTF-8 text, counting each code point as one column.
size_t Columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Cut(const std::string& s, size_t width) {
  if (Columns(s) <= width) return s;
  if (width == 0) return "";
  std::string out;
  size_t cols = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80) {
      if (cols + 1 == width) break;
      ++cols;
    }
    out += s[i];
  }
  return out + "\xE2\x80\xA6";  // "…"
}

}  // namespace

Result<OutputFormat> ParseOutputFormat(const std::string& s) {
  if (s == "text") return OutputFormat::kText;
  if (s == "json") return OutputFormat::kJson;
  if (s == "jsonl") return OutputFormat::kJsonl;
  return InvalidArgument("--format must be text, json or jsonl (got '" + s +
                         "')");
}

std::string IsoUtc(int64_t unix_us) {
  if (unix_us <= 0) return "-";
  time_t t = static_cast<time_t>(unix_us / 1'000'000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<int64_t> ParseIsoUtc(const std::string& s) {
  struct tm tm = {};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) {
    tm = {};
    end = strptime(s.c_str(), "%Y-%m-%d", &tm);
  }
  if (end == nullptr || (*end != '\0' && std::string(end) != "Z")) {
    return InvalidArgument("'" + s +
                           "' is not an ISO-8601 UTC time (e.g. "
                           "2026-11-22T10:00:00Z or 2026-11-22)");
  }
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000;
}

Status TimeWindow(const std::string& last, const std::string& since,
                  const std::string& until, int64_t now_us, int64_t* since_us,
                  int64_t* until_us) {
  *since_us = 0;
  *until_us = 0;
  if (!last.empty()) {
    if (!since.empty() || !until.empty()) {
      return InvalidArgument("--last cannot be combined with --since/--until");
    }
    MEZ_ASSIGN_OR_RETURN(int64_t d, ParseDuration(last));
    *since_us = now_us - d;
    return Status::Ok();
  }
  if (!since.empty()) {
    MEZ_ASSIGN_OR_RETURN(*since_us, ParseIsoUtc(since));
  }
  if (!until.empty()) {
    MEZ_ASSIGN_OR_RETURN(*until_us, ParseIsoUtc(until));
  }
  if (*since_us && *until_us && *until_us <= *since_us) {
    return InvalidArgument("--until must be after --since");
  }
  return Status::Ok();
}

void Table::Print(FILE* out, bool tty, int tty_width, int color_column) const {
  size_t ncol = headers_.size();
  std::vector<std::vector<std::string>> cells;
  cells.push_back(headers_);
  for (const auto& r : rows_) {
    std::vector<std::string> row(ncol, "-");
    for (size_t i = 0; i < ncol && i < r.size(); ++i) {
      if (!r[i].empty()) row[i] = r[i];
      // One row per line, whatever the data holds.
      std::replace(row[i].begin(), row[i].end(), '\n', ' ');
      std::replace(row[i].begin(), row[i].end(), '\t', ' ');
    }
    cells.push_back(std::move(row));
  }
  std::vector<size_t> width(ncol, 0);
  for (const auto& r : cells) {
    for (size_t i = 0; i < ncol; ++i)
      width[i] = std::max(width[i], Columns(r[i]));
  }
  if (tty) {
    // Shrink the widest columns until the table fits the terminal.
    size_t total = 0;
    for (size_t w : width) total += w + 2;
    while (total > static_cast<size_t>(tty_width)) {
      auto widest = std::max_element(width.begin(), width.end());
      if (*widest <= 8) break;
      --*widest;
      --total;
    }
  }
  for (size_t r = 0; r < cells.size(); ++r) {
    std::string line;
    for (size_t i = 0; i < ncol; ++i) {
      std::string cell = tty ? Cut(cells[r][i], width[i]) : cells[r][i];
      size_t pad = width[i] > Columns(cell) ? width[i] - Columns(cell) : 0;
      if (tty && r > 0 && static_cast<int>(i) == color_column) {
        const char* color = cell == "complete"     ? "\x1b[32m"
                            : cell == "recording"  ? "\x1b[33m"
                            : cell == "incomplete" ? "\x1b[31m"
                                                   : "";
        if (*color) cell = std::string(color) + cell + "\x1b[0m";
      }
      line += cell;
      if (i + 1 < ncol) line += std::string(pad + 2, ' ');
    }
    std::fprintf(out, "%s\n", line.c_str());
  }
}

bool StdoutIsTty() { return isatty(1) == 1; }

int TerminalWidth() {
  struct winsize ws;
  if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

}  // namespace mez::cli
