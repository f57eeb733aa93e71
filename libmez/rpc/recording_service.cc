#include "libmez/rpc/recording_service.h"

#include <atomic>

#include "libmez/ingest/proto_convert.h"
#include "libmez/rpc/cluster_service.h"
#include "libmez/spool/frame_enums.h"
#include "libmez/spool/spool.h"
#include "libmez/util/log.h"
#include "libmez/util/path.h"

namespace mez::rpc {
namespace {

using mezite::v1::RecordFrame;

bool MayRecord(auth::Role role) {
  return role == auth::Role::kNode || role == auth::Role::kProxy ||
         role == auth::Role::kAdmin;
}

class RecordReactor : public grpc::ServerReadReactor<RecordFrame> {
 public:
  RecordReactor(grpc::CallbackServerContext* ctx,
                mezite::v1::RecordSummary* summary,
                ingest::IngestManager* ingest, ThreadPool* pool,
                ingest::Caller caller, const CallerCheck* check)
      : ctx_(ctx),
        summary_(summary),
        ingest_(ingest),
        pool_(pool),
        caller_(std::move(caller)),
        check_(check) {
    StartRead(&frame_);
  }

  void OnReadDone(bool ok) override {
    // Frame handling may block on the disk: it runs on the pool, and the
    // next read starts only when it is done.
    pool_->Submit([this, ok] {
      if (!ok) {
        End();
      } else {
        Status s = Handle();
        if (s.ok()) {
          StartRead(&frame_);
        } else {
          Reject(s);
        }
      }
    });
  }

  void OnCancel() override { cancelled_ = true; }
  void OnDone() override {
    // The stream object may still exist if Finish raced a cancellation.
    if (stream_) stream_->Finish(false).ok();
    delete this;
  }

 private:
  Status Handle() {
    switch (frame_.frame_case()) {
      case RecordFrame::kHeader: {
        if (stream_) return InvalidArgument("a second header frame");
        if (*check_) {
          Status ok = (*check_)(caller_);
          if (!ok.ok()) {
            session_id_ = frame_.header().session_id();
            return ok;
          }
        }
        auto s =
            ingest_->Begin(ingest::HeaderFromProto(frame_.header()), caller_);
        if (!s.ok()) {
          session_id_ = frame_.header().session_id();
          return s.status();
        }
        stream_ = std::move(s).value();
        // Tells the client the header was accepted: agents start the
        // user's program only after this, so a refused recording never
        // lets anything run unrecorded.
        ctx_->AddInitialMetadata("mezite-accepted", "1");
        StartSendInitialMetadata();
        return Status::Ok();
      }
      case RecordFrame::kBatch:
        if (!stream_) return InvalidArgument("batch frame before the header");
        for (const RecordFrame& f : frame_.batch().frames()) {
          if (f.frame_case() == RecordFrame::kHeader ||
              f.frame_case() == RecordFrame::kBatch) {
            return InvalidArgument(
                "a batch frame may hold only chunk, resize, exit and events "
                "frames");
          }
          MEZ_RETURN_IF_ERROR(HandleData(f));
        }
        return Status::Ok();
      default:
        return HandleData(frame_);
    }
  }

  // A chunk, resize, exit or events frame, alone or from a batch.
  Status HandleData(const RecordFrame& f) {
    switch (f.frame_case()) {
      case RecordFrame::kChunk:
        if (!stream_) return InvalidArgument("chunk frame before the header");
        return stream_->Chunk(f.chunk().offset_us(),
                              spool::DirectionFromProto(f.chunk().direction()),
                              f.chunk().data());
      case RecordFrame::kResize:
        if (!stream_) return InvalidArgument("resize frame before the header");
        return stream_->Resize(f.resize().offset_us(), f.resize().width(),
                               f.resize().height());
      case RecordFrame::kExit:
        if (!stream_) return InvalidArgument("exit frame before the header");
        return stream_->Exit(f.exit().offset_us(), f.exit().exit_status());
      case RecordFrame::kEvents:
        if (!stream_) return InvalidArgument("events frame before the header");
        return ingest::EventsFromProto(stream_.get(), f.events());
      default:
        break;
    }
    return InvalidArgument(
        "empty frame (no header, chunk, resize, exit, events or batch)");
  }

  void Reject(const Status& s) {
    std::string sid = stream_ ? stream_->session_id() : session_id_;
    MEZ_LOG(kWarning) << "Record from " << caller_.name
                      << " refused: " << s.ToString();
    ingest_->AuditRejected(caller_, sid, s);
    if (stream_) {
      stream_->Finish(false).ok();
      stream_.reset();
    }
    Finish(ToGrpc(s));
  }

  void End() {
    if (!stream_) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "stream ended before its header frame"));
      return;
    }
    // The reader stops on a half-close or on a broken/cancelled call.
    bool complete = !cancelled_ && !ctx_->IsCancelled();
    Status s = stream_->Finish(complete);
    summary_->set_session_id(stream_->session_id());
    summary_->set_frames(stream_->frames());
    summary_->set_bytes(stream_->bytes());
    summary_->set_storage_key(stream_->storage_key());
    stream_.reset();
    Finish(ToGrpc(s));
  }

  grpc::CallbackServerContext* ctx_;
  mezite::v1::RecordSummary* summary_;
  ingest::IngestManager* ingest_;
  ThreadPool* pool_;
  ingest::Caller caller_;
  const CallerCheck* check_;
  RecordFrame frame_;
  std::unique_ptr<ingest::IngestStream> stream_;
  std::string session_id_;
  std::atomic<bool> cancelled_{false};
};

void ToProto(const ingest::UploadState& st, mezite::v1::UploadStatus* p) {
  p->set_session_id(st.session_id);
  p->set_received(st.received);
  p->set_complete(st.complete);
  p->set_total_size(st.total_size);
  p->set_sha256(st.sha256);
  p->set_storage_key(st.storage_key);
}

// One piece of a node-mode upload: a start frame, then data frames
// appended as they arrive (on the pool, one in flight), then Finish.
class UploadReactor : public grpc::ServerReadReactor<mezite::v1::UploadFrame> {
 public:
  UploadReactor(mezite::v1::UploadStatus* response,
                ingest::UploadManager* uploads, ThreadPool* pool,
                ingest::Caller caller, const CallerCheck* check)
      : response_(response),
        uploads_(uploads),
        pool_(pool),
        caller_(std::move(caller)),
        check_(check) {
    StartRead(&frame_);
  }

  void OnReadDone(bool ok) override {
    pool_->Submit([this, ok] {
      Status s = ok ? Handle() : End();
      if (!s.ok()) {
        MEZ_LOG(kWarning) << "Upload from " << caller_.name << " ("
                          << session_id_ << ") refused: " << s.ToString();
        writer_.reset();
        Finish(ToGrpc(s));
      } else if (ok) {
        StartRead(&frame_);
      }
    });
  }
  void OnDone() override { delete this; }

 private:
  Status Handle() {
    if (frame_.has_start()) {
      if (writer_ || started_) return InvalidArgument("a second start frame");
      started_ = true;
      const auto& st = frame_.start();
      session_id_ = st.session_id();
      if (*check_) MEZ_RETURN_IF_ERROR((*check_)(caller_));
      MEZ_ASSIGN_OR_RETURN(
          writer_, uploads_->Begin(caller_, st.session_id(), st.total_size(),
                                   st.sha256(), st.offset()));
      return Status::Ok();
    }
    if (frame_.frame_case() == mezite::v1::UploadFrame::kData) {
      if (!writer_) return InvalidArgument("data frame before the start frame");
      return writer_->Append(frame_.data());
    }
    return InvalidArgument("empty upload frame (no start, no data)");
  }

  // The client half-closed: make the piece durable and answer.
  Status End() {
    if (!writer_) return InvalidArgument("upload ended before its start frame");
    MEZ_ASSIGN_OR_RETURN(ingest::UploadState st, writer_->Finish());
    writer_.reset();
    ToProto(st, response_);
    Finish(grpc::Status::OK);
    return Status::Ok();
  }

  mezite::v1::UploadStatus* response_;
  ingest::UploadManager* uploads_;
  ThreadPool* pool_;
  ingest::Caller caller_;
  const CallerCheck* check_;
  mezite::v1::UploadFrame frame_;
  std::unique_ptr<ingest::UploadWriter> writer_;
  std::string session_id_;
  bool started_ = false;
};

}  // namespace

grpc::Status ToGrpc(const Status& s) {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  switch (s.code()) {
    case Code::kOk:
      return grpc::Status::OK;
    case Code::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case Code::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case Code::kAlreadyExists:
      code = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case Code::kPermissionDenied:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case Code::kUnauthenticated:
      code = grpc::StatusCode::UNAUTHENTICATED;
      break;
    case Code::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case Code::kOutOfRange:
      code = grpc::StatusCode::OUT_OF_RANGE;
      break;
    case Code::kDataLoss:
      code = grpc::StatusCode::DATA_LOSS;
      break;
    case Code::kUnavailable:
    case Code::kIoError:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case Code::kInternal:
      code = grpc::StatusCode::INTERNAL;
      break;
  }
  return grpc::Status(code, s.message());
}

Result<std::string_view> CallAuthenticator::BearerToken(
    const grpc::ServerContextBase* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return Status(Code::kUnauthenticated,
                  "missing 'authorization: Bearer <token>' metadata");
  }
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kBearer = "Bearer ";
  if (value.substr(0, kBearer.size()) != kBearer) {
    return Status(Code::kUnauthenticated,
                  "authorization metadata must be 'Bearer <token>'");
  }
  value.remove_prefix(kBearer.size());
  return value;
}

Result<auth::Claims> CallAuthenticator::Authenticate(
    const grpc::ServerContextBase* ctx) const {
  MEZ_ASSIGN_OR_RETURN(std::string_view token, BearerToken(ctx));
  MEZ_ASSIGN_OR_RETURN(
      auth::Claims c,
      verifier_->Verify(token, clock_->WallMicros() / 1'000'000));
  return c;
}

std::string CallAuthenticator::LegacyJoinHash(
    const grpc::ServerContextBase* ctx, const auth::Claims& claims) {
  if (!auth::IsLegacyJoinToken(claims)) return "";
  auto token = BearerToken(ctx);
  return token.ok() ? JoinTokenHash(std::string(*token)) : "";
}

Result<ingest::Caller> RecordingService::Authenticate(
    grpc::CallbackServerContext* ctx) const {
  MEZ_ASSIGN_OR_RETURN(auth::Claims claims, auth_->Authenticate(ctx));
  if (!MayRecord(claims.role)) {
    return PermissionDenied("a " + std::string(auth::RoleName(claims.role)) +
                            " credential cannot upload recordings");
  }
  ingest::Caller caller{claims.subject, claims.role, claims.uid};
  caller.legacy_join_hash = CallAuthenticator::LegacyJoinHash(ctx, claims);
  return caller;
}

grpc::ServerReadReactor<mezite::v1::UploadFrame>* RecordingService::Upload(
    grpc::CallbackServerContext* ctx, mezite::v1::UploadStatus* response) {
  class Refuse : public grpc::ServerReadReactor<mezite::v1::UploadFrame> {
   public:
    explicit Refuse(const grpc::Status& s) { Finish(s); }
    void OnDone() override { delete this; }
  };
  if (uploads_ == nullptr) {
    return new Refuse(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                   "this server takes no uploads"));
  }
  auto caller = Authenticate(ctx);
  if (!caller.ok()) return new Refuse(ToGrpc(caller.status()));
  return new UploadReactor(response, uploads_, pool_, *caller, &check_);
}

grpc::ServerUnaryReactor* RecordingService::GetUploadStatus(
    grpc::CallbackServerContext* ctx,
    const mezite::v1::UploadStatusRequest* request,
    mezite::v1::UploadStatus* response) {
  auto* reactor = ctx->DefaultReactor();
  if (uploads_ == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                 "this server takes no uploads"));
    return reactor;
  }
  auto caller = Authenticate(ctx);
  if (!caller.ok()) {
    reactor->Finish(ToGrpc(caller.status()));
    return reactor;
  }
  pool_->Submit([this, reactor, request, response, c = *caller] {
    if (check_) {
      Status ok = check_(c);
      if (!ok.ok()) {
        reactor->Finish(ToGrpc(ok));
        return;
      }
    }
    auto st = uploads_->GetStatus(c, request->session_id(),
                                  request->total_size(), request->sha256());
    if (st.ok()) ToProto(*st, response);
    reactor->Finish(ToGrpc(st.status()));
  });
  return reactor;
}

grpc::ServerReadReactor<RecordFrame>* RecordingService::Record(
    grpc::CallbackServerContext* ctx, mezite::v1::RecordSummary* summary) {
  auto claims = auth_->Authenticate(ctx);
  Status denied;
  if (!claims.ok()) {
    denied = claims.status();
  } else if (!MayRecord(claims->role)) {
    denied = PermissionDenied("a " + std::string(auth::RoleName(claims->role)) +
                              " credential cannot open recording streams");
  }
  if (!denied.ok()) {
    ingest::Caller anon{claims.ok() ? claims->subject : "", auth::Role::kUser};
    ingest_->AuditRejected(anon, "", denied);
    // A reactor that refuses at once.
    class Refuse : public grpc::ServerReadReactor<RecordFrame> {
     public:
      explicit Refuse(const grpc::Status& s) { Finish(s); }
      void OnDone() override { delete this; }
    };
    return new Refuse(ToGrpc(denied));
  }
  ingest::Caller caller{claims->subject, claims->role, claims->uid};
  caller.legacy_join_hash = CallAuthenticator::LegacyJoinHash(ctx, *claims);
  return new RecordReactor(ctx, summary, ingest_, pool_, std::move(caller),
                           &check_);
}

grpc::ServerUnaryReactor* RecordingService::EndRecordingSession(
    grpc::CallbackServerContext* ctx,
    const mezite::v1::EndRecordingSessionRequest* request,
    mezite::v1::EndRecordingSessionResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  auto claims = auth_->Authenticate(ctx);
  if (!claims.ok()) {
    reactor->Finish(ToGrpc(claims.status()));
    return reactor;
  }
  if (!MayRecord(claims->role)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "this credential cannot end recordings"));
    return reactor;
  }
  if (!IsPlainIdentifier(request->connection_id())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "connection_id must be a plain identifier"));
    return reactor;
  }
  // Closing files may block on the disk: off the reaction thread.
  std::string cid = request->connection_id();
  ingest::Caller caller{claims->subject, claims->role, claims->uid};
  pool_->Submit([this, reactor, response, cid, caller] {
    // As for Record and Upload: a removed node loses access at once.
    if (check_) {
      Status ok = check_(caller);
      if (!ok.ok()) {
        reactor->Finish(ToGrpc(ok));
        return;
      }
    }
    response->set_closed_files(
        static_cast<uint32_t>(ingest_->EndConnection(caller, cid)));
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace mez::rpc
