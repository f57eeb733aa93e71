#include "libmez/rpc/cluster_service.h"

#include <openssl/sha.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "libmez/auth/ssh_cert.h"
#include "libmez/record/plain_cast.h"
#include "libmez/util/encoding.h"
#include "libmez/util/log.h"
#include "libmez/util/path.h"

namespace mez::rpc {
namespace {

using auth::Role;
namespace pb = mezite::v1;

constexpr int64_t kDefaultUserTtl = 12 * 3600;
constexpr size_t kReadChunk = 256 * 1024;
constexpr int64_t kUserCertTtl = 10 * 60;
constexpr int64_t kUserCertBackdate = 60;
// Longest life of a recording grant (a user's default login lasts 12 h).
constexpr int64_t kMaxGrantTtl = 12 * 3600;
// session_recording until an admin sets it (DESIGN.md "modes").
constexpr char kDefaultRecordingMode[] = "node-sync";
// Host certificates are renewed at every mezd start and heartbeat.
constexpr int64_t kHostCertTtl = 7 * 24 * 3600;
// How far back JoinNode tells nodes of removed users: a certificate signed
// just before the removal stays valid for kUserCertTtl, and clocks may
// differ by kUserCertBackdate; the rest is margin for a late heartbeat.
constexpr int64_t kRevokedUserWindow = 15 * 60;
static_assert(kRevokedUserWindow > kUserCertTtl + kUserCertBackdate);

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
  p->set_id(u.id);
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

// Fills resp->revoked_user_ids with the ids of users and admins removed
// at or after now_us - kRevokedUserWindow: their certificates may still be
// valid, and mezd refuses them. The catalog's error when it cannot list
// them (the node then keeps the list it had: a partial one would forget
// revocations). At most kMaxRevocationList rows are read (newest first).
Status FillRevokedUserIds(catalog::Catalog* catalog, int64_t now_us,
                          pb::JoinNodeResponse* resp) {
  MEZ_ASSIGN_OR_RETURN(
      std::vector<catalog::Revocation> revs,
      catalog->ListRevocations(now_us - kRevokedUserWindow * 1'000'000));
  for (const catalog::Revocation& r : revs) {
    if (r.kind == "user" || r.kind == "admin") resp->add_revoked_user_ids(r.id);
  }
  return Status::Ok();
}

bool HasRole(const auth::Claims& c, std::initializer_list<Role> roles) {
  for (Role r : roles) {
    if (c.role == r) return true;
  }
  return false;
}

// Streams a recording's plain cast bytes from an offset.
class ReadReactor : public grpc::ServerWriteReactor<pb::RecordingBytes> {
 public:
  ReadReactor(ThreadPool* pool) : pool_(pool) {}

  // Called once the caller is authorized and the source is open.
  void Begin(std::unique_ptr<record::ByteSource> src, uint64_t offset,
             pb::SessionInfo info) {
    src_ = std::move(src);
    offset_ = offset;
    *msg_.mutable_session() = std::move(info);
    pool_->Submit([this] { Skip(); });
  }
  void Fail(const grpc::Status& s) { Finish(s); }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    msg_.clear_session();
    pool_->Submit([this] { Next(); });
  }
  void OnDone() override { delete this; }

 private:
  void Skip() {
    std::string scratch(kReadChunk, '\0');
    uint64_t skipped = 0;
    while (skipped < offset_) {
      auto n =
          src_->Read(scratch.data(),
                     std::min<uint64_t>(scratch.size(), offset_ - skipped));
      if (!n.ok()) return Finish(ToGrpc(n.status()));
      if (*n == 0) break;
      skipped += *n;
    }
    pos_ = skipped;
    Next();
  }
  void Next() {
    std::string* data = msg_.mutable_data();
    data->resize(kReadChunk);
    size_t got = 0;
    while (got < kReadChunk) {
      auto n = src_->Read(data->data() + got, kReadChunk - got);
      if (!n.ok()) {
        data->resize(got);
        if (got == 0) return Finish(ToGrpc(n.status()));
        error_ = ToGrpc(n.status());
        break;
      }
      if (*n == 0) break;
      got += *n;
    }
    data->resize(got);
    if (got == 0 && !msg_.has_session()) return Finish(error_);
    msg_.set_offset(pos_);
    pos_ += got;
    StartWrite(&msg_);
  }

  ThreadPool* pool_;
  std::unique_ptr<record::ByteSource> src_;
  uint64_t offset_ = 0;
  uint64_t pos_ = 0;
  pb::RecordingBytes msg_;
  grpc::Status error_ = grpc::Status::OK;
};

}  // namespace

Status ValidateSetting(const std::string& key, const std::string& value) {
  if (key != "session_recording") {
    return InvalidArgument("unknown setting '" + key +
                           "' (known: session_recording)");
  }
  if (value != "node-sync" && value != "node" && value != "off") {
    return InvalidArgument(
        "session_recording must be one of node-sync, "
        "node, off (got '" +
        value + "')");
  }
  return Status::Ok();
}

std::string JoinTokenHash(const std::string& token) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         md);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), sizeof(md)));
}

Result<auth::Role> CheckIdentity(catalog::Catalog* catalog, auth::Role role,
                                 const std::string& subject,
                                 const std::string& uid,
                                 const std::string& legacy_join_hash) {
  auto refuse = [](const std::string& why) {
    return Status(Code::kUnauthenticated, why);
  };
  if (role == Role::kJoin) {
    return refuse(
        "a join token is good only for mezd's first JoinNode, which "
        "exchanges it for the node's credential; start mezd with it");
  }
  if (role == Role::kSession) {
    return refuse(
        "a session token is not a bearer credential; call with the "
        "identity's own token");
  }
  const std::string what =
      (role == Role::kNode ? "node '"
                           : std::string(auth::RoleName(role)) + " '") +
      subject + "'";
  if (uid.empty()) {
    return refuse("the token of " + what +
                  " carries no identity id (issued before ids existed); an "
                  "admin issues a new one (mezctl " +
                  (role == Role::kNode ? "nodes rm and nodes add"
                                       : "users rm and users add") +
                  ")");
  }
  std::string row_id;
  Role current = role;
  if (role == Role::kNode) {
    auto n = catalog->GetNode(subject);
    if (!n.ok()) {
      if (n.status().code() != Code::kNotFound) return n.status();
      return refuse("node '" + subject + "' is not registered");
    }
    row_id = n->id;
    if (!legacy_join_hash.empty() && n->id == uid &&
        n->join_token_hash != legacy_join_hash) {
      return refuse(
          "this node token of an older release was exchanged for a node "
          "credential, which mezd keeps in its data dir (node_credential); "
          "the old token no longer works");
    }
  } else {
    auto u = catalog->GetUser(subject);
    if (!u.ok()) {
      if (u.status().code() != Code::kNotFound) return u.status();
      return refuse(what + " no longer exists");
    }
    row_id = u->id;
    bool is_proxy_row = u->role == "proxy";
    if (is_proxy_row != (role == Role::kProxy)) {
      return refuse("the token of " + what + " does not match the " + u->role +
                    " of that name; use the token issued for it");
    }
    // The role in the catalog wins over the one in an older token.
    auto parsed = auth::ParseRole(u->role);
    if (!parsed.ok()) return parsed.status();
    current = *parsed;
  }
  if (row_id != uid) {
    return refuse("the token of " + what +
                  " was revoked: that name was removed and added again; use "
                  "the token issued when it was last added");
  }
  return current;
}

Result<auth::Claims> Authorizer::Caller(
    const grpc::ServerContextBase* ctx) const {
  MEZ_ASSIGN_OR_RETURN(auth::Claims c, authn_->Authenticate(ctx));
  MEZ_ASSIGN_OR_RETURN(
      c.role, CheckIdentity(catalog_, c.role, c.subject, c.uid,
                            CallAuthenticator::LegacyJoinHash(ctx, c)));
  return c;
}

Result<auth::Claims> Authorizer::JoinCaller(const grpc::ServerContextBase* ctx,
                                            bool exchange_legacy,
                                            std::string* join_hash) const {
  join_hash->clear();
  MEZ_ASSIGN_OR_RETURN(auth::Claims c, authn_->Authenticate(ctx));
  bool legacy = auth::IsLegacyJoinToken(c);
  if (c.role != Role::kJoin && !(legacy && exchange_legacy)) {
    MEZ_ASSIGN_OR_RETURN(
        c.role, CheckIdentity(catalog_, c.role, c.subject, c.uid,
                              CallAuthenticator::LegacyJoinHash(ctx, c)));
    return c;
  }
  // The node the token was issued for, still under the same id.
  MEZ_RETURN_IF_ERROR(
      CheckIdentity(catalog_, Role::kNode, c.subject, c.uid).status());
  MEZ_ASSIGN_OR_RETURN(std::string_view token,
                       CallAuthenticator::BearerToken(ctx));
  std::string hash = JoinTokenHash(std::string(token));
  // Refused early when already used; JoinNode uses it up atomically.
  MEZ_ASSIGN_OR_RETURN(catalog::Node node, catalog_->GetNode(c.subject));
  if (node.join_token_hash != hash) {
    return Status(Code::kUnauthenticated,
                  "the join token of node '" + c.subject +
                      "' was already used (a join token is good once); "
                      "start mezd with the data dir that holds its "
                      "credential, or have an admin run: mezctl nodes rm " +
                      c.subject + " && mezctl nodes add " + c.subject);
  }
  *join_hash = std::move(hash);
  c.role = Role::kNode;
  return c;
}

Result<catalog::Node> AuthorizeProxyHop(catalog::Catalog* catalog, Clock* clock,
                                        const std::string& proxy,
                                        const std::string& user,
                                        const std::string& name,
                                        const std::string& remote,
                                        const std::string& login) {
  // Names come from the client: what reaches the audit log is short
  // printable ASCII (node names are plain identifiers anyway).
  std::string shown = name.substr(0, 255);
  for (char& ch : shown) {
    if (ch < 0x21 || ch > 0x7e) ch = '?';
  }
  auto refuse = [&](Code code, const std::string& why) {
    catalog::AuditEvent e;
    e.time_us = clock->WallMicros();
    e.type = "proxy.refused";
    e.user = user.substr(0, 255);
    e.node = shown;
    e.details =
        nlohmann::json({{"remote", remote},
                        {"login", login},
                        {"dst_host", shown},
                        {"proxy", proxy},
                        {"reason", why}})
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto r = catalog->AppendAudit(e);
    if (!r.ok()) {
      MEZ_LOG(kError) << "audit proxy.refused: " << r.status().ToString();
    }
    return Status(code, why);
  };
  auto u = catalog->GetUser(user);
  if (!u.ok()) {
    if (u.status().code() != Code::kNotFound) return u.status();
    return refuse(Code::kPermissionDenied,
                  "user '" + user + "' does not exist");
  }
  if (u->logins.empty()) {
    return refuse(Code::kPermissionDenied,
                  "user '" + u->name + "' has no login on any node");
  }
  auto node = catalog->GetNode(name);
  if (!node.ok()) {
    if (node.status().code() != Code::kNotFound) return node.status();
    return refuse(Code::kNotFound, "node '" + shown + "' is not registered");
  }
  return node;
}

ClusterService::ClusterService(ClusterServiceOptions options)
    : opt_(std::move(options)) {
  if (opt_.clock == nullptr) opt_.clock = RealClock();
  CatalogRetrierOptions r;
  r.catalog = opt_.catalog;
  r.clock = opt_.clock;
  r.name = "cluster";
  retrier_ = std::make_unique<CatalogRetrier>(std::move(r));
}

void ClusterService::Audit(const std::string& type, const std::string& user,
                           const std::string& session_id,
                           const std::string& details) {
  catalog::AuditEvent e;
  e.time_us = opt_.clock->WallMicros();
  e.type = type;
  e.user = user;
  e.session_id = session_id;
  e.details = details;
  // Logged and queued for a retry when it fails.
  (void)retrier_->AppendAudit(e);
}

void ClusterService::Deny(const auth::Claims* who, const std::string& method,
                          const Status& why) {
  nlohmann::json d = {{"method", method},
                      {"code", std::string(CodeName(why.code()))},
                      {"reason", why.message()}};
  if (who) d["role"] = std::string(auth::RoleName(who->role));
  Audit("access.denied", who ? who->subject : "", "", d.dump());
}

grpc::ServerUnaryReactor* ClusterService::Unary(
    grpc::CallbackServerContext* ctx, const char* method,
    std::initializer_list<Role> roles,
    std::function<Status(const auth::Claims&)> fn) {
  return Unary(
      ctx, method, roles,
      [this](grpc::CallbackServerContext* c) {
        return opt_.authorizer->Caller(c);
      },
      std::move(fn));
}

grpc::ServerUnaryReactor* ClusterService::Unary(
    grpc::CallbackServerContext* ctx, const char* method,
    std::initializer_list<Role> roles, CallerFn caller,
    std::function<Status(const auth::Claims&)> fn) {
  auto* reactor = ctx->DefaultReactor();
  std::vector<Role> allowed(roles);
  opt_.pool->Submit([this, ctx, reactor, method, allowed, caller, fn] {
    auto who = caller(ctx);
    if (!who.ok()) {
      Deny(nullptr, method, who.status());
      reactor->Finish(ToGrpc(who.status()));
      return;
    }
    bool ok = false;
    for (Role r : allowed) ok |= who->role == r;
    if (!ok) {
      std::string names;
      for (Role r : allowed) {
        if (!names.empty()) names += " or ";
        names += auth::RoleName(r);
      }
      Status denied = PermissionDenied(
          std::string(method) + " needs a " + names + " credential; you are " +
          who->subject + " (" + std::string(auth::RoleName(who->role)) + ")");
      Deny(&*who, method, denied);
      reactor->Finish(ToGrpc(denied));
      return;
    }
    reactor->Finish(ToGrpc(fn(*who)));
  });
  return reactor;
}

Result<catalog::Session> ClusterService::ReadableSession(
    const auth::Claims& who, const std::string& id, const char* method) {
  auto s = opt_.catalog->GetSession(id);
  if (!s.ok()) return s.status();
  if (who.role != Role::kAdmin && s->user != who.subject) {
    // Not found, not "forbidden": other users' session ids stay private.
    Status denied = NotFound("session " + id + " not found");
    Deny(&who, method,
         PermissionDenied("session " + id + " belongs to another user"));
    return denied;
  }
  return s;
}

grpc::ServerUnaryReactor* ClusterService::WhoAmI(
    grpc::CallbackServerContext* ctx, const pb::WhoAmIRequest*,
    pb::WhoAmIResponse* resp) {
  return Unary(ctx, "WhoAmI",
               {Role::kUser, Role::kAdmin, Role::kNode, Role::kProxy},
               [resp](const auth::Claims& c) {
                 resp->set_name(c.subject);
                 resp->set_role(std::string(auth::RoleName(c.role)));
                 for (const auto& l : c.logins) resp->add_logins(l);
                 resp->set_expires_at(c.expires_at);
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::ListSessions(
    grpc::CallbackServerContext* ctx, const pb::ListSessionsRequest* req,
    pb::ListSessionsResponse* resp) {
  return Unary(ctx, "ListSessions", {Role::kUser, Role::kAdmin},
               [this, req, resp](const auth::Claims& c) -> Status {
                 catalog::SessionFilter f;
                 f.user = req->user();
                 f.node = req->node();
                 f.since_us = req->since_us();
                 f.until_us = req->until_us();
                 f.limit = req->limit();
                 if (c.role != Role::kAdmin) {
                   if (!f.user.empty() && f.user != c.subject) {
                     Status d = PermissionDenied(
                         "users can list only their own sessions");
                     Deny(&c, "ListSessions", d);
                     return d;
                   }
                   f.user = c.subject;
                 }
                 MEZ_ASSIGN_OR_RETURN(auto rows, opt_.catalog->ListSessions(f));
                 for (const auto& s : rows) ToProto(s, resp->add_sessions());
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::GetSession(
    grpc::CallbackServerContext* ctx, const pb::GetSessionRequest* req,
    pb::SessionInfo* resp) {
  return Unary(ctx, "GetSession", {Role::kUser, Role::kAdmin},
               [this, req, resp](const auth::Claims& c) -> Status {
                 MEZ_ASSIGN_OR_RETURN(
                     auto s, ReadableSession(c, req->id(), "GetSession"));
                 ToProto(s, resp);
                 return Status::Ok();
               });
}

grpc::ServerWriteReactor<pb::RecordingBytes>* ClusterService::ReadRecording(
    grpc::CallbackServerContext* ctx, const pb::ReadRecordingRequest* req) {
  auto* reactor = new ReadReactor(opt_.pool);
  std::string id = req->id();
  uint64_t offset = req->offset();
  opt_.pool->Submit([this, ctx, reactor, id, offset] {
    auto who = opt_.authorizer->Caller(ctx);
    if (!who.ok()) {
      Deny(nullptr, "ReadRecording", who.status());
      return reactor->Fail(ToGrpc(who.status()));
    }
    if (!HasRole(*who, {Role::kUser, Role::kAdmin})) {
      Status d = PermissionDenied(
          "ReadRecording needs a user or admin "
          "credential; nodes can record but not read");
      Deny(&*who, "ReadRecording", d);
      return reactor->Fail(ToGrpc(d));
    }
    auto s = ReadableSession(*who, id, "ReadRecording");
    if (!s.ok()) return reactor->Fail(ToGrpc(s.status()));
    if (s->format == "none" || s->storage_key.empty()) {
      return reactor->Fail(ToGrpc(
          NotFound("session " + id + " has no recording (its format is '" +
                   s->format + "')")));
    }
    auto src = opt_.store->Open(s->storage_key);
    if (!src.ok()) {
      return reactor->Fail(ToGrpc(
          Status(Code::kNotFound,
                 "the recording of session " + id +
                     " is missing from storage: " + src.status().message())));
    }
    std::unique_ptr<record::ByteSource> plain = std::move(src).value();
    if (s->format == "asciicast-v2") {
      auto p = record::OpenPlainCast(std::move(plain), opt_.encryption_key);
      if (!p.ok()) return reactor->Fail(ToGrpc(p.status()));
      plain = std::move(p).value();
    }
    // Every read is audited, from any offset: reading from offset 1 shows
    // all but one byte.
    nlohmann::json d = {{"storage_key", s->storage_key},
                        {"owner", s->user},
                        {"offset", offset}};
    Audit("session.recording.access", who->subject, id, d.dump());
    pb::SessionInfo info;
    ToProto(*s, &info);
    reactor->Begin(std::move(plain), offset, std::move(info));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::ListAudit(
    grpc::CallbackServerContext* ctx, const pb::ListAuditRequest* req,
    pb::ListAuditResponse* resp) {
  return Unary(ctx, "ListAudit", {Role::kAdmin},
               [this, req, resp](const auth::Claims&) -> Status {
                 catalog::AuditFilter f;
                 f.type = req->type();
                 f.user = req->user();
                 f.session_id = req->session_id();
                 f.since_us = req->since_us();
                 f.until_us = req->until_us();
                 f.limit = req->limit();
                 MEZ_ASSIGN_OR_RETURN(auto rows, opt_.catalog->ListAudit(f));
                 for (const auto& e : rows) {
                   auto* p = resp->add_events();
                   p->set_id(e.id);
                   p->set_time_us(e.time_us);
                   p->set_type(e.type);
                   p->set_user(e.user);
                   p->set_session_id(e.session_id);
                   p->set_node(e.node);
                   p->set_details(e.details);
                 }
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::GetConfig(
    grpc::CallbackServerContext* ctx, const pb::GetConfigRequest* req,
    pb::ConfigValue* resp) {
  // Nodes read session_recording at start and for every new session.
  return Unary(
      ctx, "GetConfig", {Role::kUser, Role::kAdmin, Role::kNode, Role::kProxy},
      [this, req, resp](const auth::Claims&) -> Status {
        if (req->key() != "session_recording") {
          return InvalidArgument("unknown setting '" + req->key() +
                                 "' (known: session_recording)");
        }
        MEZ_ASSIGN_OR_RETURN(auto v, opt_.catalog->GetConfig(req->key()));
        resp->set_key(req->key());
        resp->set_value(v.value_or(kDefaultRecordingMode));
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::SetConfig(
    grpc::CallbackServerContext* ctx, const pb::SetConfigRequest* req,
    pb::ConfigValue* resp) {
  return Unary(
      ctx, "SetConfig", {Role::kAdmin},
      [this, req, resp](const auth::Claims& c) -> Status {
        MEZ_RETURN_IF_ERROR(ValidateSetting(req->key(), req->value()));
        auto old = opt_.catalog->GetConfig(req->key());
        MEZ_RETURN_IF_ERROR(opt_.catalog->SetConfig(req->key(), req->value()));
        nlohmann::json d = {{"key", req->key()}, {"value", req->value()}};
        if (old.ok() && old->has_value()) d["previous"] = **old;
        Audit("config.set", c.subject, "", d.dump());
        resp->set_key(req->key());
        resp->set_value(req->value());
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::AddUser(
    grpc::CallbackServerContext* ctx, const pb::AddUserRequest* req,
    pb::AddUserResponse* resp) {
  return Unary(
      ctx, "AddUser", {Role::kAdmin},
      [this, req, resp](const auth::Claims& c) -> Status {
        catalog::User u;
        u.id = catalog::NewIdentityId();
        u.name = req->name();
        u.logins.assign(req->logins().begin(), req->logins().end());
        u.role = req->role().empty() ? "user" : req->role();
        u.created_us = opt_.clock->WallMicros();
        int64_t ttl =
            req->ttl_seconds() > 0 ? req->ttl_seconds() : kDefaultUserTtl;
        if (u.role != "user" && u.role != "admin" && u.role != "proxy") {
          return InvalidArgument("role must be user, admin or proxy (got '" +
                                 u.role + "')");
        }
        if (u.role == "proxy" && !u.logins.empty()) {
          return InvalidArgument("a proxy has no logins; drop --logins");
        }
        if (std::string_view(u.name).starts_with(kReservedNamePrefix)) {
          return InvalidArgument(
              "user names starting with '" + std::string(kReservedNamePrefix) +
              "' are reserved for mezrecd's own identities; pick another "
              "name");
        }
        // A proxy is a principal like a user: listed by ListUsers, removed
        // by RemoveUser, which revokes its token.
        MEZ_RETURN_IF_ERROR(opt_.catalog->CreateUser(u));
        MEZ_ASSIGN_OR_RETURN(auth::Role role, auth::ParseRole(u.role));
        auth::Claims claims;
        claims.subject = u.name;
        claims.role = role;
        claims.logins = u.logins;
        claims.uid = u.id;
        MEZ_ASSIGN_OR_RETURN(
            std::string token,
            auth::IssueToken(*opt_.signer, opt_.keys->cluster_name,
                             std::move(claims), ttl, opt_.clock));
        ToProto(u, resp->mutable_user());
        resp->set_token(token);
        if (u.role == "proxy") {
          nlohmann::json d = {
              {"name", u.name}, {"id", u.id}, {"ttl_seconds", ttl}};
          Audit("proxy.create", c.subject, "", d.dump());
          return Status::Ok();
        }
        nlohmann::json d = {{"name", u.name},
                            {"id", u.id},
                            {"role", u.role},
                            {"logins", u.logins}};
        Audit("user.create", c.subject, "", d.dump());
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::ListUsers(
    grpc::CallbackServerContext* ctx, const pb::ListUsersRequest*,
    pb::ListUsersResponse* resp) {
  return Unary(ctx, "ListUsers", {Role::kAdmin},
               [this, resp](const auth::Claims&) -> Status {
                 MEZ_ASSIGN_OR_RETURN(auto users, opt_.catalog->ListUsers());
                 for (const auto& u : users) ToProto(u, resp->add_users());
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::RemoveUser(
    grpc::CallbackServerContext* ctx, const pb::RemoveUserRequest* req,
    pb::RemoveUserResponse*) {
  return Unary(ctx, "RemoveUser", {Role::kAdmin},
               [this, req](const auth::Claims& c) -> Status {
                 if (req->name() == c.subject) {
                   return FailedPrecondition("you cannot remove yourself");
                 }
                 // Read first only to name what was removed in the audit
                 // event; the catalog records the revocation itself.
                 auto gone = opt_.catalog->GetUser(req->name());
                 MEZ_RETURN_IF_ERROR(opt_.catalog->DeleteUser(req->name()));
                 nlohmann::json d = {{"name", req->name()}};
                 if (gone.ok()) {
                   d["id"] = gone->id;
                   d["role"] = gone->role;
                 }
                 Audit("user.delete", c.subject, "", d.dump());
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::AddNode(
    grpc::CallbackServerContext* ctx, const pb::AddNodeRequest* req,
    pb::AddNodeResponse* resp) {
  return Unary(
      ctx, "AddNode", {Role::kAdmin},
      [this, req, resp](const auth::Claims& c) -> Status {
        catalog::Node n;
        n.name = req->name();
        n.addr = req->addr();
        n.openssh = req->openssh();
        n.login_hint = req->login_hint();
        n.host_key = req->host_key();
        n.created_us = opt_.clock->WallMicros();
        n.id = catalog::NewIdentityId();
        std::string token;
        if (!n.openssh) {
          // Single use, short-lived, and pinning the TLS CA mezd is to
          // trust: JoinNode exchanges it for the node's credential.
          auth::Claims claims;
          claims.subject = n.name;
          claims.role = Role::kJoin;
          claims.uid = n.id;
          claims.ca_hash = opt_.tls_ca_sha256;
          MEZ_ASSIGN_OR_RETURN(
              token, auth::IssueToken(*opt_.signer, opt_.keys->cluster_name,
                                      std::move(claims), auth::kJoinTokenTtl,
                                      opt_.clock));
          n.join_token_hash = JoinTokenHash(token);
        }
        MEZ_RETURN_IF_ERROR(opt_.catalog->CreateNode(n));
        ToProto(n, resp->mutable_node());
        if (!token.empty()) {
          resp->set_join_token(token);
          resp->set_join_token_expires_at(opt_.clock->WallMicros() / 1'000'000 +
                                          auth::kJoinTokenTtl);
        }
        nlohmann::json d = {{"name", n.name},
                            {"id", n.id},
                            {"addr", n.addr},
                            {"openssh", n.openssh}};
        Audit("node.create", c.subject, "", d.dump());
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::ListNodes(
    grpc::CallbackServerContext* ctx, const pb::ListNodesRequest*,
    pb::ListNodesResponse* resp) {
  return Unary(ctx, "ListNodes", {Role::kAdmin},
               [this, resp](const auth::Claims&) -> Status {
                 MEZ_ASSIGN_OR_RETURN(auto nodes, opt_.catalog->ListNodes());
                 for (const auto& n : nodes) ToProto(n, resp->add_nodes());
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::RemoveNode(
    grpc::CallbackServerContext* ctx, const pb::RemoveNodeRequest* req,
    pb::RemoveNodeResponse*) {
  return Unary(ctx, "RemoveNode", {Role::kAdmin},
               [this, req](const auth::Claims& c) -> Status {
                 auto gone = opt_.catalog->GetNode(req->name());
                 MEZ_RETURN_IF_ERROR(opt_.catalog->DeleteNode(req->name()));
                 nlohmann::json d = {{"name", req->name()}};
                 if (gone.ok()) d["id"] = gone->id;
                 Audit("node.delete", c.subject, "", d.dump());
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::ExportCA(
    grpc::CallbackServerContext* ctx, const pb::ExportCARequest* req,
    pb::ExportCAResponse* resp) {
  return Unary(
      ctx, "ExportCA", {Role::kUser, Role::kAdmin, Role::kNode, Role::kProxy},
      [this, req, resp](const auth::Claims&) -> Status {
        if (req->type() == "user") {
          resp->set_public_key(opt_.keys->user_ca_public);
        } else if (req->type() == "host") {
          resp->set_public_key(opt_.keys->host_ca_public);
        } else {
          return InvalidArgument("CA type must be user or host (got '" +
                                 req->type() + "')");
        }
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::SignUserCert(
    grpc::CallbackServerContext* ctx, const pb::SignUserCertRequest* req,
    pb::SignUserCertResponse* resp) {
  return Unary(
      ctx, "SignUserCert", {Role::kUser, Role::kAdmin},
      [this, req, resp](const auth::Claims& c) -> Status {
        MEZ_ASSIGN_OR_RETURN(catalog::User u, opt_.catalog->GetUser(c.subject));
        std::string allowed;
        bool found = false;
        for (const auto& l : u.logins) {
          allowed += (allowed.empty() ? "" : ", ") + l;
          found |= l == req->login();
        }
        if (!found) {
          Status d = PermissionDenied(
              "login '" + req->login() + "' is not allowed for " + u.name +
              " (allowed: " + (allowed.empty() ? "none" : allowed) + ")");
          Deny(&c, "SignUserCert", d);
          return d;
        }
        // The certificate is for one node: it carries a recording grant
        // for that node only, never the caller's API token (which would
        // reach every node and outlive the certificate).
        if (req->node().empty()) {
          return InvalidArgument(
              "node is required: a certificate is signed for one node "
              "(update msh)");
        }
        if (!IsPlainIdentifier(req->node())) {
          return InvalidArgument("node must be a registered node's name");
        }
        auto node = opt_.catalog->GetNode(req->node());
        if (!node.ok()) {
          if (node.status().code() != Code::kNotFound) return node.status();
          Status d =
              NotFound("node '" + req->node() +
                       "' is not registered (mezctl nodes ls lists them)");
          Deny(&c, "SignUserCert", d);
          return d;
        }
        int64_t now = opt_.clock->WallMicros() / 1'000'000;
        auth::SshCertRequest r;
        r.public_key_blob = req->public_key_blob();
        r.type = auth::kSshUserCert;
        r.key_id = u.name;
        r.principals = {req->login()};
        r.valid_after = now - kUserCertBackdate;
        r.valid_before = now + kUserCertTtl;
        if (c.expires_at > 0 && c.expires_at < r.valid_before) {
          r.valid_before = c.expires_at;
        }
        if (r.valid_before <= now) {
          return Status(Code::kUnauthenticated,
                        "your token has expired; log in again");
        }
        auth::Claims grant;
        grant.subject = u.name;
        grant.role = Role::kSession;
        grant.uid = u.id;
        grant.audience = node->name;
        grant.logins = {req->login()};
        // The certificate is checked once, when the SSH connection is
        // authenticated, but channels (an exec, a port forward) open as
        // long as the connection lives, and each is recorded with this
        // grant: it lives as long as the caller's login, at most
        // kMaxGrantTtl, while the certificate itself stays short.
        int64_t grant_until = now + kMaxGrantTtl;
        if (c.expires_at > 0 && c.expires_at < grant_until) {
          grant_until = c.expires_at;
        }
        MEZ_ASSIGN_OR_RETURN(
            std::string token,
            auth::IssueToken(*opt_.signer, opt_.keys->cluster_name, grant,
                             grant_until - now, opt_.clock));
        r.extensions = {{"permit-pty", ""},
                        {"permit-port-forwarding", ""},
                        {std::string(auth::kMeziteTokenExtension), token}};
        MEZ_ASSIGN_OR_RETURN(
            std::string blob,
            auth::SignSshCert(opt_.keys->user_ca_private_pem, r));
        resp->set_certificate_line(auth::SshCertLine(blob, u.name));
        resp->set_valid_before(r.valid_before);
        nlohmann::json d = {{"login", req->login()},
                            {"principals", r.principals},
                            {"node", node->name},
                            {"valid_before", r.valid_before}};
        Audit("cert.issue", c.subject, "", d.dump());
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::ResolveNode(
    grpc::CallbackServerContext* ctx, const pb::ResolveNodeRequest* req,
    pb::NodeInfo* resp) {
  return Unary(
      ctx, "ResolveNode", {Role::kUser, Role::kAdmin, Role::kProxy},
      [this, req, resp](const auth::Claims&) -> Status {
        auto n = opt_.catalog->GetNode(req->name());
        if (!n.ok()) {
          if (n.status().code() == Code::kNotFound) {
            return NotFound("node '" + req->name() + "' is not registered");
          }
          return n.status();
        }
        resp->set_name(n->name);
        resp->set_addr(n->addr);
        resp->set_openssh(n->openssh);
        resp->set_host_key(n->host_key);
        // Published by the proxy role when it starts (libmez/proxy).
        auto paddr = opt_.catalog->GetConfig(std::string(kProxyAddrKey));
        auto pkey = opt_.catalog->GetConfig(std::string(kProxyHostKeyKey));
        if (paddr.ok() && paddr->has_value() && pkey.ok() &&
            pkey->has_value()) {
          resp->set_proxy_addr(**paddr);
          resp->set_proxy_host_key(**pkey);
        }
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::JoinNode(
    grpc::CallbackServerContext* ctx, const pb::JoinNodeRequest* req,
    pb::JoinNodeResponse* resp) {
  auto join_hash = std::make_shared<std::string>();
  return Unary(
      ctx, "JoinNode", {Role::kNode},
      [this, req, join_hash](grpc::CallbackServerContext* c) {
        return opt_.authorizer->JoinCaller(c, req->stores_credential(),
                                           join_hash.get());
      },
      [this, ctx, req, resp, join_hash](const auth::Claims& c) -> Status {
        const bool exchange = !join_hash->empty();
        // Bounded before anything (the audit log included) sees it.
        if (req->addr().size() > 512 ||
            (!req->addr().empty() &&
             !catalog::ValidateNodeAddr(c.subject, req->addr()).ok())) {
          return InvalidArgument("addr must be HOST:PORT");
        }
        const std::string& mode = req->recording_mode();
        if (!mode.empty()) {
          MEZ_RETURN_IF_ERROR(ValidateSetting("session_recording", mode));
        }
        std::string host_key_line;
        if (!req->host_key().empty()) {
          auto blob = auth::Ed25519BlobFromPublicLine(req->host_key());
          if (!blob.ok()) {
            return InvalidArgument("host_key: " + blob.status().message());
          }
          host_key_line =
              std::string(auth::kSshEd25519) + " " + Base64Encode(*blob);
          // A host certificate for the node's name and address host, so
          // clients that trust the host CA accept it.
          int64_t now = opt_.clock->WallMicros() / 1'000'000;
          auth::SshCertRequest r;
          r.public_key_blob = *blob;
          r.type = auth::kSshHostCert;
          r.key_id = c.subject;
          r.principals = {c.subject};
          std::string host = req->addr().substr(0, req->addr().rfind(':'));
          if (host.size() >= 2 && host.front() == '[') {
            host = host.substr(1, host.size() - 2);
          }
          if (!host.empty() && host != c.subject) r.principals.push_back(host);
          r.valid_after = now - kUserCertBackdate;
          r.valid_before = now + kHostCertTtl;
          MEZ_ASSIGN_OR_RETURN(
              std::string cert,
              auth::SignSshCert(opt_.keys->host_ca_private_pem, r));
          resp->set_host_certificate_line(auth::SshCertLine(cert, c.subject));
        }
        // The host key is pinned by the first join (or by nodes add
        // --host-key): a different key later is refused, not re-pinned,
        // since clients trust the pinned one.
        MEZ_ASSIGN_OR_RETURN(catalog::Node node,
                             opt_.catalog->GetNode(c.subject));
        // The row read now is the one the caller was checked against (not
        // a node removed and added again in between).
        if (node.id != c.uid) {
          return Status(Code::kUnauthenticated,
                        "node '" + c.subject +
                            "' was removed and added again; this credential "
                            "was revoked");
        }
        if (!host_key_line.empty() && !node.host_key.empty() &&
            node.host_key != host_key_line) {
          nlohmann::json d = {{"node", c.subject},
                              {"pinned", node.host_key},
                              {"offered", host_key_line},
                              {"addr", req->addr()}};
          Audit("node.host_key_mismatch", "", "", d.dump());
          return FailedPrecondition(
              "node " + c.subject +
              " offers a host key that differs from the pinned one; if the "
              "node was reinstalled, an admin runs: mezctl nodes rm " +
              c.subject + " && mezctl nodes add " + c.subject);
        }
        // Read-only parts of the answer first: once a join token is used
        // up, nothing but the answer may fail.
        MEZ_ASSIGN_OR_RETURN(auto setting,
                             opt_.catalog->GetConfig("session_recording"));
        // Users removed lately, whose certificates mezd must refuse (issue
        // 14 item 7).
        MEZ_RETURN_IF_ERROR(
            FillRevokedUserIds(opt_.catalog, opt_.clock->WallMicros(), resp));
        // The node's credential: new for a join token, renewed for a node
        // credential once a third of its life has passed.
        int64_t now_s = opt_.clock->WallMicros() / 1'000'000;
        bool renew =
            c.expires_at - now_s < (c.expires_at - c.issued_at) * 2 / 3;
        if (exchange || renew) {
          auth::Claims nc;
          nc.subject = c.subject;
          nc.role = Role::kNode;
          nc.uid = node.id;
          MEZ_ASSIGN_OR_RETURN(
              std::string token,
              auth::IssueToken(*opt_.signer, opt_.keys->cluster_name,
                               std::move(nc), auth::kNodeCredentialTtl,
                               opt_.clock));
          resp->set_node_token(token);
          resp->set_node_token_expires_at(now_s + auth::kNodeCredentialTtl);
        }
        // A join token is good once: used up here, before it changes
        // anything, in one catalog statement (one winner among replicas).
        if (exchange) {
          Status used = opt_.catalog->ConsumeJoinToken(c.subject, *join_hash);
          if (used.code() == Code::kNotFound) {
            Status refused(
                Code::kUnauthenticated,
                "the join token of node '" + c.subject +
                    "' was already used (a join token is good once); start "
                    "mezd with the data dir that holds its credential, or "
                    "have an admin run: mezctl nodes rm " +
                    c.subject + " && mezctl nodes add " + c.subject);
            Deny(&c, "JoinNode", refused);
            return refused;
          }
          MEZ_RETURN_IF_ERROR(used);
        }
        if (exchange || renew) {
          nlohmann::json d = {{"name", c.subject},
                              {"id", node.id},
                              {"addr", req->addr()},
                              {"peer", ctx->peer()},
                              {"expires_at", resp->node_token_expires_at()}};
          Audit(exchange ? "node.join" : "node.credential_renew", "", "",
                d.dump());
        }
        Status touched =
            opt_.catalog->TouchNode(c.subject, opt_.clock->WallMicros(), mode,
                                    req->addr(), host_key_line);
        if (!touched.ok()) {
          // The join token is used up: the answer must still go out (the
          // next heartbeat touches the node again).
          if (!exchange) return touched;
          MEZ_LOG(kWarning) << "JoinNode: " << touched.message();
        }
        resp->set_name(c.subject);
        resp->set_user_ca_public(opt_.keys->user_ca_public);
        resp->set_host_ca_public(opt_.keys->host_ca_public);
        resp->set_session_recording(setting.value_or(kDefaultRecordingMode));
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::NodeAudit(
    grpc::CallbackServerContext* ctx, const pb::NodeAuditRequest* req,
    pb::NodeAuditResponse* resp) {
  return Unary(
      ctx, "NodeAudit", {Role::kNode, Role::kProxy},
      [this, req, resp](const auth::Claims& c) -> Status {
        static const char* const kTypes[] = {"session.start",
                                             "session.end",
                                             "auth.refused",
                                             "recording.spool_full",
                                             "recording.upload_rejected",
                                             "proxy.refused"};
        bool known = false;
        for (const char* t : kTypes) known |= req->type() == t;
        if (!known) {
          return InvalidArgument(
              "a node may report session.start, session.end, auth.refused, "
              "recording.spool_full, recording.upload_rejected or "
              "proxy.refused, not '" +
              req->type() + "'");
        }
        if (req->session_id().size() > 128 || req->user().size() > 256 ||
            req->details().size() > 16 * 1024) {
          return InvalidArgument("audit event fields are too long");
        }
        nlohmann::json details = nlohmann::json::object();
        if (!req->details().empty()) {
          try {
            details = nlohmann::json::parse(req->details());
          } catch (const std::exception&) {
            return InvalidArgument("details must be a JSON object");
          }
          if (!details.is_object()) {
            return InvalidArgument("details must be a JSON object");
          }
        }
        catalog::AuditEvent e;
        e.time_us = opt_.clock->WallMicros();
        e.type = req->type();
        e.session_id = req->session_id();
        e.node = c.subject;
        // A proxy reports for the agentless node it serves.
        if (c.role == Role::kProxy && !req->node().empty()) {
          if (req->node().size() > 255) {
            return InvalidArgument("node is too long");
          }
          e.node = req->node();
        }
        if (!req->user_token().empty()) {
          auto claims = opt_.verifier->Verify(
              req->user_token(), opt_.clock->WallMicros() / 1'000'000);
          if (claims.ok()) {
            // As for a recording: only the user's grant for this node.
            if (claims->role != Role::kSession) {
              return PermissionDenied(
                  "user_token is a " +
                  std::string(auth::RoleName(claims->role)) +
                  " token; a node reports the user's recording grant from "
                  "the SSH certificate, never an API token");
            }
            if (claims->audience != e.node) {
              return PermissionDenied("user_token is a grant for node '" +
                                      claims->audience + "', not for '" +
                                      e.node + "'");
            }
            e.user = claims->subject;
          } else if (claims.status().message().find("expired") !=
                     std::string::npos) {
            // The node was offline for longer than the token lived: keep
            // the event, marked as resting on an unverified name.
            details["token_expired"] = true;
            if (!req->user().empty()) details["claimed_user"] = req->user();
          } else {
            return Status(Code::kUnauthenticated,
                          "user_token: " + claims.status().message());
          }
        } else if (!req->user().empty()) {
          details["claimed_user"] = req->user();
        }
        details["reported_by"] = c.subject;
        e.details = details.dump();
        MEZ_ASSIGN_OR_RETURN(int64_t id, opt_.catalog->AppendAudit(e));
        resp->set_id(id);
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::ProxyHello(
    grpc::CallbackServerContext* ctx, const pb::ProxyHelloRequest* req,
    pb::ProxyHelloResponse* resp) {
  return Unary(
      ctx, "ProxyHello", {Role::kProxy},
      [this, req, resp](const auth::Claims& c) -> Status {
        // An empty addr only asks for the CA (before the proxy is bound).
        if (!req->addr().empty()) {
          Status addr = ValidateListenAddress(req->addr());
          if (!addr.ok() || req->addr().size() > 256) {
            return InvalidArgument("addr must be HOST:PORT");
          }
          auto blob = auth::Ed25519BlobFromPublicLine(req->host_key());
          if (!blob.ok()) {
            return InvalidArgument("host_key: " + blob.status().message());
          }
          std::string line = std::string(auth::kSshEd25519) + " " +
                             Base64Encode(*blob) + " mezite-proxy";
          MEZ_RETURN_IF_ERROR(
              opt_.catalog->SetConfig(std::string(kProxyAddrKey), req->addr()));
          MEZ_RETURN_IF_ERROR(
              opt_.catalog->SetConfig(std::string(kProxyHostKeyKey), line));
          nlohmann::json d = {{"addr", req->addr()}};
          Audit("proxy.hello", c.subject, "", d.dump());
        }
        MEZ_ASSIGN_OR_RETURN(auto setting,
                             opt_.catalog->GetConfig("session_recording"));
        resp->set_user_ca_public(opt_.keys->user_ca_public);
        resp->set_session_recording(setting.value_or(kDefaultRecordingMode));
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::AuthorizeProxyHop(
    grpc::CallbackServerContext* ctx, const pb::ProxyHopRequest* req,
    pb::NodeInfo* resp) {
  return Unary(ctx, "AuthorizeProxyHop", {Role::kProxy},
               [this, req, resp](const auth::Claims& c) -> Status {
                 MEZ_ASSIGN_OR_RETURN(
                     catalog::Node n,
                     rpc::AuthorizeProxyHop(opt_.catalog, opt_.clock, c.subject,
                                            req->user(), req->node(),
                                            req->remote(), req->login()));
                 resp->set_name(n.name);
                 resp->set_addr(n.addr);
                 resp->set_openssh(n.openssh);
                 resp->set_host_key(n.host_key);
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::SignUpstreamCert(
    grpc::CallbackServerContext* ctx, const pb::UpstreamCertRequest* req,
    pb::UpstreamCertResponse* resp) {
  return Unary(
      ctx, "SignUpstreamCert", {Role::kProxy},
      [this, req, resp](const auth::Claims& c) -> Status {
        auto u = opt_.catalog->GetUser(req->user());
        if (!u.ok()) {
          if (u.status().code() != Code::kNotFound) return u.status();
          return PermissionDenied("user '" + req->user() + "' does not exist");
        }
        if (std::find(u->logins.begin(), u->logins.end(), req->login()) ==
            u->logins.end()) {
          Status d = PermissionDenied("login '" + req->login() +
                                      "' is not allowed for " + u->name);
          Deny(&c, "SignUpstreamCert", d);
          return d;
        }
        int64_t now = opt_.clock->WallMicros() / 1'000'000;
        auth::SshCertRequest r = auth::UpstreamCertRequest(
            req->public_key_blob(), u->name, req->login(), now);
        MEZ_ASSIGN_OR_RETURN(
            std::string blob,
            auth::SignSshCert(opt_.keys->user_ca_private_pem, r));
        resp->set_certificate_blob(blob);
        nlohmann::json d = {{"login", req->login()},
                            {"upstream", true},
                            {"proxy", c.subject},
                            {"valid_before", r.valid_before}};
        Audit("cert.issue", u->name, "", d.dump());
        return Status::Ok();
      });
}

}  // namespace mez::rpc
