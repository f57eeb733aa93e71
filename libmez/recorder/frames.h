// Record frames built from what the SSH server reports, shared by the
// node-sync stream and the node-mode spool (which hold the same frames).
#ifndef MEZ_RECORDER_FRAMES_H_
#define MEZ_RECORDER_FRAMES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "libmez/recorder/mode.h"  // RecordingMode, for this header's users
#include "libmez/ssh/channel_tap.h"
#include "libmez/util/status.h"
#include "mezite/v1/recording.pb.h"

namespace mez::recorder {

// A fresh random identifier (32 lowercase hex characters).
std::string NewRandomId();

// The header of a channel's recording. The user's JWT comes from the
// certificate (auth::kMeziteTokenExtension); an empty connection_id in
// `info` is replaced by a fresh one. `enhanced` (shell and exec channels
// only; ignored for tcpip): RecordHeader.enhanced, absent when not set.
mezite::v1::RecordFrame HeaderFrame(
    const ssh::ChannelInfo& info, const std::string& session_id,
    const std::string& node, int64_t wall_us,
    std::optional<bool> enhanced = std::nullopt);
mezite::v1::RecordFrame ChunkFrame(Direction direction, std::string_view bytes,
                                   int64_t offset_us);
mezite::v1::RecordFrame ResizeFrame(int width, int height, int64_t offset_us);
mezite::v1::RecordFrame ExitFrame(int exit_status, int64_t offset_us);

// The user JWT carried by the certificate, or "".
std::string UserToken(const ssh::ChannelInfo& info);

}  // namespace mez::recorder

#endif  // MEZ_RECORDER_FRAMES_H_
