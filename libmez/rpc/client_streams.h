// The client streams of the Recording service, opened by ClusterClient:
// node-sync's Record stream (recorder/sync_recorder.h) and the spool's
// Upload stream (recorder/uploader.h). Like gRPC's ClientWriter: one
// thread writes, WritesDone then Finish end the call; TryCancel may be
// called from any thread at any time.
#ifndef MEZ_RPC_CLIENT_STREAMS_H_
#define MEZ_RPC_CLIENT_STREAMS_H_

#include <chrono>
#include <memory>

#include "libmez/rpc/client.h"
#include "libmez/util/status.h"
#include "mezite/v1/recording.pb.h"

namespace mez::rpc {

// Recording.Record: a header frame, then chunk, resize and exit frames.
class RecordStream {
 public:
  struct Impl;
  explicit RecordStream(std::unique_ptr<Impl> impl);
  ~RecordStream();
  RecordStream(const RecordStream&) = delete;
  RecordStream& operator=(const RecordStream&) = delete;

  // Sends `frame`; false once the stream is broken (Finish says why).
  // `more_follow`: more frames come right after, so gRPC may hold this one
  // back to send them together.
  bool Write(const mezite::v1::RecordFrame& frame, bool more_follow = false);
  // After the header: waits up to `timeout` for mezrecd to accept the
  // recording (its initial metadata). False when it refused, the call
  // failed, or it did not answer in time (the call is then cancelled);
  // Finish says why.
  bool AwaitAccepted(std::chrono::microseconds timeout);
  // Half-closes the stream (no more frames).
  bool WritesDone();
  // Ends the call: the summary is filled when it is ok. Call once.
  Status Finish();
  // Cancels the call (a Write or Finish in progress returns). Any thread.
  void TryCancel();

 private:
  std::unique_ptr<Impl> impl_;
};

// Recording.Upload: a start frame, then the spool file's bytes.
class UploadStream {
 public:
  struct Impl;
  explicit UploadStream(std::unique_ptr<Impl> impl);
  ~UploadStream();
  UploadStream(const UploadStream&) = delete;
  UploadStream& operator=(const UploadStream&) = delete;

  // False once the stream is broken (Finish says why).
  bool Write(const mezite::v1::UploadFrame& frame);
  bool WritesDone();
  // Ends the call: the reply is filled when it is ok. kInvalidArgument
  // when mezrecd refused the file for good (malformed). Call once.
  Status Finish();
  // Cancels the call. Any thread.
  void TryCancel();

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mez::rpc

#endif  // MEZ_RPC_CLIENT_STREAMS_H_
