// A playback source that streams a session's recording from mezrecd
// (Cluster.ReadRecording), reopening at an offset for seeks and, while the
// session is still being recorded (SessionInfo status "recording", which
// every stream's answer updates), to read on from where it stopped.
#ifndef MEZ_CLI_REMOTE_SOURCE_H_
#define MEZ_CLI_REMOTE_SOURCE_H_

#include <memory>
#include <string>

#include "libmez/play/source.h"

namespace mez::cli {

// Resolves the identity (`identity_flag`, $MEZ_IDENTITY, msh login) and
// opens session `id`; errors (not found, denied, unreachable) come back
// here, before any output.
Result<std::unique_ptr<play::RecordingSource>> OpenRemoteRecording(
    const std::string& identity_flag, const std::string& id);

}  // namespace mez::cli

#endif  // MEZ_CLI_REMOTE_SOURCE_H_
