#include "libmez/rpc/proto_convert.h"

namespace mez::rpc {

StreamHeader HeaderFromProto(const mezite::v1::RecordHeader& p) {
  StreamHeader h;
  h.session_id = p.session_id();
  h.connection_id = p.connection_id();
  h.user_token = p.user_token();
  h.started_at_us = p.started_at_us();
  h.kind = p.kind();
  h.width = p.width();
  h.height = p.height();
  h.command = p.command();
  h.src_host = p.src_host();
  h.src_port = p.src_port();
  h.dst_host = p.dst_host();
  h.dst_port = p.dst_port();
  h.node = p.node();
  h.login = p.login();
  h.term = p.term();
  return h;
}

ChunkDirection DirectionFromProto(mezite::v1::Direction d) {
  switch (d) {
    case mezite::v1::DIRECTION_IN:
      return ChunkDirection::kIn;
    case mezite::v1::DIRECTION_ERR:
      return ChunkDirection::kErr;
    default:
      return ChunkDirection::kOut;
  }
}

}  // namespace mez::rpc
