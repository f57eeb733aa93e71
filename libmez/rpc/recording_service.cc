#include "libmez/rpc/recording_service.h"

#include <atomic>

#include "libmez/util/log.h"
#include "libmez/util/path.h"

namespace mez::rpc {
namespace {

using mezite::v1::RecordFrame;

bool MayRecord(auth::Role role) {
  return role == auth::Role::kNode || role == auth::Role::kProxy ||
         role == auth::Role::kAdmin;
}

StreamHeader FromProto(const mezite::v1::RecordHeader& p) {
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

ChunkDirection FromProto(mezite::v1::Direction d) {
  switch (d) {
    case mezite::v1::DIRECTION_IN:
      return ChunkDirection::kIn;
    case mezite::v1::DIRECTION_ERR:
      return ChunkDirection::kErr;
    default:
      return ChunkDirection::kOut;
  }
}

class RecordReactor : public grpc::ServerReadReactor<RecordFrame> {
 public:
  RecordReactor(grpc::CallbackServerContext* ctx,
                mezite::v1::RecordSummary* summary, IngestManager* ingest,
                ThreadPool* pool, Caller caller)
      : ctx_(ctx),
        summary_(summary),
        ingest_(ingest),
        pool_(pool),
        caller_(std::move(caller)) {
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
        auto s = ingest_->Begin(FromProto(frame_.header()), caller_);
        if (!s.ok()) {
          session_id_ = frame_.header().session_id();
          return s.status();
        }
        stream_ = std::move(s).value();
        return Status::Ok();
      }
      case RecordFrame::kChunk:
        if (!stream_) return InvalidArgument("chunk frame before the header");
        return stream_->Chunk(frame_.chunk().offset_us(),
                              FromProto(frame_.chunk().direction()),
                              frame_.chunk().data());
      case RecordFrame::kResize:
        if (!stream_) return InvalidArgument("resize frame before the header");
        return stream_->Resize(frame_.resize().offset_us(),
                               frame_.resize().width(),
                               frame_.resize().height());
      case RecordFrame::kExit:
        if (!stream_) return InvalidArgument("exit frame before the header");
        return stream_->Exit(frame_.exit().offset_us(),
                             frame_.exit().exit_status());
      case RecordFrame::FRAME_NOT_SET:
        break;
    }
    return InvalidArgument("empty frame (no header, chunk, resize or exit)");
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
  IngestManager* ingest_;
  ThreadPool* pool_;
  Caller caller_;
  RecordFrame frame_;
  std::unique_ptr<IngestStream> stream_;
  std::string session_id_;
  std::atomic<bool> cancelled_{false};
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

Result<auth::Claims> CallAuthenticator::Authenticate(
    const grpc::ServerContextBase* ctx) const {
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
  return verifier_->Verify(value, clock_->WallMicros() / 1'000'000);
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
    Caller anon{claims.ok() ? claims->subject : "", auth::Role::kUser};
    ingest_->AuditRejected(anon, "", denied);
    // A reactor that refuses at once.
    class Refuse : public grpc::ServerReadReactor<RecordFrame> {
     public:
      explicit Refuse(const grpc::Status& s) { Finish(s); }
      void OnDone() override { delete this; }
    };
    return new Refuse(ToGrpc(denied));
  }
  return new RecordReactor(ctx, summary, ingest_, pool_,
                           Caller{claims->subject, claims->role});
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
  pool_->Submit([this, reactor, response, cid] {
    response->set_closed_files(
        static_cast<uint32_t>(ingest_->EndConnection(cid)));
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace mez::rpc
