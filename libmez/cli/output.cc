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

std::string ShortUtc(int64_t unix_us) {
  if (unix_us <= 0) return "-";
  time_t t = static_cast<time_t>(unix_us / 1'000'000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M", &tm);
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
  // An ISO time, else a duration back from now; the ISO error if neither.
  auto point = [now_us](const std::string& s) -> Result<int64_t> {
    auto iso = ParseIsoUtc(s);
    if (iso.ok()) return iso;
    auto d = ParseDuration(s);
    if (d.ok()) return now_us - *d;
    return InvalidArgument(iso.status().message() + " or a duration (24h)");
  };
  if (!since.empty()) {
    MEZ_ASSIGN_OR_RETURN(*since_us, point(since));
  }
  if (!until.empty()) {
    MEZ_ASSIGN_OR_RETURN(*until_us, point(until));
  }
  if (*since_us && *until_us && *until_us <= *since_us) {
    return InvalidArgument("--until must be after --since");
  }
  return Status::Ok();
}

std::string TerminalSafe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
      ++i;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // The length of a well-formed UTF-8 sequence starting here, or 0.
    size_t n = c >= 0xC2 && c <= 0xDF   ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    if (n > 0 && i + n <= s.size()) {
      uint32_t cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
      for (size_t k = 1; k < n; ++k) {
        unsigned char cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) {
          n = 0;
          break;
        }
        cp = (cp << 6) | (cc & 0x3F);
      }
      bool minimal = n == 2 || (n == 3 && cp >= 0x800) ||
                     (n == 4 && cp >= 0x10000 && cp <= 0x10FFFF);
      bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
      if (n > 0 && minimal && !surrogate) {
        if (cp >= 0x80 && cp <= 0x9F) {
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
          out += buf;
        } else {
          out.append(s.substr(i, n));
        }
        i += n;
        continue;
      }
    }
    std::snprintf(buf, sizeof(buf), "\\x%02x", c);
    out += buf;
    ++i;
  }
  return out;
}

void Table::Print(FILE* out, bool tty, int tty_width, int color_column,
                  bool header) const {
  size_t ncol = headers_.size();
  std::vector<std::vector<std::string>> cells;
  cells.push_back(headers_);
  for (const auto& r : rows_) {
    std::vector<std::string> row(ncol, "-");
    for (size_t i = 0; i < ncol && i < r.size(); ++i) {
      if (!r[i].empty()) row[i] = r[i];
      // One row per line, whatever the data holds; nothing in a cell acts
      // on the terminal (audit details quote what sessions did).
      std::replace(row[i].begin(), row[i].end(), '\n', ' ');
      std::replace(row[i].begin(), row[i].end(), '\t', ' ');
      row[i] = TerminalSafe(row[i]);
    }
    cells.push_back(std::move(row));
  }
  std::vector<size_t> width(ncol, 0);
  for (size_t r = header ? 0 : 1; r < cells.size(); ++r) {
    for (size_t i = 0; i < ncol; ++i)
      width[i] = std::max(width[i], Columns(cells[r][i]));
  }
  std::vector<bool> shown(ncol, true);
  if (tty) {
    auto whole = [&](size_t i) {
      return std::find(whole_.begin(), whole_.end(), static_cast<int>(i)) !=
             whole_.end();
    };
    // The narrowest the table can get with the columns shown.
    auto min_total = [&] {
      size_t total = 0;
      for (size_t i = 0; i < ncol; ++i) {
        if (shown[i])
          total += (whole(i) ? width[i] : std::min<size_t>(width[i], 8)) + 2;
      }
      return total - 2;  // No gap after the last column.
    };
    for (int d : drop_) {
      if (min_total() <= static_cast<size_t>(tty_width)) break;
      if (d >= 0 && static_cast<size_t>(d) < ncol) shown[d] = false;
    }
    // Shrink the widest cuttable columns until the table fits.
    size_t total = 0;
    for (size_t i = 0; i < ncol; ++i) total += shown[i] ? width[i] + 2 : 0;
    total -= 2;
    while (total > static_cast<size_t>(tty_width)) {
      size_t widest = ncol;
      for (size_t i = 0; i < ncol; ++i) {
        if (!shown[i] || whole(i) || width[i] <= 8) continue;
        if (widest == ncol || width[i] > width[widest]) widest = i;
      }
      if (widest == ncol) break;
      --width[widest];
      --total;
    }
  }
  size_t last = 0;
  for (size_t i = 0; i < ncol; ++i) {
    if (shown[i]) last = i;
  }
  for (size_t r = header ? 0 : 1; r < cells.size(); ++r) {
    std::string line;
    for (size_t i = 0; i < ncol; ++i) {
      if (!shown[i]) continue;
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
      if (i < last) line += std::string(pad + 2, ' ');
    }
    std::fprintf(out, "%s\n", line.c_str());
  }
}

std::string ShortDuration(int64_t us) {
  if (us < 0) us = 0;
  int64_t s = us / 1'000'000;
  char buf[48];
  if (s < 10 && us % 1'000'000 != 0) {
    std::snprintf(buf, sizeof(buf), "%.2fs", static_cast<double>(us) / 1e6);
  } else if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds",
                  static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm%02llds",
                  static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

bool StdoutIsTty() { return isatty(1) == 1; }

int TerminalWidth() {
  struct winsize ws;
  if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

}  // namespace mez::cli
