// The vocabulary of a recorded channel, shared by every layer: the SSH
// server's tap, the recorder, mezrecd's ingest and the recording writers.
// Conversions to and from the protocol's enums live in one place,
// libmez/spool/frame_enums.h; the catalog and the JSON of audit events use
// the names below.
#ifndef MEZ_UTIL_STREAM_H_
#define MEZ_UTIL_STREAM_H_

#include <optional>
#include <string_view>

namespace mez {

// What a recorded channel is: an interactive shell, one command (exec), or
// a port forward (direct-tcpip).
enum class ChannelKind { kShell, kExec, kTcpip };

// Which way bytes flow through a channel.
enum class Direction {
  kIn,  // From the user: keystrokes, piped stdin; tcpip: client -> destination.
  kOut,  // To the user: the program's stdout (with a pty, everything the
         // terminal shows); tcpip: destination -> client.
  kErr,  // The program's stderr (exec without a pty only; never tcpip).
};

// "shell", "exec", "tcpip" (the catalog's session kinds).
std::string_view ChannelKindName(ChannelKind kind);
// The kind named by ChannelKindName; nullopt for anything else.
std::optional<ChannelKind> ParseChannelKind(std::string_view name);
// "in", "out", "err".
std::string_view DirectionName(Direction direction);

}  // namespace mez

#endif  // MEZ_UTIL_STREAM_H_
