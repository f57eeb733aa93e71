#include "libmez/recorder/mode.h"

#include <string>

#include "libmez/settings/settings.h"

namespace mez::recorder {

Result<RecordingMode> ParseRecordingMode(std::string_view text) {
  if (!settings::Validate(settings::kSessionRecording, text).ok()) {
    return InvalidArgument(
        "recording mode must be one of " +
        settings::AllowedList(*settings::Find(settings::kSessionRecording)) +
        " (got '" + std::string(text) + "')");
  }
  if (text == "node-sync") return RecordingMode::kNodeSync;
  if (text == "node") return RecordingMode::kNode;
  if (text == "off") return RecordingMode::kOff;
  // The registry allows a value this enum does not know: a programming
  // error caught by recorder_test (every allowed value parses).
  return Internal("recording mode '" + std::string(text) +
                  "' is allowed by the settings registry but unknown to the "
                  "recorder");
}

std::string_view RecordingModeName(RecordingMode mode) {
  switch (mode) {
    case RecordingMode::kNodeSync:
      return "node-sync";
    case RecordingMode::kNode:
      return "node";
    case RecordingMode::kOff:
      return "off";
  }
  return "node";
}

Result<std::optional<RecordingMode>> RecordingModeFromEnv(const char* value) {
  if (value == nullptr || *value == '\0') {
    return std::optional<RecordingMode>();
  }
  auto mode = ParseRecordingMode(value);
  if (!mode.ok()) {
    return InvalidArgument(std::string(kRecordingModeEnv) + ": " +
                           mode.status().message());
  }
  return std::optional<RecordingMode>(*mode);
}

}  // namespace mez::recorder
