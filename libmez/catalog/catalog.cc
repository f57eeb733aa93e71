#include "libmez/catalog/catalog.h"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace mez::catalog {

std::string_view SessionStatusName(SessionStatus s) {
  switch (s) {
    case SessionStatus::kRecording:
      return "recording";
    case SessionStatus::kComplete:
      return "complete";
    case SessionStatus::kIncomplete:
      return "incomplete";
  }
  return "unknown";
}

Result<SessionStatus> ParseSessionStatus(std::string_view name) {
  for (SessionStatus s : {SessionStatus::kRecording, SessionStatus::kComplete,
                          SessionStatus::kIncomplete}) {
    if (SessionStatusName(s) == name) return s;
  }
  return InvalidArgument("unknown session status \"" + std::string(name) +
                         "\" (want recording, complete or incomplete)");
}

std::optional<std::string> DefaultConfigValue(std::string_view key) {
  // Cluster defaults live in code, not in the database, so that changing a
  // default needs no migration and an unset key reads as the default.
  struct Default {
    std::string_view key;
    std::string_view value;
  };
  static constexpr Default kDefaults[] = {
      {"session_recording", "node-sync"},
  };
  for (const Default& d : kDefaults) {
    if (d.key == key) return std::string(d.value);
  }
  return std::nullopt;
}

Status ValidateSession(const Session& session) {
  if (session.id.empty()) return InvalidArgument("session id is empty");
  if (session.bytes >
      static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return InvalidArgument("session " + session.id + ": byte count " +
                           std::to_string(session.bytes) + " out of range");
  }
  return Status::Ok();
}

Result<std::string> NormalizeAuditDetails(const std::string& details) {
  if (details.empty()) return std::string("{}");
  // Parse only to validate: the text is stored as given.
  nlohmann::json parsed = nlohmann::json::parse(details, /*cb=*/nullptr,
                                                /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return InvalidArgument("audit details must be a JSON object, got: " +
                           details.substr(0, 80));
  }
  return details;
}

}  // namespace mez::catalog
