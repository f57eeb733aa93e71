// node-sync recording (DESIGN.md "modes"): each SSH session channel is
// streamed live to mezrecd as one Recording.Record call. The header carries
// the user's JWT from the SSH certificate (auth::kMeziteTokenExtension);
// chunk, resize and exit frames follow as they happen.
//
// When the stream breaks (a Write fails, or Finish reports an error), the
// recorder marks itself broken, stops writing, and calls on_broken once
// with a one-line message for the user's terminal; the SSH server polls
// EndReason() and ends the session with that message.
#ifndef MEZ_AGENT_SYNC_RECORDER_H_
#define MEZ_AGENT_SYNC_RECORDER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "libmez/agent/frames.h"
#include "libmez/ssh/channel_tap.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/util/clock.h"
#include "mezite/v1/recording.grpc.pb.h"

namespace mez::agent {

struct SyncRecorderOptions {
  // The channel to mezrecd (TLS with the cluster's CA in production).
  std::shared_ptr<grpc::Channel> channel;
  std::string node_token;  // sent as "authorization: Bearer ..."
  std::string node;        // this node's name, for the header
  Clock* clock = nullptr;  // nullptr: RealClock()
  // How long Start waits for mezrecd to accept the header.
  int64_t accept_timeout_us = 5'000'000;
  // Called at most once per recorder, from the connection's thread, when
  // its stream breaks. `message` is one line without a newline.
  std::function<void(const std::string& message)> on_broken;
};

class SyncRecorder : public ssh::ChannelTap {
 public:
  // Opens the Record stream, sends the header and waits until mezrecd
  // accepted it. Never null; when the stream cannot be opened or the
  // header is refused, the recorder starts out broken (EndReason says
  // why), so the session can end before the user's program runs.
  static std::unique_ptr<SyncRecorder> Start(const SyncRecorderOptions& options,
                                             const ssh::ChannelInfo& info);
  // Half-closes and finishes the stream if OnExit did not.
  ~SyncRecorder() override;
  SyncRecorder(const SyncRecorder&) = delete;
  SyncRecorder& operator=(const SyncRecorder&) = delete;

  void OnData(ssh::Direction direction, std::string_view bytes,
              int64_t micros) override;
  void OnResize(int width, int height, int64_t micros) override;
  void OnExit(int exit_status, int64_t micros) override;
  // The broken message once broken. Also notices a recording service that
  // went away while the session is idle (the channel left READY).
  std::string EndReason() override;

  const std::string& session_id() const { return session_id_; }
  // True once the stream broke; the session must then end. Thread-safe.
  bool broken() const { return broken_.load(); }
  // The one-line message for the user's terminal (empty until broken).
  std::string broken_message() const;
  // The server's summary, once finished without error.
  const mezite::v1::RecordSummary& summary() const { return summary_; }

 private:
  SyncRecorder(const SyncRecorderOptions& options, std::string session_id,
               int64_t start_micros);
  void Send(const mezite::v1::RecordFrame& frame);
  void AwaitAccepted();
  void Close();
  void MarkBroken(const std::string& why);

  SyncRecorderOptions options_;
  std::string session_id_;
  int64_t start_micros_;
  grpc::ClientContext ctx_;
  mezite::v1::RecordSummary summary_;
  std::unique_ptr<mezite::v1::Recording::Stub> stub_;
  std::unique_ptr<grpc::ClientWriter<mezite::v1::RecordFrame>> writer_;
  bool closed_ = false;
  bool seen_ready_ = false;
  std::atomic<bool> broken_{false};
  mutable std::mutex mu_;
  std::string broken_message_;  // guarded by mu_
};

// The server's tap factory: a SyncRecorder per channel (shell, exec,
// direct-tcpip), all of a connection under its ChannelInfo::connection_id.
ssh::TapFactory MakeSyncTapFactory(SyncRecorderOptions options);

// Keeps gRPC polling `channel`'s transport while the result lives, so that
// a recording service that went away is noticed within about 100 ms
// instead of gRPC's 5 s backup poll. Start SyncRecorders only while one
// is alive.
std::shared_ptr<void> WatchChannel(std::shared_ptr<grpc::Channel> channel);

}  // namespace mez::agent

#endif  // MEZ_AGENT_SYNC_RECORDER_H_
