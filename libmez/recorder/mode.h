// The recording mode of a session, as the recorder applies it: the
// cluster setting session_recording (libmez/settings) or the
// MEZITE_RECORDING_MODE override of one mezd or proxy.
#ifndef MEZ_RECORDER_MODE_H_
#define MEZ_RECORDER_MODE_H_

#include <optional>
#include <string_view>

#include "libmez/util/status.h"

namespace mez::recorder {

enum class RecordingMode { kNodeSync, kNode, kOff };

// The environment variable that pins one process's mode, ignoring the
// cluster setting.
inline constexpr char kRecordingModeEnv[] = "MEZITE_RECORDING_MODE";

// A value the settings registry allows for session_recording ("node-sync",
// "node", "off"); kInvalidArgument naming the choices otherwise.
Result<RecordingMode> ParseRecordingMode(std::string_view text);
std::string_view RecordingModeName(RecordingMode mode);

// MEZITE_RECORDING_MODE, given its value (getenv's result, may be null):
// nullopt when unset or empty, the mode, or kInvalidArgument
// "MEZITE_RECORDING_MODE: ..." naming the choices. The one parser mezd and
// the proxy share.
Result<std::optional<RecordingMode>> RecordingModeFromEnv(const char* value);

}  // namespace mez::recorder

#endif  // MEZ_RECORDER_MODE_H_
