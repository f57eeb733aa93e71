// The gRPC Recording service on the callback API. Each Record stream is a
// ServerReadReactor that has at most one frame in flight: a frame is read,
// handed to a worker thread that writes it, and only then is the next read
// started. A slow disk therefore stops the reads, and HTTP/2 flow control
// slows the sender; memory per stream stays at one frame.
#ifndef MEZ_RPC_RECORDING_SERVICE_H_
#define MEZ_RPC_RECORDING_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <functional>

#include "libmez/auth/token.h"
#include "libmez/ingest/ingest.h"
#include "libmez/ingest/upload.h"
#include "libmez/util/thread_pool.h"
#include "mezite/v1/recording.grpc.pb.h"

namespace mez::rpc {

// Verifies "authorization: Bearer <token>" metadata. Thread-safe.
class CallAuthenticator {
 public:
  CallAuthenticator(const auth::TokenVerifier* verifier, Clock* clock)
      : verifier_(verifier), clock_(clock) {}
  // kUnauthenticated when missing or invalid.
  Result<auth::Claims> Authenticate(const grpc::ServerContextBase* ctx) const;
  // JoinTokenHash of the call's token when `claims` are those of a node
  // token from before join tokens (auth::IsLegacyJoinToken), else empty.
  static std::string LegacyJoinHash(const grpc::ServerContextBase* ctx,
                                    const auth::Claims& claims);
  // The token of the call's "authorization: Bearer" metadata, unverified.
  static Result<std::string_view> BearerToken(
      const grpc::ServerContextBase* ctx);

 private:
  const auth::TokenVerifier* verifier_;
  Clock* clock_;
};

// Maps a mez::Status to a grpc::Status with the same message.
grpc::Status ToGrpc(const Status& s);

// Checks that a verified caller still exists (a removed node loses access
// at once). Runs on the pool; may block briefly.
using CallerCheck = std::function<Status(const ingest::Caller&)>;

class RecordingService final : public mezite::v1::Recording::CallbackService {
 public:
  // `uploads` and `check` may be null (no node-mode uploads; no check).
  RecordingService(ingest::IngestManager* ingest, const CallAuthenticator* auth,
                   ThreadPool* pool, ingest::UploadManager* uploads = nullptr,
                   CallerCheck check = nullptr)
      : ingest_(ingest),
        auth_(auth),
        pool_(pool),
        uploads_(uploads),
        check_(std::move(check)) {}

  grpc::ServerReadReactor<mezite::v1::RecordFrame>* Record(
      grpc::CallbackServerContext* ctx,
      mezite::v1::RecordSummary* summary) override;
  grpc::ServerUnaryReactor* EndRecordingSession(
      grpc::CallbackServerContext* ctx,
      const mezite::v1::EndRecordingSessionRequest* request,
      mezite::v1::EndRecordingSessionResponse* response) override;
  grpc::ServerReadReactor<mezite::v1::UploadFrame>* Upload(
      grpc::CallbackServerContext* ctx,
      mezite::v1::UploadStatus* response) override;
  grpc::ServerUnaryReactor* GetUploadStatus(
      grpc::CallbackServerContext* ctx,
      const mezite::v1::UploadStatusRequest* request,
      mezite::v1::UploadStatus* response) override;

 private:
  Result<ingest::Caller> Authenticate(grpc::CallbackServerContext* ctx) const;

  ingest::IngestManager* ingest_;
  const CallAuthenticator* auth_;
  ThreadPool* pool_;
  ingest::UploadManager* uploads_;
  CallerCheck check_;
};

}  // namespace mez::rpc

#endif  // MEZ_RPC_RECORDING_SERVICE_H_
