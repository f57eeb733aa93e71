#include "libmez/rpc/cluster_convert.h"

#include "libmez/util/stream.h"

namespace mez::rpc {

namespace pb = mezite::v1;

void ToProto(const catalog::Session& s, pb::SessionInfo* p) {
  p->set_id(s.id);
  p->set_connection_id(s.connection_id);
  p->set_user(s.user);
  p->set_node(s.node);
  p->set_login(s.login);
  p->set_kind(s.kind);
  p->set_command(s.command);
  p->set_started_us(s.started_us);
  p->set_ended_us(s.ended_us);
  p->set_bytes(s.bytes);
  p->set_status(std::string(catalog::SessionStatusName(s.status)));
  p->set_storage_key(s.storage_key);
  p->set_format(s.format);
  p->set_encrypted(s.encrypted);
}

void ToProto(const catalog::User& u, pb::UserInfo* p) {
  p->set_id(u.id);
  p->set_name(u.name);
  for (const auto& l : u.logins) p->add_logins(l);
  p->set_role(u.role);
  p->set_created_us(u.created_us);
}

void ToProto(const catalog::Node& n, pb::NodeInfo* p) {
  p->set_id(n.id);
  p->set_name(n.name);
  p->set_addr(n.addr);
  p->set_openssh(n.openssh);
  p->set_login_hint(n.login_hint);
  p->set_last_seen_us(n.last_seen_us);
  p->set_recording_mode(n.recording_mode);
  p->set_host_key(n.host_key);
}

void ToProto(const catalog::AuditEvent& e, pb::AuditEventInfo* p) {
  p->set_id(e.id);
  p->set_time_us(e.time_us);
  p->set_type(e.type);
  p->set_user(e.user);
  p->set_session_id(e.session_id);
  p->set_node(e.node);
  p->set_details(e.details);
}

void ToProto(const cluster::JoinAnswer& a, pb::JoinNodeResponse* p) {
  p->set_name(a.name);
  p->set_user_ca_public(a.user_ca_public);
  p->set_host_ca_public(a.host_ca_public);
  p->set_session_recording(a.session_recording);
  if (!a.host_certificate_line.empty()) {
    p->set_host_certificate_line(a.host_certificate_line);
  }
  if (!a.node_token.empty()) {
    p->set_node_token(a.node_token);
    p->set_node_token_expires_at(a.node_token_expires_at);
  }
  for (const std::string& id : a.revoked_user_ids) p->add_revoked_user_ids(id);
}

Result<catalog::SessionFilter> FromProto(const pb::ListSessionsRequest& p) {
  catalog::SessionFilter f;
  f.user = p.user();
  f.node = p.node();
  if (!p.kind().empty()) {
    if (!ParseChannelKind(p.kind())) {
      return InvalidArgument("kind '" + p.kind() +
                             "' does not exist (shell, exec or tcpip)");
    }
    f.kind = p.kind();
  }
  if (!p.status().empty()) {
    auto st = catalog::ParseSessionStatus(p.status());
    if (!st.ok()) {
      return InvalidArgument("status '" + p.status() +
                             "' does not exist (recording, complete or "
                             "incomplete)");
    }
    f.status = *st;
  }
  f.id_prefix = p.id_prefix();
  f.since_us = p.since_us();
  f.until_us = p.until_us();
  f.limit = p.limit();
  return f;
}

catalog::AuditFilter FromProto(const pb::ListAuditRequest& p) {
  catalog::AuditFilter f;
  f.type = p.type();
  f.user = p.user();
  f.session_id = p.session_id();
  f.node = p.node();
  f.since_us = p.since_us();
  f.until_us = p.until_us();
  f.limit = p.limit();
  return f;
}

cluster::NewUser FromProto(const pb::AddUserRequest& p) {
  cluster::NewUser u;
  u.name = p.name();
  u.logins.assign(p.logins().begin(), p.logins().end());
  u.role = p.role();
  u.ttl_seconds = p.ttl_seconds();
  return u;
}

cluster::NewNode FromProto(const pb::AddNodeRequest& p) {
  cluster::NewNode n;
  n.name = p.name();
  n.addr = p.addr();
  n.openssh = p.openssh();
  n.login_hint = p.login_hint();
  n.host_key = p.host_key();
  return n;
}

cluster::NodeEvent FromProto(const pb::NodeAuditRequest& p) {
  cluster::NodeEvent e;
  e.type = p.type();
  e.session_id = p.session_id();
  e.user = p.user();
  e.node = p.node();
  e.details = p.details();
  e.user_token = p.user_token();
  return e;
}

}  // namespace mez::rpc
