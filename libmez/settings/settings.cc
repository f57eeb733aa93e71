#include "libmez/settings/settings.h"

#include <array>

namespace mez::settings {
namespace {

constexpr std::array<std::string_view, 3> kRecordingModes = {"node-sync",
                                                             "node", "off"};

constexpr std::array<Setting, 1> kSettings = {{
    {kSessionRecording, "node-sync", kRecordingModes,
     "how new sessions are recorded: node-sync streams them live to "
     "mezrecd, node spools them on the node and uploads them, off records "
     "nothing (start and end are still audited)"},
}};

}  // namespace

std::span<const Setting> All() { return kSettings; }

const Setting* Find(std::string_view key) {
  for (const Setting& s : kSettings) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

Status CheckKey(std::string_view key) {
  if (Find(key) != nullptr) return Status::Ok();
  std::string known;
  for (const Setting& s : kSettings) {
    if (!known.empty()) known += ", ";
    known += s.key;
  }
  return InvalidArgument("unknown setting '" + std::string(key) +
                         "' (known: " + known + ")");
}

Status Validate(std::string_view key, std::string_view value) {
  MEZ_RETURN_IF_ERROR(CheckKey(key));
  const Setting& s = *Find(key);
  for (std::string_view v : s.allowed) {
    if (v == value) return Status::Ok();
  }
  return InvalidArgument(std::string(key) + " must be one of " +
                         AllowedList(s) + " (got '" + std::string(value) +
                         "')");
}

Status CheckValueIfKnown(std::string_view key, std::string_view value) {
  if (Find(key) == nullptr) return Status::Ok();
  return Validate(key, value);
}

std::optional<std::string> DefaultValue(std::string_view key) {
  const Setting* s = Find(key);
  if (s == nullptr) return std::nullopt;
  return std::string(s->default_value);
}

std::string AllowedList(const Setting& setting) {
  std::string out;
  for (std::string_view v : setting.allowed) {
    if (!out.empty()) out += ", ";
    out += v;
  }
  return out;
}

}  // namespace mez::settings
