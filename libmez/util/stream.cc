#include "libmez/util/stream.h"

namespace mez {

std::string_view ChannelKindName(ChannelKind kind) {
  switch (kind) {
    case ChannelKind::kShell:
      return "shell";
    case ChannelKind::kExec:
      return "exec";
    case ChannelKind::kTcpip:
      return "tcpip";
  }
  return "?";
}

std::optional<ChannelKind> ParseChannelKind(std::string_view name) {
  for (ChannelKind k :
       {ChannelKind::kShell, ChannelKind::kExec, ChannelKind::kTcpip}) {
    if (name == ChannelKindName(k)) return k;
  }
  return std::nullopt;
}

std::string_view DirectionName(Direction direction) {
  switch (direction) {
    case Direction::kIn:
      return "in";
    case Direction::kOut:
      return "out";
    case Direction::kErr:
      return "err";
  }
  return "?";
}

}  // namespace mez
