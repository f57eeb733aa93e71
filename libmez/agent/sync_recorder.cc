#include "libmez/agent/sync_recorder.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <thread>
#include <utility>

#include "libmez/util/log.h"

namespace mez::agent {

SyncRecorder::SyncRecorder(const SyncRecorderOptions& options,
                           std::string session_id, int64_t start_micros)
    : options_(options),
      session_id_(std::move(session_id)),
      start_micros_(start_micros) {
  if (options_.clock == nullptr) options_.clock = RealClock();
}

std::unique_ptr<SyncRecorder> SyncRecorder::Start(
    const SyncRecorderOptions& options, const ssh::ChannelInfo& info) {
  std::unique_ptr<SyncRecorder> r(
      new SyncRecorder(options, NewRandomId(), info.start_micros));
  r->ctx_.AddMetadata("authorization", "Bearer " + options.node_token);
  r->stub_ = mezite::v1::Recording::NewStub(options.channel);
  r->writer_ = r->stub_->Record(&r->ctx_, &r->summary_);
  r->Send(HeaderFrame(info, r->session_id_, options.node,
                      r->options_.clock->WallMicros()));
  if (!r->broken()) r->AwaitAccepted();
  return r;
}

void SyncRecorder::AwaitAccepted() {
  // mezrecd answers the header with initial metadata once it opened the
  // recording. A service that neither answers nor fails is given up on.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock,
                     std::chrono::microseconds(options_.accept_timeout_us),
                     [&] { return done; })) {
      ctx_.TryCancel();
    }
  });
  writer_->WaitForInitialMetadata();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  if (ctx_.GetServerInitialMetadata().count("mezite-accepted") > 0) return;
  // The call failed (refused header, unreachable, or timed out): say why.
  closed_ = true;
  grpc::Status s = writer_->Finish();
  MarkBroken(s.ok() ? std::string("the recording was not accepted")
                    : "recording service: " + s.error_message());
}

SyncRecorder::~SyncRecorder() { Close(); }

std::string SyncRecorder::broken_message() const {
  std::lock_guard<std::mutex> lock(mu_);
  return broken_message_;
}

void SyncRecorder::MarkBroken(const std::string& why) {
  if (broken_.exchange(true)) return;
  std::string message =
      "mezd: session recording failed (" + why + "); ending the session";
  {
    std::lock_guard<std::mutex> lock(mu_);
    broken_message_ = message;
  }
  MEZ_LOG(kWarning) << "agent: recording of session " << session_id_
                    << " broke: " << why;
  if (options_.on_broken) options_.on_broken(message);
}

void SyncRecorder::Send(const mezite::v1::RecordFrame& frame) {
  if (broken() || closed_ || !writer_) return;
  if (!writer_->Write(frame)) {
    // The stream is gone; Finish says why.
    closed_ = true;
    grpc::Status s = writer_->Finish();
    MarkBroken(s.ok() ? std::string("stream closed")
                      : "recording service: " + s.error_message());
  }
}

void SyncRecorder::Close() {
  if (closed_ || !writer_) return;
  closed_ = true;
  writer_->WritesDone();
  grpc::Status s = writer_->Finish();
  if (!s.ok()) MarkBroken("recording service: " + s.error_message());
}

void SyncRecorder::OnData(ssh::Direction direction, std::string_view bytes,
                          int64_t micros) {
  Send(ChunkFrame(direction, bytes, micros - start_micros_));
}

void SyncRecorder::OnResize(int width, int height, int64_t micros) {
  if (width <= 0 || height <= 0) return;  // No size to record.
  Send(ResizeFrame(width, height, micros - start_micros_));
}

void SyncRecorder::OnExit(int exit_status, int64_t micros) {
  Send(ExitFrame(exit_status, micros - start_micros_));
  Close();
}

std::string SyncRecorder::EndReason() {
  if (!broken() && !closed_ && writer_) {
    grpc_connectivity_state state = options_.channel->GetState(false);
    if (state == GRPC_CHANNEL_READY) {
      seen_ready_ = true;
    } else if (state == GRPC_CHANNEL_SHUTDOWN ||
               state == GRPC_CHANNEL_TRANSIENT_FAILURE || seen_ready_) {
      MarkBroken("lost the connection to the recording service");
    }
  }
  return broken() ? broken_message() : std::string();
}

namespace {

// Keeps a connectivity watch on the channel so that gRPC polls its
// transport: without an operation in flight, a dead connection is
// otherwise noticed only by gRPC's backup poller (every 5 s).
class ChannelWatcher {
 public:
  explicit ChannelWatcher(std::shared_ptr<grpc::Channel> channel)
      : channel_(std::move(channel)), thread_([this] { Loop(); }) {}
  ~ChannelWatcher() {
    stop_ = true;
    thread_.join();
  }

 private:
  void Loop() {
    while (!stop_) {
      grpc_connectivity_state state = channel_->GetState(false);
      channel_->WaitForStateChange(state, std::chrono::system_clock::now() +
                                              std::chrono::milliseconds(100));
    }
  }
  std::shared_ptr<grpc::Channel> channel_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

ssh::TapFactory MakeSyncTapFactory(SyncRecorderOptions options) {
  auto watcher = std::make_shared<ChannelWatcher>(options.channel);
  return [options = std::move(options), watcher](
             const ssh::ChannelInfo& info) -> std::unique_ptr<ssh::ChannelTap> {
    return SyncRecorder::Start(options, info);
  };
}

std::shared_ptr<void> WatchChannel(std::shared_ptr<grpc::Channel> channel) {
  return std::make_shared<ChannelWatcher>(std::move(channel));
}

}  // namespace mez::agent
