// Sessions and the audit log, as their readers may see them.
#include <nlohmann/json.hpp>

#include "libmez/cluster/cluster.h"

namespace mez::cluster {

using auth::Role;

namespace {

// Session ids are 32 lowercase hex digits; anything shorter made of those
// may be a prefix of one.
bool MayBeIdPrefix(const std::string& id) {
  return !id.empty() && id.size() < 32 &&
         id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

Result<catalog::Session> Cluster::ReadableSession(const auth::Claims& caller,
                                                  const std::string& id,
                                                  std::string_view method) {
  auto s = opt_.catalog->GetSession(id);
  if (!s.ok() && s.status().code() == Code::kNotFound && MayBeIdPrefix(id)) {
    // A unique prefix names the session, among those the caller may read
    // (so a prefix never tells a user about another user's sessions).
    catalog::SessionFilter f;
    f.id_prefix = id;
    if (caller.role != Role::kAdmin) f.user = caller.subject;
    f.limit = 3;
    MEZ_ASSIGN_OR_RETURN(std::vector<catalog::Session> found,
                         opt_.catalog->ListSessions(f));
    if (found.size() > 1) {
      std::string some;
      for (const catalog::Session& m : found) {
        some += (some.empty() ? "" : ", ") + m.id;
      }
      return InvalidArgument(
          "session id prefix '" + id + "' matches several sessions (" + some +
          (found.size() > 2 ? ", ..." : "") + "); give more of the id");
    }
    if (found.size() == 1) s = std::move(found[0]);
  }
  if (!s.ok()) return s.status();
  if (caller.role != Role::kAdmin && s->user != caller.subject) {
    // Not found, not "forbidden": other users' session ids stay private.
    AuditDenied(&caller, method,
                PermissionDenied("session " + id + " belongs to another user"));
    return NotFound("session " + id + " not found");
  }
  return s;
}

Result<std::vector<catalog::Session>> Cluster::ListSessions(
    const auth::Claims& caller, catalog::SessionFilter filter) {
  MEZ_RETURN_IF_ERROR(
      Require(caller, "ListSessions", {Role::kUser, Role::kAdmin}));
  if (caller.role != Role::kAdmin) {
    if (!filter.user.empty() && filter.user != caller.subject) {
      Status d = PermissionDenied("users can list only their own sessions");
      AuditDenied(&caller, "ListSessions", d);
      return d;
    }
    filter.user = caller.subject;
  }
  return opt_.catalog->ListSessions(filter);
}

Result<catalog::Session> Cluster::GetSession(const auth::Claims& caller,
                                             const std::string& id) {
  MEZ_RETURN_IF_ERROR(
      Require(caller, "GetSession", {Role::kUser, Role::kAdmin}));
  return ReadableSession(caller, id, "GetSession");
}

Result<catalog::Session> Cluster::RecordingToRead(const auth::Claims& caller,
                                                  const std::string& id) {
  if (caller.role != Role::kUser && caller.role != Role::kAdmin) {
    Status d = PermissionDenied(
        "ReadRecording needs a user or admin "
        "credential; nodes can record but not read");
    AuditDenied(&caller, "ReadRecording", d);
    return d;
  }
  MEZ_ASSIGN_OR_RETURN(catalog::Session s,
                       ReadableSession(caller, id, "ReadRecording"));
  if (s.format == "none" || s.storage_key.empty()) {
    return NotFound("session " + id + " has no recording (its format is '" +
                    s.format + "')");
  }
  return s;
}

void Cluster::AuditRecordingRead(const auth::Claims& caller,
                                 const catalog::Session& session,
                                 uint64_t offset) {
  // Every read is audited, from any offset: reading from offset 1 shows
  // all but one byte.
  nlohmann::json d = {{"storage_key", session.storage_key},
                      {"owner", session.user},
                      {"offset", offset}};
  Audit("session.recording.access", caller.subject, session.id, d.dump());
}

Result<std::vector<catalog::AuditEvent>> Cluster::ListAudit(
    const auth::Claims& caller, const catalog::AuditFilter& filter) {
  MEZ_RETURN_IF_ERROR(Require(caller, "ListAudit", {Role::kAdmin}));
  return opt_.catalog->ListAudit(filter);
}

}  // namespace mez::cluster
