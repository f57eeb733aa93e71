#include "libmez/recorder/frames.h"

#include <openssl/rand.h>

#include <cstdlib>

#include "libmez/auth/ssh_cert.h"
#include "libmez/spool/frame_enums.h"
#include "libmez/util/encoding.h"
#include "libmez/util/log.h"

namespace mez::recorder {

std::string NewRandomId() {
  unsigned char buf[16];
  if (RAND_bytes(buf, sizeof(buf)) != 1) {
    MEZ_LOG(kError) << "agent: RAND_bytes failed";
    std::abort();
  }
  return HexEncode(std::string_view(reinterpret_cast<char*>(buf), sizeof(buf)));
}

std::string UserToken(const ssh::ChannelInfo& info) {
  auto it = info.cert_extensions.find(std::string(auth::kMeziteTokenExtension));
  return it != info.cert_extensions.end() ? it->second : std::string();
}

mezite::v1::RecordFrame HeaderFrame(const ssh::ChannelInfo& info,
                                    const std::string& session_id,
                                    const std::string& node, int64_t wall_us,
                                    std::optional<bool> enhanced) {
  mezite::v1::RecordFrame frame;
  auto* h = frame.mutable_header();
  h->set_session_id(session_id);
  h->set_connection_id(info.connection_id.empty() ? NewRandomId()
                                                  : info.connection_id);
  h->set_user_token(UserToken(info));
  h->set_started_at_us(wall_us);
  h->set_node(node);
  h->set_login(info.login);
  h->set_kind(spool::KindToProto(info.kind));
  if (enhanced && info.kind != ChannelKind::kTcpip) h->set_enhanced(*enhanced);
  switch (info.kind) {
    case ChannelKind::kShell:
      break;
    case ChannelKind::kExec:
      h->set_command(info.command);
      break;
    case ChannelKind::kTcpip:
      h->set_src_host(info.src_host);
      h->set_src_port(info.src_port);
      h->set_dst_host(info.dst_host);
      h->set_dst_port(info.dst_port);
      return frame;
  }
  h->set_pty(info.pty);
  if (info.kind == ChannelKind::kShell || info.pty) {
    // A pty requested without a size (ssh -tt from a pipe) is 0x0; mezrecd
    // wants a real size for shells, so use the VT100 default.
    h->set_width(
        static_cast<uint32_t>(info.pty && info.width > 0 ? info.width : 80));
    h->set_height(
        static_cast<uint32_t>(info.pty && info.height > 0 ? info.height : 24));
    h->set_term(info.term);
  }
  return frame;
}

mezite::v1::RecordFrame ChunkFrame(Direction direction, std::string_view bytes,
                                   int64_t offset_us) {
  mezite::v1::RecordFrame frame;
  auto* c = frame.mutable_chunk();
  c->set_offset_us(offset_us);
  c->set_direction(spool::DirectionToProto(direction));
  c->set_data(std::string(bytes));
  return frame;
}

mezite::v1::RecordFrame ResizeFrame(int width, int height, int64_t offset_us) {
  mezite::v1::RecordFrame frame;
  auto* r = frame.mutable_resize();
  r->set_offset_us(offset_us);
  r->set_width(static_cast<uint32_t>(width));
  r->set_height(static_cast<uint32_t>(height));
  return frame;
}

mezite::v1::RecordFrame ExitFrame(int exit_status, int64_t offset_us) {
  mezite::v1::RecordFrame frame;
  auto* e = frame.mutable_exit();
  e->set_offset_us(offset_us);
  e->set_exit_status(exit_status);
  return frame;
}

}  // namespace mez::recorder
