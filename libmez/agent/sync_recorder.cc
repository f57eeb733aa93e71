#include "libmez/agent/sync_recorder.h"

#include <openssl/rand.h>

#include <chrono>
#include <map>
#include <thread>
#include <utility>

#include "libmez/auth/ssh_cert.h"
#include "libmez/util/encoding.h"
#include "libmez/util/log.h"

namespace mez::agent {
namespace {

mezite::v1::Direction ToProto(ssh::Direction d) {
  switch (d) {
    case ssh::Direction::kIn:
      return mezite::v1::DIRECTION_IN;
    case ssh::Direction::kOut:
      return mezite::v1::DIRECTION_OUT;
    case ssh::Direction::kErr:
      return mezite::v1::DIRECTION_ERR;
  }
  return mezite::v1::DIRECTION_UNSPECIFIED;
}

}  // namespace

std::string NewRandomId() {
  unsigned char buf[16];
  if (RAND_bytes(buf, sizeof(buf)) != 1) {
    MEZ_LOG(kError) << "agent: RAND_bytes failed";
    std::abort();
  }
  return HexEncode(std::string_view(reinterpret_cast<char*>(buf), sizeof(buf)));
}

SyncRecorder::SyncRecorder(const SyncRecorderOptions& options,
                           std::string session_id, int64_t start_micros)
    : options_(options),
      session_id_(std::move(session_id)),
      start_micros_(start_micros) {
  if (options_.clock == nullptr) options_.clock = RealClock();
}

std::unique_ptr<SyncRecorder> SyncRecorder::Start(
    const SyncRecorderOptions& options, const ssh::ChannelInfo& info,
    const std::string& connection_id) {
  std::unique_ptr<SyncRecorder> r(
      new SyncRecorder(options, NewRandomId(), info.start_micros));
  r->ctx_.AddMetadata("authorization", "Bearer " + options.node_token);
  r->stub_ = mezite::v1::Recording::NewStub(options.channel);
  r->writer_ = r->stub_->Record(&r->ctx_, &r->summary_);
  mezite::v1::RecordFrame frame;
  auto* h = frame.mutable_header();
  h->set_session_id(r->session_id_);
  h->set_connection_id(connection_id);
  auto token =
      info.cert_extensions.find(std::string(auth::kMeziteTokenExtension));
  if (token != info.cert_extensions.end()) h->set_user_token(token->second);
  h->set_started_at_us(r->options_.clock->WallMicros());
  h->set_node(options.node);
  h->set_login(info.login);
  // A pty requested without a size (ssh -tt from a pipe) is 0x0; mezrecd
  // wants a real size for shells, so use the VT100 default.
  int width = info.pty && info.width > 0 ? info.width : 80;
  int height = info.pty && info.height > 0 ? info.height : 24;
  if (info.kind == ssh::ChannelKind::kShell) {
    h->set_kind(mezite::v1::SESSION_KIND_SHELL);
  } else {
    h->set_kind(mezite::v1::SESSION_KIND_EXEC);
    h->set_command(info.command);
  }
  if (info.kind == ssh::ChannelKind::kShell || info.pty) {
    h->set_width(static_cast<uint32_t>(width));
    h->set_height(static_cast<uint32_t>(height));
    h->set_term(info.term);
  }
  r->Send(frame);
  return r;
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
  mezite::v1::RecordFrame frame;
  auto* c = frame.mutable_chunk();
  c->set_offset_us(micros - start_micros_);
  c->set_direction(ToProto(direction));
  c->set_data(std::string(bytes));
  Send(frame);
}

void SyncRecorder::OnResize(int width, int height, int64_t micros) {
  if (width <= 0 || height <= 0) return;  // No size to record.
  mezite::v1::RecordFrame frame;
  auto* r = frame.mutable_resize();
  r->set_offset_us(micros - start_micros_);
  r->set_width(static_cast<uint32_t>(width));
  r->set_height(static_cast<uint32_t>(height));
  Send(frame);
}

void SyncRecorder::OnExit(int exit_status, int64_t micros) {
  mezite::v1::RecordFrame frame;
  auto* e = frame.mutable_exit();
  e->set_offset_us(micros - start_micros_);
  e->set_exit_status(exit_status);
  Send(frame);
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
  struct State {
    explicit State(std::shared_ptr<grpc::Channel> channel)
        : watcher(std::move(channel)) {}
    ChannelWatcher watcher;
    std::mutex mu;
    std::map<std::string, std::string> connection_ids;  // remote -> id
  };
  auto state = std::make_shared<State>(options.channel);
  return [options = std::move(options), state](
             const ssh::ChannelInfo& info) -> std::unique_ptr<ssh::ChannelTap> {
    std::string connection_id;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      // Bounded: a table of recent connections only.
      if (state->connection_ids.size() > 4096) state->connection_ids.clear();
      auto [it, inserted] =
          state->connection_ids.try_emplace(info.remote, NewRandomId());
      connection_id = it->second;
    }
    return SyncRecorder::Start(options, info, connection_id);
  };
}

}  // namespace mez::agent
