#include "libmez/ingest/proto_convert.h"

#include "libmez/spool/frame_enums.h"

namespace mez::ingest {

StreamHeader HeaderFromProto(const mezite::v1::RecordHeader& p) {
  StreamHeader h;
  h.session_id = p.session_id();
  h.connection_id = p.connection_id();
  h.user_token = p.user_token();
  h.started_at_us = p.started_at_us();
  h.kind = spool::KindFromProto(p.kind());
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
  if (p.has_pty()) h.pty = p.pty();
  if (p.has_enhanced()) h.enhanced = p.enhanced();
  return h;
}

}  // namespace mez::ingest
