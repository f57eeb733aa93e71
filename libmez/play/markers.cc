#include "libmez/play/markers.h"

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

std::string Join(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
    if (s.size() > kMarkerLabelBytes) break;
  }
  return s;
}

}  // namespace

std::vector<Marker> CommandMarkers(const std::vector<ExecEvent>& execs) {
  std::vector<Marker> out;
  if (execs.empty()) return out;
  int shell = execs.front().pid;
  int64_t last_start = INT64_MIN;
  for (size_t i = 1; i < execs.size(); ++i) {
    const ExecEvent& e = execs[i];
    if (e.ppid != shell || e.pid == shell) continue;
    std::string label = Join(e.argv);
    if (!out.empty() && e.offset_us - last_start <= kPipelineUs) {
      out.back().label += " | " + label;
    } else {
      out.push_back(Marker{e.offset_us, label});
    }
    last_start = e.offset_us;
  }
  for (Marker& m : out) m.label = CutAt(m.label, kMarkerLabelBytes);
  return out;
}

std::vector<ExecEvent> ExecEventsFromLines(
    const std::vector<std::string>& lines, const std::string& offset_key) {
  std::vector<ExecEvent> out;
  for (const std::string& line : lines) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || j.value("type", "") != "exec") continue;
    auto offset = j.find(offset_key);
    auto pid = j.find("pid");
    auto ppid = j.find("ppid");
    auto argv = j.find("argv");
    if (offset == j.end() || !offset->is_number_integer() || pid == j.end() ||
        !pid->is_number_integer() || ppid == j.end() ||
        !ppid->is_number_integer()) {
      continue;
    }
    ExecEvent e;
    e.offset_us = offset->get<int64_t>();
    e.pid = pid->get<int>();
    e.ppid = ppid->get<int>();
    if (argv != j.end() && argv->is_array()) {
      for (const auto& a : *argv) {
        if (a.is_string()) e.argv.push_back(a.get<std::string>());
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace mez::play
