#include "libmez/play/markers.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace mez::play {
namespace {

// `s` cut to at most `max` bytes without splitting a UTF-8 character.
std::string CutAt(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "...";
}

// The arguments joined by spaces; no longer than needed for a label.
std::string Join(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) {
    if (!s.empty()) s += ' ';
    s.append(a, 0, kMarkerLabelBytes + 1);
    if (s.size() > kMarkerLabelBytes) break;
  }
  return s;
}

bool IsInt(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer();
}

}  // namespace

void CommandMarkerBuilder::Add(const ExecEvent& e) {
  if (!have_shell_) {
    have_shell_ = true;
    shell_ = e.pid;
    shell_pgid_ = e.pgid;
    return;
  }
  if (e.pid == shell_) shell_pgid_ = e.pgid;  // It exec'd another shell.
  if (e.ppid != shell_ || e.pid == shell_) return;
  std::string label = Join(e.argv);
  // Groups tell pipelines apart when the shell made one for the command.
  bool grouped = e.pgid != 0 && e.pgid != shell_pgid_;
  bool same =
      grouped ? e.pgid == last_pgid_ : e.offset_us - last_start_ <= kPipelineUs;
  if (!markers_.empty() && same) {
    Marker& m = markers_.back();
    m.time_us = std::min(m.time_us, e.offset_us);
    if (m.label.size() <= kMarkerLabelBytes) {
      // A pipeline's processes exec in any order; they are forked in
      // order, the group's leader first, so pids give the order.
      int64_t rank = e.pid == e.pgid ? 0 : e.pid;
      auto at = std::upper_bound(
          parts_.begin(), parts_.end(), rank,
          [](int64_t r, const auto& part) { return r < part.first; });
      parts_.insert(at, {rank, label});
      m.label.clear();
      for (const auto& part : parts_) {
        if (!m.label.empty()) m.label += " | ";
        m.label += part.second;
      }
    }
  } else if (markers_.size() < kMaxMarkers) {
    markers_.push_back(Marker{e.offset_us, label});
    parts_.assign(1, {e.pid == e.pgid ? 0 : e.pid, label});
  }
  last_start_ = e.offset_us;
  last_pgid_ = grouped ? e.pgid : 0;
}

void CommandMarkerBuilder::AddLine(std::string_view line) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) return;
  auto type = j.find("type");
  if (type == j.end() || *type != "exec") return;
  if (!IsInt(j, "offset_us") || !IsInt(j, "pid") || !IsInt(j, "ppid")) return;
  ExecEvent e;
  if (IsInt(j, "pgid")) e.pgid = j["pgid"].get<int64_t>();
  e.offset_us = j["offset_us"].get<int64_t>();
  e.pid = j["pid"].get<int64_t>();
  e.ppid = j["ppid"].get<int64_t>();
  auto argv = j.find("argv");
  if (argv != j.end() && argv->is_array()) {
    for (const auto& a : *argv) {
      if (a.is_string()) e.argv.push_back(a.get<std::string>());
    }
  }
  Add(e);
}

std::vector<Marker> CommandMarkerBuilder::Finish() {
  for (Marker& m : markers_) m.label = CutAt(m.label, kMarkerLabelBytes);
  return std::move(markers_);
}

std::vector<Marker> CommandMarkers(const std::vector<ExecEvent>& execs) {
  CommandMarkerBuilder b;
  for (const ExecEvent& e : execs) b.Add(e);
  return b.Finish();
}

Result<std::vector<Marker>> CommandMarkersFromLines(record::ByteSource* lines,
                                                    uint64_t max_bytes,
                                                    bool* cut) {
  CommandMarkerBuilder b;
  std::string pending;
  char buf[1 << 16];
  uint64_t total = 0;
  if (cut != nullptr) *cut = false;
  for (;;) {
    if (total >= max_bytes) {
      if (cut != nullptr) *cut = true;
      return b.Finish();  // The last, partial line is dropped.
    }
    size_t want =
        static_cast<size_t>(std::min<uint64_t>(sizeof(buf), max_bytes - total));
    MEZ_ASSIGN_OR_RETURN(size_t n, lines->Read(buf, want));
    if (n == 0) break;
    total += n;
    pending.append(buf, n);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      b.AddLine(std::string_view(pending).substr(start, nl - start));
    }
    pending.erase(0, start);
    if (pending.size() > kMaxMarkerLineBytes) {
      return Status(Code::kDataLoss, "an event line is longer than " +
                                         std::to_string(kMaxMarkerLineBytes) +
                                         " bytes");
    }
  }
  if (!pending.empty()) b.AddLine(pending);
  return b.Finish();
}

}  // namespace mez::play
