// IngestManager's checks of a recording's header: who may record for which
// node, the recording grant, and the header's fields (ingest.h).
#include <string>

#include "libmez/ingest/ingest.h"
#include "libmez/util/path.h"

namespace mez::ingest {
namespace {

constexpr size_t kMaxFieldBytes = 256;

Status Invalid(const std::string& m) { return InvalidArgument(m); }

Status CheckText(const std::string& value, const char* field, size_t max) {
  if (value.size() > max) {
    return Invalid(std::string(field) + " is " + std::to_string(value.size()) +
                   " bytes; the limit is " + std::to_string(max));
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      return Invalid(std::string(field) + " contains a control character");
    }
  }
  return Status::Ok();
}

// A destination host that becomes part of a file name: a DNS name or an
// IPv4/IPv6 literal, nothing that could alias a path.
Status CheckHost(const std::string& host) {
  if (host.empty()) return Invalid("dst_host is required for tcpip streams");
  if (host.size() > 253) return Invalid("dst_host is longer than 253 bytes");
  if (host.front() == '.' || host.front() == '-') {
    return Invalid("dst_host '" + host.substr(0, 64) +
                   "' must not start with '.' or '-'");
  }
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
              c == '_';
    if (!ok) {
      return Invalid(
          "dst_host contains a character that is not allowed in "
          "a host name or address");
    }
  }
  return Status::Ok();
}

// Who opened a shared pcap: only that caller's channels join it, and only
// that caller may end it.

}  // namespace

Result<std::string> IngestManager::RecordingNode(const StreamHeader& h,
                                                 const Caller& caller) const {
  if (caller.role == auth::Role::kNode) return caller.name;
  if (caller.role != auth::Role::kProxy && caller.role != auth::Role::kAdmin) {
    return Status(Code::kPermissionDenied,
                  "a " + std::string(auth::RoleName(caller.role)) +
                      " credential cannot record sessions");
  }
  if (h.node.empty()) {
    return Invalid(
        "node is required when a proxy or admin records: name the node the "
        "session runs on");
  }
  if (!IsPlainIdentifier(h.node)) {
    return Invalid("node must be a registered node's name");
  }
  auto n = opt_.catalog->GetNode(h.node);
  if (!n.ok()) {
    if (n.status().code() != Code::kNotFound) return n.status();
    return Status(Code::kNotFound,
                  "node '" + h.node +
                      "' is not registered; add it with mezctl nodes add");
  }
  if (caller.role == auth::Role::kProxy && !n->openssh) {
    return Status(Code::kPermissionDenied,
                  "node '" + h.node +
                      "' runs the Mezite agent, which records its own "
                      "sessions; a proxy records only for agentless "
                      "(openssh) nodes");
  }
  return n->name;
}

Status IngestManager::CheckGrant(const auth::Claims& grant,
                                 const std::string& node, const StreamHeader& h,
                                 int64_t now_us, int64_t started_us) const {
  if (grant.role != auth::Role::kSession) {
    return Status(
        Code::kPermissionDenied,
        "user_token is a " + std::string(auth::RoleName(grant.role)) +
            " token; a recording needs the user's recording grant (a "
            "session token from the SSH certificate msh ssh obtained for this "
            "node), never an API token");
  }
  if (grant.audience != node) {
    return Status(Code::kPermissionDenied,
                  "user_token is a grant for node '" + grant.audience +
                      "', not for '" + node +
                      "' where this session is recorded; the user must "
                      "obtain a certificate for this node");
  }
  if (grant.uid.empty()) {
    return Status(Code::kUnauthenticated,
                  "user_token names no user id (uid); it was not issued by "
                  "SignUserCert");
  }
  auto u = opt_.catalog->GetUser(grant.subject);
  if (!u.ok() && u.status().code() != Code::kNotFound) return u.status();
  bool current = u.ok() && u->id == grant.uid;
  if (h.verify_token_at_us <= 0) {
    if (!current) {
      return Status(Code::kUnauthenticated,
                    "user '" + grant.subject +
                        "' was removed; their grants no longer record new "
                        "sessions");
    }
    return Status::Ok();
  }
  // An upload: a session that ran while the grant was good is kept, even
  // when the user was removed since; one that claims to predate the
  // certificate, or to start after the user's removal, is not.
  if (started_us > now_us + kMaxClockSkewUs) {
    return Invalid("the session starts in the future (check the node's clock)");
  }
  if (started_us < grant.issued_at * 1'000'000 - kGrantBackdateUs) {
    return Status(Code::kPermissionDenied,
                  "the session's start is before the user's certificate was "
                  "issued; a recording cannot be backdated past its grant");
  }
  if (started_us > grant.expires_at * 1'000'000) {
    return Status(Code::kUnauthenticated,
                  "the session's start is after the grant expired");
  }
  if (!current) {
    auto r = opt_.catalog->GetRevocation(grant.uid);
    if (!r.ok() && r.status().code() != Code::kNotFound) return r.status();
    if (!r.ok()) {
      return Status(Code::kUnauthenticated,
                    "user_token's uid is not a user this cluster knows");
    }
    if (r->revoked_us <= started_us) {
      return Status(Code::kUnauthenticated,
                    "user '" + grant.subject +
                        "' was removed before this session started");
    }
  }
  return Status::Ok();
}

Result<IngestManager::Checked> IngestManager::Check(
    const StreamHeader& h, const Caller& caller) const {
  int64_t now_us = opt_.clock->WallMicros();
  bool upload = h.verify_token_at_us > 0;
  int64_t started_us;
  if (upload) {
    started_us = h.started_at_us > 0 ? h.started_at_us : h.verify_token_at_us;
    if (started_us != h.verify_token_at_us) {
      return Invalid("an upload's grant is checked at the session's start");
    }
  } else if (h.started_at_us == 0) {
    started_us = now_us;
  } else {
    // A live session starts now: a node whose clock is far off is told so
    // rather than allowed to date the session as it likes.
    int64_t skew = h.started_at_us - now_us;
    if (skew > kMaxClockSkewUs || skew < -kMaxClockSkewUs) {
      return Invalid("started_at_us is " + std::to_string(skew / 1'000'000) +
                     " s from mezrecd's clock (the limit is " +
                     std::to_string(kMaxClockSkewUs / 1'000'000) +
                     " s); fix the node's clock (NTP)");
    }
    started_us = h.started_at_us;
  }
  if (started_us > now_us + kMaxClockSkewUs) {
    return Invalid("the session starts in the future (check the node's clock)");
  }
  MEZ_ASSIGN_OR_RETURN(std::string node, RecordingNode(h, caller));
  // Live: the grant must be good now; an upload's, when the session began.
  int64_t verify_at_us = upload ? started_us : now_us;
  auto claims = opt_.verifier->Verify(h.user_token, verify_at_us / 1'000'000);
  if (!claims.ok()) {
    return Status(Code::kUnauthenticated,
                  "user_token: " + claims.status().message());
  }
  const std::string& user = claims->subject;
  if (!IsPlainIdentifier(user)) {
    return Invalid(
        "username in user_token cannot be used as a storage "
        "prefix (allowed: letters, digits, '.', '_', '-')");
  }
  MEZ_RETURN_IF_ERROR(CheckGrant(*claims, node, h, now_us, started_us));
  if (!IsPlainIdentifier(h.session_id)) {
    return Invalid(
        "session_id must be 1-128 characters of letters, digits, "
        "'.', '_', '-' (not starting with '.' or '-')");
  }
  if (!h.connection_id.empty() && !IsPlainIdentifier(h.connection_id)) {
    return Invalid(
        "connection_id must be 1-128 characters of letters, "
        "digits, '.', '_', '-' (not starting with '.' or '-')");
  }
  if (!h.kind) return Invalid("unknown kind (expected shell, exec or tcpip)");
  if (h.enhanced.value_or(false) && caller.role != auth::Role::kNode) {
    return Invalid(
        "enhanced is set by a " + std::string(auth::RoleName(caller.role)) +
        " caller; only a node's agent records enhanced events (agentless "
        "nodes cannot)");
  }
  MEZ_RETURN_IF_ERROR(CheckText(h.node, "node", kMaxFieldBytes));
  MEZ_RETURN_IF_ERROR(CheckText(h.login, "login", kMaxFieldBytes));
  MEZ_RETURN_IF_ERROR(CheckText(h.term, "term", 64));
  const ChannelKind kind = *h.kind;
  if (kind == ChannelKind::kShell &&
      (h.width < 1 || h.width > 65535 || h.height < 1 || h.height > 65535)) {
    return Invalid("shell streams need width and height in 1..65535");
  }
  if (kind == ChannelKind::kExec && h.command.empty()) {
    return Invalid("exec streams need a command");
  }
  if (h.command.size() > 64 * 1024) return Invalid("command is over 64 KiB");
  if (kind == ChannelKind::kTcpip) {
    if (h.connection_id.empty()) {
      return Invalid("tcpip streams need a connection_id");
    }
    MEZ_RETURN_IF_ERROR(CheckHost(h.dst_host));
    if (h.dst_port < 1 || h.dst_port > 65535) {
      return Invalid("tcpip streams need dst_port in 1..65535");
    }
    if (h.src_port > 65535) return Invalid("src_port is over 65535");
    MEZ_RETURN_IF_ERROR(CheckText(h.src_host, "src_host", kMaxFieldBytes));
  }
  return Checked{user, node, std::string(ChannelKindName(kind)), started_us};
}

Status IngestManager::CheckHeader(const StreamHeader& header,
                                  const Caller& caller) const {
  return Check(header, caller).status();
}

}  // namespace mez::ingest
