#include "libmez/rpc/cluster_service.h"

#include <algorithm>

#include "libmez/record/event_lines.h"
#include "libmez/record/plain_cast.h"
#include "libmez/rpc/cluster_convert.h"
#include "libmez/util/host_port.h"
#include "libmez/util/log.h"

namespace mez::rpc {
namespace {

using auth::Role;
namespace pb = mezite::v1;

constexpr size_t kReadChunk = 256 * 1024;

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
  MEZ_ASSIGN_OR_RETURN(std::string_view token,
                       CallAuthenticator::BearerToken(ctx));
  return cluster::CheckJoinToken(catalog_, std::move(c), std::string(token),
                                 join_hash);
}

ClusterService::ClusterService(ClusterServiceOptions options)
    : opt_(std::move(options)) {
  if (opt_.clock == nullptr) opt_.clock = RealClock();
  catalog::CatalogRetrierOptions r;
  r.catalog = opt_.catalog;
  r.clock = opt_.clock;
  r.name = "cluster";
  retrier_ = std::make_unique<catalog::CatalogRetrier>(std::move(r));
  cluster::ClusterOptions c;
  c.catalog = opt_.catalog;
  c.signer = opt_.signer;
  c.keys = opt_.keys;
  c.verifier = opt_.verifier;
  c.clock = opt_.clock;
  c.tls_ca_sha256 = opt_.tls_ca_sha256;
  catalog::CatalogRetrier* retrier = retrier_.get();
  // Logged and queued for a retry when it fails.
  c.audit = [retrier](const catalog::AuditEvent& e) {
    (void)retrier->AppendAudit(e);
  };
  domain_ = std::make_unique<cluster::Cluster>(std::move(c));
}

grpc::ServerUnaryReactor* ClusterService::Unary(
    grpc::CallbackServerContext* ctx, const char* method,
    std::function<Status(const auth::Claims&)> fn, CallerFn caller) {
  auto* reactor = ctx->DefaultReactor();
  opt_.pool->Submit([this, ctx, reactor, method, caller, fn] {
    auto who = caller ? caller(ctx) : opt_.authorizer->Caller(ctx);
    if (!who.ok()) {
      domain_->AuditDenied(nullptr, method, who.status());
      reactor->Finish(ToGrpc(who.status()));
      return;
    }
    reactor->Finish(ToGrpc(fn(*who)));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::WhoAmI(
    grpc::CallbackServerContext* ctx, const pb::WhoAmIRequest*,
    pb::WhoAmIResponse* resp) {
  return Unary(ctx, "WhoAmI", [this, resp](const auth::Claims& c) -> Status {
    MEZ_RETURN_IF_ERROR(domain_->WhoAmI(c));
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
  return Unary(
      ctx, "ListSessions", [this, req, resp](const auth::Claims& c) -> Status {
        MEZ_ASSIGN_OR_RETURN(catalog::SessionFilter f, FromProto(*req));
        MEZ_ASSIGN_OR_RETURN(auto rows, domain_->ListSessions(c, std::move(f)));
        for (const auto& s : rows) ToProto(s, resp->add_sessions());
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::GetSession(
    grpc::CallbackServerContext* ctx, const pb::GetSessionRequest* req,
    pb::SessionInfo* resp) {
  return Unary(
      ctx, "GetSession", [this, req, resp](const auth::Claims& c) -> Status {
        MEZ_ASSIGN_OR_RETURN(auto s, domain_->GetSession(c, req->id()));
        ToProto(s, resp);
        return Status::Ok();
      });
}

grpc::ServerWriteReactor<pb::RecordingBytes>* ClusterService::ReadRecording(
    grpc::CallbackServerContext* ctx, const pb::ReadRecordingRequest* req) {
  auto* reactor = new ReadReactor(opt_.pool);
  std::string id = req->id();
  uint64_t offset = req->offset();
  bool seek_index = req->seek_index();
  bool events = req->events();
  opt_.pool->Submit([this, ctx, reactor, id, offset, seek_index, events] {
    auto who = opt_.authorizer->Caller(ctx);
    if (!who.ok()) {
      domain_->AuditDenied(nullptr, "ReadRecording", who.status());
      return reactor->Fail(ToGrpc(who.status()));
    }
    auto s = domain_->RecordingToRead(*who, id);
    if (!s.ok()) return reactor->Fail(ToGrpc(s.status()));
    if (seek_index && events) {
      return reactor->Fail(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       "ask for the seek index or the events, not both"));
    }
    if (seek_index) {
      // The index holds screens of the recording: read like it.
      auto body = opt_.seek_index ? opt_.seek_index(*s)
                                  : Result<std::string>(NotFound(
                                        "this server keeps no seek indexes"));
      if (!body.ok()) return reactor->Fail(ToGrpc(body.status()));
      domain_->AuditRecordingRead(*who, *s, offset);
      pb::SessionInfo info;
      ToProto(*s, &info);
      return reactor->Begin(
          std::make_unique<record::StringSource>(std::move(body).value()),
          offset, std::move(info));
    }
    if (events) {
      // Events are read like the recording they belong to.
      std::string key = store::EventsKey(s->storage_key);
      auto src = key.empty() ? Result<std::unique_ptr<record::ByteSource>>(
                                   NotFound("not a shell or exec recording"))
                             : opt_.store->Open(key);
      if (!src.ok()) {
        return reactor->Fail(ToGrpc(
            src.status().code() == Code::kNotFound
                ? Status(Code::kNotFound, "session " + id +
                                              " has no enhanced recording "
                                              "events")
                : src.status()));
      }
      auto plain =
          record::OpenPlainCast(std::move(src).value(), opt_.encryption_key);
      if (!plain.ok()) return reactor->Fail(ToGrpc(plain.status()));
      domain_->AuditRecordingRead(*who, *s, offset);
      pb::SessionInfo info;
      ToProto(*s, &info);
      return reactor->Begin(
          record::NewEventLinesSource(std::move(plain).value()), offset,
          std::move(info));
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
    domain_->AuditRecordingRead(*who, *s, offset);
    pb::SessionInfo info;
    ToProto(*s, &info);
    reactor->Begin(std::move(plain), offset, std::move(info));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::ListAudit(
    grpc::CallbackServerContext* ctx, const pb::ListAuditRequest* req,
    pb::ListAuditResponse* resp) {
  return Unary(
      ctx, "ListAudit", [this, req, resp](const auth::Claims& c) -> Status {
        MEZ_ASSIGN_OR_RETURN(auto rows, domain_->ListAudit(c, FromProto(*req)));
        for (const auto& e : rows) ToProto(e, resp->add_events());
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::GetConfig(
    grpc::CallbackServerContext* ctx, const pb::GetConfigRequest* req,
    pb::ConfigValue* resp) {
  return Unary(
      ctx, "GetConfig", [this, req, resp](const auth::Claims& c) -> Status {
        MEZ_ASSIGN_OR_RETURN(std::string v, domain_->GetSetting(c, req->key()));
        resp->set_key(req->key());
        resp->set_value(v);
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::SetConfig(
    grpc::CallbackServerContext* ctx, const pb::SetConfigRequest* req,
    pb::ConfigValue* resp) {
  return Unary(
      ctx, "SetConfig", [this, req, resp](const auth::Claims& c) -> Status {
        MEZ_RETURN_IF_ERROR(domain_->SetSetting(c, req->key(), req->value()));
        resp->set_key(req->key());
        resp->set_value(req->value());
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::AddUser(
    grpc::CallbackServerContext* ctx, const pb::AddUserRequest* req,
    pb::AddUserResponse* resp) {
  return Unary(ctx, "AddUser",
               [this, req, resp](const auth::Claims& c) -> Status {
                 MEZ_ASSIGN_OR_RETURN(cluster::AddedUser added,
                                      domain_->AddUser(c, FromProto(*req)));
                 ToProto(added.user, resp->mutable_user());
                 resp->set_token(added.token);
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::ListUsers(
    grpc::CallbackServerContext* ctx, const pb::ListUsersRequest*,
    pb::ListUsersResponse* resp) {
  return Unary(ctx, "ListUsers", [this, resp](const auth::Claims& c) -> Status {
    MEZ_ASSIGN_OR_RETURN(auto users, domain_->ListUsers(c));
    for (const auto& u : users) ToProto(u, resp->add_users());
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* ClusterService::RemoveUser(
    grpc::CallbackServerContext* ctx, const pb::RemoveUserRequest* req,
    pb::RemoveUserResponse*) {
  return Unary(ctx, "RemoveUser", [this, req](const auth::Claims& c) {
    return domain_->RemoveUser(c, req->name());
  });
}

grpc::ServerUnaryReactor* ClusterService::ReissueUser(
    grpc::CallbackServerContext* ctx, const pb::ReissueUserRequest* req,
    pb::ReissueUserResponse* resp) {
  return Unary(ctx, "ReissueUser",
               [this, req, resp](const auth::Claims& c) -> Status {
                 MEZ_ASSIGN_OR_RETURN(
                     cluster::AddedUser out,
                     domain_->ReissueUser(c, req->name(), req->ttl_seconds()));
                 ToProto(out.user, resp->mutable_user());
                 resp->set_token(out.token);
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::AddNode(
    grpc::CallbackServerContext* ctx, const pb::AddNodeRequest* req,
    pb::AddNodeResponse* resp) {
  return Unary(ctx, "AddNode",
               [this, req, resp](const auth::Claims& c) -> Status {
                 MEZ_ASSIGN_OR_RETURN(cluster::AddedNode added,
                                      domain_->AddNode(c, FromProto(*req)));
                 ToProto(added.node, resp->mutable_node());
                 if (!added.join_token.empty()) {
                   resp->set_join_token(added.join_token);
                   resp->set_join_token_expires_at(added.join_token_expires_at);
                 }
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::ListNodes(
    grpc::CallbackServerContext* ctx, const pb::ListNodesRequest*,
    pb::ListNodesResponse* resp) {
  return Unary(ctx, "ListNodes", [this, resp](const auth::Claims& c) -> Status {
    MEZ_ASSIGN_OR_RETURN(auto nodes, domain_->ListNodes(c));
    for (const auto& n : nodes) ToProto(n, resp->add_nodes());
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* ClusterService::RemoveNode(
    grpc::CallbackServerContext* ctx, const pb::RemoveNodeRequest* req,
    pb::RemoveNodeResponse*) {
  return Unary(ctx, "RemoveNode", [this, req](const auth::Claims& c) {
    return domain_->RemoveNode(c, req->name());
  });
}

grpc::ServerUnaryReactor* ClusterService::ExportCA(
    grpc::CallbackServerContext* ctx, const pb::ExportCARequest* req,
    pb::ExportCAResponse* resp) {
  return Unary(ctx, "ExportCA",
               [this, req, resp](const auth::Claims& c) -> Status {
                 MEZ_ASSIGN_OR_RETURN(std::string key,
                                      domain_->ExportCA(c, req->type()));
                 resp->set_public_key(key);
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::SignUserCert(
    grpc::CallbackServerContext* ctx, const pb::SignUserCertRequest* req,
    pb::SignUserCertResponse* resp) {
  return Unary(
      ctx, "SignUserCert", [this, req, resp](const auth::Claims& c) -> Status {
        MEZ_ASSIGN_OR_RETURN(cluster::UserCert cert,
                             domain_->SignUserCert(c, req->login(), req->node(),
                                                   req->public_key_blob()));
        resp->set_certificate_line(cert.certificate_line);
        resp->set_valid_before(cert.valid_before);
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* ClusterService::ResolveNode(
    grpc::CallbackServerContext* ctx, const pb::ResolveNodeRequest* req,
    pb::NodeInfo* resp) {
  return Unary(ctx, "ResolveNode",
               [this, req, resp](const auth::Claims& c) -> Status {
                 MEZ_ASSIGN_OR_RETURN(cluster::ResolvedNode r,
                                      domain_->ResolveNode(c, req->name()));
                 resp->set_name(r.node.name);
                 resp->set_addr(r.node.addr);
                 resp->set_openssh(r.node.openssh);
                 resp->set_host_key(r.node.host_key);
                 if (!r.proxy_addr.empty()) {
                   resp->set_proxy_addr(r.proxy_addr);
                   resp->set_proxy_host_key(r.proxy_host_key);
                 }
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::JoinNode(
    grpc::CallbackServerContext* ctx, const pb::JoinNodeRequest* req,
    pb::JoinNodeResponse* resp) {
  auto join_hash = std::make_shared<std::string>();
  return Unary(
      ctx, "JoinNode",
      [this, ctx, req, resp, join_hash](const auth::Claims& c) -> Status {
        cluster::NodeReport report;
        report.addr = req->addr();
        report.recording_mode = req->recording_mode();
        report.host_key = req->host_key();
        report.peer = ctx->peer();
        MEZ_ASSIGN_OR_RETURN(cluster::JoinAnswer answer,
                             domain_->JoinNode(c, report, *join_hash));
        ToProto(answer, resp);
        return Status::Ok();
      },
      [this, req, join_hash](grpc::CallbackServerContext* c) {
        return opt_.authorizer->JoinCaller(c, req->stores_credential(),
                                           join_hash.get());
      });
}

grpc::ServerUnaryReactor* ClusterService::NodeAudit(
    grpc::CallbackServerContext* ctx, const pb::NodeAuditRequest* req,
    pb::NodeAuditResponse* resp) {
  return Unary(ctx, "NodeAudit",
               [this, req, resp](const auth::Claims& c) -> Status {
                 MEZ_ASSIGN_OR_RETURN(int64_t id,
                                      domain_->NodeAudit(c, FromProto(*req)));
                 resp->set_id(id);
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::ProxyHello(
    grpc::CallbackServerContext* ctx, const pb::ProxyHelloRequest* req,
    pb::ProxyHelloResponse* resp) {
  return Unary(ctx, "ProxyHello",
               [this, req, resp](const auth::Claims& c) -> Status {
                 // The wire form of the address; the domain does the rest (the
                 // role check comes first, as for every call).
                 if (c.role == Role::kProxy && !req->addr().empty() &&
                     (!ValidateListenAddress(req->addr()).ok() ||
                      req->addr().size() > 256)) {
                   return InvalidArgument("addr must be HOST:PORT");
                 }
                 MEZ_ASSIGN_OR_RETURN(
                     cluster::ProxyWelcome w,
                     domain_->ProxyHello(c, req->addr(), req->host_key()));
                 resp->set_user_ca_public(w.user_ca_public);
                 resp->set_session_recording(w.session_recording);
                 return Status::Ok();
               });
}

grpc::ServerUnaryReactor* ClusterService::AuthorizeProxyHop(
    grpc::CallbackServerContext* ctx, const pb::ProxyHopRequest* req,
    pb::NodeInfo* resp) {
  return Unary(ctx, "AuthorizeProxyHop",
               [this, req, resp](const auth::Claims& c) -> Status {
                 MEZ_ASSIGN_OR_RETURN(
                     catalog::Node n,
                     domain_->AuthorizeProxyHop(c, req->user(), req->node(),
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
  return Unary(ctx, "SignUpstreamCert",
               [this, req, resp](const auth::Claims& c) -> Status {
                 MEZ_ASSIGN_OR_RETURN(
                     std::string blob,
                     domain_->SignUpstreamCert(c, req->user(), req->login(),
                                               req->public_key_blob()));
                 resp->set_certificate_blob(blob);
                 return Status::Ok();
               });
}

}  // namespace mez::rpc
