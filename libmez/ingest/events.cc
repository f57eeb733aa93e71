#include "libmez/ingest/events.h"

#include <algorithm>

namespace mez::ingest {
namespace {

constexpr const char* kKnownTypes[] = {"exec",     "exit",   "file",
                                       "connect",  "listen", "accept",
                                       "udp_send", "loss",   "untracked"};

bool KnownType(const std::string& t) {
  return std::find(std::begin(kKnownTypes), std::end(kKnownTypes), t) !=
         std::end(kKnownTypes);
}

Status LineError(size_t index, const std::string& why) {
  return InvalidArgument("events line " + std::to_string(index + 1) + ": " +
                         why);
}

// The deepest nesting of arrays and objects, counted without parsing
// (strings skipped), so that a line nested a million deep is refused
// before a parser sees it.
int Depth(std::string_view line) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : line) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// The longest prefix of valid UTF-8 `s` of at most `max` bytes that ends
// at a character boundary: a message or audit row quoting it stays UTF-8
// (nlohmann's dump throws on anything else).
std::string Utf8Prefix(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

bool IsInteger(const nlohmann::json& v) {
  return v.is_number_integer() || v.is_number_unsigned();
}

// Copies `key` from `from` if present: numbers and booleans as they are,
// strings cut to kMaxAuditStringBytes (at a UTF-8 character boundary).
void Copy(const nlohmann::json& from, const char* key, nlohmann::json* to) {
  auto it = from.find(key);
  if (it == from.end()) return;
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (s.size() <= kMaxAuditStringBytes) {
      (*to)[key] = s;
      return;
    }
    std::string kept = Utf8Prefix(s, kMaxAuditStringBytes);
    (*to)[std::string(key) + "_audit_cut_bytes"] = s.size() - kept.size();
    (*to)[key] = std::move(kept);
  } else if (it->is_number() || it->is_boolean()) {
    (*to)[key] = *it;
  } else if (it->is_array()) {
    // flags: a short list of names.
    nlohmann::json a = nlohmann::json::array();
    for (const auto& v : *it) {
      if (a.size() >= 32) break;
      if (v.is_string() && v.get_ref<const std::string&>().size() <= 64) {
        a.push_back(v);
      }
    }
    (*to)[key] = std::move(a);
  }
}

}  // namespace

Result<std::vector<CheckedEvent>> CheckEventLines(
    const std::vector<std::string_view>& lines, int64_t frame_offset_us,
    int64_t started_us) {
  if (lines.size() > kMaxEventLines) {
    return InvalidArgument(
        "an events frame of " + std::to_string(lines.size()) +
        " lines is over the limit of " + std::to_string(kMaxEventLines));
  }
  if (frame_offset_us < 0) return InvalidArgument("events offset is negative");
  // Sizes and shapes first, before anything is parsed.
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    if (l.empty()) return LineError(i, "empty");
    if (l.size() > kMaxEventLineBytes) {
      return LineError(i, std::to_string(l.size()) +
                              " bytes is over the limit of " +
                              std::to_string(kMaxEventLineBytes));
    }
    if (l.find_first_of("\r\n") != std::string_view::npos) {
      return LineError(i, "holds a line break");
    }
    if (Depth(l) > kMaxEventDepth) {
      return LineError(i, "nested deeper than " +
                              std::to_string(kMaxEventDepth) + " levels");
    }
  }
  std::vector<CheckedEvent> out;
  out.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    CheckedEvent e;
    e.line = lines[i];
    e.json = nlohmann::json::parse(e.line, nullptr, /*allow_exceptions=*/false);
    if (e.json.is_discarded()) return LineError(i, "not valid JSON (UTF-8)");
    if (!e.json.is_object()) return LineError(i, "not a JSON object");
    auto type = e.json.find("type");
    if (type == e.json.end() || !type->is_string()) {
      return LineError(i, "has no string \"type\"");
    }
    e.type = type->get<std::string>();
    if (!KnownType(e.type)) {
      return LineError(i, "unknown type \"" + Utf8Prefix(e.type, 32) + "\"");
    }
    auto seq = e.json.find("seq");
    if (seq == e.json.end() || !IsInteger(*seq) ||
        (seq->is_number_integer() && seq->get<int64_t>() < 0)) {
      return LineError(i, "has no integer \"seq\" (0 or more)");
    }
    if (e.json.contains("offset_us")) {
      return LineError(i, "has an \"offset_us\" key (mezrecd adds it)");
    }
    e.offset_us = frame_offset_us;
    auto t = e.json.find("time_unix_ns");
    if (t != e.json.end() && t->is_number_unsigned()) {
      uint64_t us = t->get<uint64_t>() / 1000;
      uint64_t start = static_cast<uint64_t>(std::max<int64_t>(0, started_us));
      e.offset_us = us > start ? static_cast<int64_t>(us - start) : 0;
    } else if (t != e.json.end() && t->is_number_integer()) {
      // Negative: before the epoch, so before the start.
      e.offset_us = 0;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string StoredLine(const CheckedEvent& e) {
  std::string_view rest = e.line;
  size_t open = rest.find('{');  // Only whitespace can come before it.
  rest.remove_prefix(open + 1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) {
    rest.remove_suffix(1);
  }
  std::string out = "{\"offset_us\":" + std::to_string(e.offset_us) + ",";
  out.append(rest);
  return out;
}

std::string AuditTypeOf(const std::string& t) {
  if (t == "exec") return "session.command";
  if (t == "file") return "session.file";
  if (t == "loss") return "session.events_lost";
  if (t == "untracked") return "session.untracked";
  if (t == "connect" || t == "listen" || t == "accept" || t == "udp_send") {
    return "session.network";
  }
  return "";
}

nlohmann::json AuditDetailsOf(const CheckedEvent& e) {
  const nlohmann::json& j = e.json;
  nlohmann::json d = nlohmann::json::object();
  d["seq"] = j.at("seq");
  d["offset_us"] = e.offset_us;
  for (const char* k : {"pid", "ppid", "uid", "euid"}) Copy(j, k, &d);
  if (e.type == "untracked") {
    // A process the session left running: no longer followed.
    Copy(j, "path", &d);
    auto it = j.find("argv");
    if (it != j.end() && it->is_array()) {
      nlohmann::json argv = nlohmann::json::array();
      size_t kept = 0;
      for (const auto& a : *it) {
        if (!a.is_string()) continue;
        const std::string& s = a.get_ref<const std::string&>();
        if (kept + s.size() + 1 > kMaxAuditArgvBytes) break;
        kept += s.size() + 1;
        argv.push_back(s);
      }
      d["argv"] = std::move(argv);
    }
  } else if (e.type == "exec") {
    for (const char* k : {"path", "path_cut", "cwd", "cwd_cut", "argv_bytes",
                          "argv_cut_bytes", "argv_unreadable"}) {
      Copy(j, k, &d);
    }
    nlohmann::json argv = nlohmann::json::array();
    uint64_t kept = 0, left_out = 0;
    auto it = j.find("argv");
    if (it != j.end() && it->is_array()) {
      for (const auto& a : *it) {
        if (!a.is_string()) continue;
        const std::string& s = a.get_ref<const std::string&>();
        if (kept >= kMaxAuditArgvBytes) {
          left_out += s.size() + 1;
          continue;
        }
        size_t room = kMaxAuditArgvBytes - kept;
        if (s.size() + 1 <= room) {
          argv.push_back(s);
          kept += s.size() + 1;
          continue;
        }
        size_t n = room > 0 ? room - 1 : 0;
        while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
        argv.push_back(s.substr(0, n));
        kept = kMaxAuditArgvBytes;
        left_out += s.size() + 1 - n;  // With its NUL.
      }
    }
    d["argv"] = std::move(argv);
    // Bytes (arguments with their NUL, as argv_bytes counts them) of the
    // received argv left out of this row; the events file has them.
    if (left_out > 0) d["argv_audit_cut_bytes"] = left_out;
  } else if (e.type == "file") {
    // count, last_time_unix_ns: a run of identical opens collapsed into
    // this one event (enhanced-events.md, "Collapsed opens").
    for (const char* k :
         {"op", "path", "path_cut", "new_path", "flags", "mode", "fd", "errno",
          "error", "count", "last_time_unix_ns"}) {
      Copy(j, k, &d);
    }
  } else if (e.type == "loss") {
    for (const char* k :
         {"lost_exec", "lost_exit", "lost_net", "lost_file", "lost_forks"}) {
      Copy(j, k, &d);
    }
  } else {
    d["op"] = e.type;
    for (const char* k :
         {"family", "remote_addr", "remote_port", "local_addr", "local_port",
          "established", "errno", "error", "duration_ns"}) {
      Copy(j, k, &d);
    }
  }
  return d;
}

}  // namespace mez::ingest
