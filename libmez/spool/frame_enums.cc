#include "libmez/spool/frame_enums.h"

namespace mez::spool {

mezite::v1::Direction DirectionToProto(Direction direction) {
  switch (direction) {
    case Direction::kIn:
      return mezite::v1::DIRECTION_IN;
    case Direction::kOut:
      return mezite::v1::DIRECTION_OUT;
    case Direction::kErr:
      return mezite::v1::DIRECTION_ERR;
  }
  return mezite::v1::DIRECTION_UNSPECIFIED;
}

Direction DirectionFromProto(mezite::v1::Direction direction) {
  switch (direction) {
    case mezite::v1::DIRECTION_IN:
      return Direction::kIn;
    case mezite::v1::DIRECTION_ERR:
      return Direction::kErr;
    default:
      return Direction::kOut;
  }
}

mezite::v1::SessionKind KindToProto(ChannelKind kind) {
  switch (kind) {
    case ChannelKind::kShell:
      return mezite::v1::SESSION_KIND_SHELL;
    case ChannelKind::kExec:
      return mezite::v1::SESSION_KIND_EXEC;
    case ChannelKind::kTcpip:
      return mezite::v1::SESSION_KIND_TCPIP;
  }
  return mezite::v1::SESSION_KIND_UNSPECIFIED;
}

std::optional<ChannelKind> KindFromProto(int kind) {
  switch (kind) {
    case mezite::v1::SESSION_KIND_SHELL:
      return ChannelKind::kShell;
    case mezite::v1::SESSION_KIND_EXEC:
      return ChannelKind::kExec;
    case mezite::v1::SESSION_KIND_TCPIP:
      return ChannelKind::kTcpip;
    default:
      return std::nullopt;
  }
}

}  // namespace mez::spool
