#include "libmez/recorder/recorders.h"

#include <stdlib.h>

#include <condition_variable>
#include <deque>
#include <nlohmann/json.hpp>
#include <thread>

#include "libmez/recorder/spool_recorder.h"
#include "libmez/recorder/sync_recorder.h"
#include "libmez/recorder/uploader.h"
#include "libmez/rpc/client.h"
#include "libmez/util/log.h"

namespace mez::recorder {
namespace {

namespace pb = mezite::v1;

constexpr size_t kMaxQueuedAudit = 10'000;
// How long a new session waits for a channel to mezrecd that is not
// connected before it is recorded in node mode.
constexpr auto kConnectWait = std::chrono::seconds(2);

// Audit events the node reports (off mode, refusals, a full spool), sent
// in order by one thread; kept and retried while mezrecd is unreachable.
class AuditQueue {
 public:
  explicit AuditQueue(const rpc::ClusterClient* client)
      : client_(client), thread_([this] { Loop(); }) {}
  ~AuditQueue() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    thread_.join();
    if (!queue_.empty()) {
      MEZ_LOG(kWarning) << "agent: " << queue_.size()
                        << " audit event(s) not delivered before exit";
    }
  }
  void Push(pb::NodeAuditRequest event) {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= kMaxQueuedAudit) {
      MEZ_LOG(kError) << "agent: audit queue full; dropping " << event.type();
      return;
    }
    queue_.push_back(std::move(event));
    cv_.notify_all();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    int64_t backoff_ms = 0;
    while (true) {
      if (backoff_ms > 0) {
        // After a failed send: wait out the backoff, then retry.
        cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms),
                     [this] { return stop_; });
      } else {
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      }
      if (stop_) return;
      if (queue_.empty()) continue;
      pb::NodeAuditRequest event = queue_.front();
      lock.unlock();
      pb::NodeAuditResponse resp;
      Status s = client_->NodeAudit(event, &resp, std::chrono::seconds(5));
      lock.lock();
      // Unreachable or too slow (rpc::FromGrpc): kept and retried.
      bool retry = s.code() == Code::kUnavailable;
      if (!s.ok() && !retry) {
        MEZ_LOG(kError) << "agent: mezrecd refused audit event " << event.type()
                        << ": " << s.message();
      }
      if (retry) {
        backoff_ms =
            std::min<int64_t>(backoff_ms == 0 ? 500 : backoff_ms * 2, 30'000);
      } else {
        queue_.pop_front();
        backoff_ms = 0;
      }
    }
  }

  const rpc::ClusterClient* client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<pb::NodeAuditRequest> queue_;
  bool stop_ = false;
  std::thread thread_;
};

nlohmann::json SessionDetails(const ssh::ChannelInfo& info) {
  nlohmann::json d = {{"kind", std::string(ChannelKindName(info.kind))},
                      {"login", info.login},
                      {"remote", info.remote},
                      {"recording", "off"}};
  if (!info.command.empty()) d["command"] = info.command;
  if (info.kind == ChannelKind::kTcpip) {
    d["dst"] = info.dst_host + ":" + std::to_string(info.dst_port);
  }
  return d;
}

// off mode: nothing recorded; the session's start and end are audited.
class OffTap : public ssh::ChannelTap {
 public:
  // `node`: what the event is about; mezrecd honours it from a proxy only
  // (a node's events are always its own).
  OffTap(AuditQueue* audit, const ssh::ChannelInfo& info, std::string node)
      : audit_(audit),
        info_(info),
        node_(std::move(node)),
        session_id_(NewRandomId()) {
    Report("session.start", SessionDetails(info_));
  }
  ~OffTap() override {
    if (!ended_) Report("session.end", SessionDetails(info_));
  }
  void OnData(Direction, std::string_view, int64_t) override {}
  void OnResize(int, int, int64_t) override {}
  void OnExit(int exit_status, int64_t) override {
    ended_ = true;
    nlohmann::json d = SessionDetails(info_);
    d["exit_status"] = exit_status;
    Report("session.end", d);
  }

 private:
  void Report(const std::string& type, const nlohmann::json& details) {
    pb::NodeAuditRequest e;
    e.set_type(type);
    e.set_user_token(UserToken(info_));
    e.set_user(info_.key_id);
    e.set_session_id(session_id_);
    e.set_node(node_);
    e.set_details(details.dump());
    audit_->Push(std::move(e));
  }
  AuditQueue* audit_;
  ssh::ChannelInfo info_;
  std::string node_;
  std::string session_id_;
  bool ended_ = false;
};

// Audits a spool that cannot take a session's recording (node mode's
// spool, node-sync's local copy) as recording.spool_full.
std::function<void(const ssh::ChannelInfo&, const std::string&)> SpoolFullAudit(
    AuditQueue* audit) {
  return [audit](const ssh::ChannelInfo& c, const std::string& why) {
    pb::NodeAuditRequest e;
    e.set_type("recording.spool_full");
    e.set_user_token(UserToken(c));
    e.set_user(c.key_id);
    e.set_details(
        nlohmann::json(
            {{"reason", why}, {"login", c.login}, {"remote", c.remote}})
            .dump());
    audit->Push(std::move(e));
  };
}

// A duration in milliseconds from the environment, in microseconds; 0
// when unset or not a positive number.
int64_t EnvMillis(const char* name) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  long long ms = strtoll(v, &end, 10);
  if (*end != '\0' || ms <= 0 || ms > 86'400'000) {
    MEZ_LOG(kWarning) << name << "=" << v
                      << " is not a number of milliseconds in 1..86400000; "
                         "ignored";
    return 0;
  }
  return ms * 1000;
}

}  // namespace

class Recorders::Impl {
 public:
  explicit Impl(RecordersOptions o)
      : opt_(std::move(o)), budget_(opt_.spool_budget) {}

  RecordersOptions opt_;
  SpoolBudget budget_;
  std::unique_ptr<rpc::ClusterClient> client_;
  std::unique_ptr<AuditQueue> audit_;
  std::unique_ptr<Uploader> uploader_;
  std::mutex mu_;
  std::string setting_;  // guarded by mu_; last cluster setting seen
  std::set<std::string> sync_tcpip_connections_;  // guarded by mu_
  // The refresh thread (setting_refresh_us > 0).
  std::condition_variable refresh_cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread refresher_;

  // Asks mezrecd for session_recording (at most 5 s) and notes the answer.
  void RefreshOnce(Recorders* self);
  // RefreshOnce every setting_refresh_us, off the connection threads.
  void RefreshLoop(Recorders* self);
  // The kept setting as a mode; node when none was learnt or it is not
  // one this recorder knows.
  RecordingMode KeptMode();
};

void Recorders::Impl::RefreshOnce(Recorders* self) {
  pb::GetConfigRequest req;
  req.set_key("session_recording");
  pb::ConfigValue value;
  Status g = client_->GetConfig(req, &value, std::chrono::seconds(5));
  if (g.ok()) {
    self->NoteSetting(value.value());
  } else {
    MEZ_LOG(kDebug) << "recording: cannot ask mezrecd for session_recording ("
                    << g.message() << "); keeping the last answer";
  }
}

void Recorders::Impl::RefreshLoop(Recorders* self) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    refresh_cv_.wait_for(lock,
                         std::chrono::microseconds(opt_.setting_refresh_us),
                         [this] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    RefreshOnce(self);
    lock.lock();
  }
}

RecordingMode Recorders::Impl::KeptMode() {
  std::string setting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    setting = setting_;
  }
  if (setting.empty()) return RecordingMode::kNode;
  auto mode = ParseRecordingMode(setting);
  return mode.ok() ? *mode : RecordingMode::kNode;
}

Result<std::unique_ptr<Recorders>> Recorders::Start(RecordersOptions options) {
  if (options.clock == nullptr) options.clock = RealClock();
  if (options.sync_accept_timeout_us == 0) {
    options.sync_accept_timeout_us = EnvMillis("MEZITE_SYNC_ACCEPT_TIMEOUT_MS");
  }
  if (options.sync_stall_timeout_us == 0) {
    options.sync_stall_timeout_us = EnvMillis("MEZITE_SYNC_STALL_TIMEOUT_MS");
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  Impl* i = impl.get();
  i->client_ =
      std::make_unique<rpc::ClusterClient>(i->opt_.channel, i->opt_.token);
  i->audit_ = std::make_unique<AuditQueue>(i->client_.get());
  UploaderOptions up;
  up.channel = i->opt_.channel;
  up.node_token = i->opt_.token;
  up.spool_dir = i->opt_.spool_dir;
  up.budget = &i->budget_;
  up.retry_min_us = i->opt_.upload_retry_min_us;
  up.retry_max_us = i->opt_.upload_retry_max_us;
  up.rate_limit = i->opt_.upload_rate_limit;
  up.clock = i->opt_.clock;
  AuditQueue* audit = i->audit_.get();
  up.on_rejected = [audit](const std::string& id, const std::string& why) {
    pb::NodeAuditRequest e;
    e.set_type("recording.upload_rejected");
    e.set_session_id(id);
    e.set_details(nlohmann::json({{"reason", why}}).dump());
    audit->Push(std::move(e));
  };
  MEZ_ASSIGN_OR_RETURN(i->uploader_, Uploader::Start(std::move(up)));
  std::unique_ptr<Recorders> recorders(new Recorders(std::move(impl)));
  if (i->opt_.setting_refresh_us > 0) {
    // The first answer before any session starts (start-up may wait).
    Recorders* self = recorders.get();
    i->RefreshOnce(self);
    i->refresher_ = std::thread([i, self] { i->RefreshLoop(self); });
  }
  return recorders;
}

Recorders::Recorders(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Recorders::~Recorders() { Stop(); }

void Recorders::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    impl_->stopping_ = true;
    impl_->refresh_cv_.notify_all();
  }
  if (impl_->refresher_.joinable()) impl_->refresher_.join();
  if (impl_->uploader_) impl_->uploader_->Stop();
  impl_->uploader_.reset();
  impl_->audit_.reset();
}

void Recorders::NoteSetting(const std::string& value) {
  if (value.empty()) return;
  std::lock_guard<std::mutex> lock(impl_->mu_);
  if (value == impl_->setting_) return;
  if (!ParseRecordingMode(value).ok()) {
    MEZ_LOG(kWarning) << "recording: session_recording '" << value
                      << "' is not a mode this node knows; recording new "
                         "sessions in node mode";
  } else {
    MEZ_LOG(kInfo) << "recording: session_recording is " << value
                   << " for new sessions";
  }
  impl_->setting_ = value;
}

RecordingMode Recorders::LastKnownMode() {
  if (impl_->opt_.mode_override) return *impl_->opt_.mode_override;
  return impl_->KeptMode();
}

void Recorders::Audit(pb::NodeAuditRequest event) {
  if (impl_->audit_) impl_->audit_->Push(std::move(event));
}

RecordingMode Recorders::ModeForNewSession() {
  const RecordersOptions& opt = impl_->opt_;
  if (opt.mode_override) return *opt.mode_override;
  if (opt.setting_source) {
    Result<std::string> value = opt.setting_source();
    if (value.ok()) {
      NoteSetting(*value);
    } else {
      MEZ_LOG(kWarning) << "recording: cannot read session_recording ("
                        << value.status().message()
                        << "); using the value last read";
    }
  }
  // Only with mezrecd connected: node otherwise, which loses nothing,
  // whatever the setting. A channel that is idle (no call for a while, or
  // its connection dropped) gets the time GetConfig used to have to
  // connect; one in transient failure none.
  if (rpc::WaitUntilReady(*opt.channel, kConnectWait) !=
      rpc::ChannelState::kReady) {
    MEZ_LOG(kWarning) << "recording: mezrecd is unreachable; recording this "
                         "session in node mode";
    return RecordingMode::kNode;
  }
  return impl_->KeptMode();
}

std::unique_ptr<ssh::ChannelTap> Recorders::NewTap(const ssh::ChannelInfo& info,
                                                   const std::string& node) {
  Impl* i = impl_.get();
  RecordingMode mode = ModeForNewSession();
  MEZ_LOG(kInfo) << "recording: " << ChannelKindName(info.kind) << " on "
                 << (node.empty() ? "?" : node) << " for " << info.key_id
                 << " as " << info.login << " from " << info.remote
                 << ", recording " << RecordingModeName(mode);
  switch (mode) {
    case RecordingMode::kNodeSync: {
      if (info.kind == ChannelKind::kTcpip) {
        std::lock_guard<std::mutex> lock(i->mu_);
        i->sync_tcpip_connections_.insert(info.connection_id);
      }
      SyncRecorderOptions so;
      so.channel = i->opt_.channel;
      so.node_token = i->opt_.token;
      so.node = node;
      so.clock = i->opt_.clock;
      if (i->opt_.sync_accept_timeout_us > 0) {
        so.accept_timeout_us = i->opt_.sync_accept_timeout_us;
      }
      if (i->opt_.sync_stall_timeout_us > 0) {
        so.stall_timeout_us = i->opt_.sync_stall_timeout_us;
      }
      // The local copy that completes a broken stream (sync_recorder.h).
      so.spool_dir = i->opt_.spool_dir;
      so.budget = &i->budget_;
      so.on_copy_failed = SpoolFullAudit(i->audit_.get());
      Uploader* uploader = i->uploader_.get();
      so.on_copy_kept = [uploader](const std::string&) { uploader->Notify(); };
      so.enhanced = i->opt_.enhanced;
      so.events = i->opt_.events;
      return SyncRecorder::Start(so, info);
    }
    case RecordingMode::kNode: {
      SpoolRecorderOptions so;
      so.spool_dir = i->opt_.spool_dir;
      so.node = node;
      so.budget = &i->budget_;
      so.clock = i->opt_.clock;
      so.on_full = SpoolFullAudit(i->audit_.get());
      Uploader* uploader = i->uploader_.get();
      so.on_closed = [uploader](const std::string&) { uploader->Notify(); };
      so.enhanced = i->opt_.enhanced;
      so.events = i->opt_.events;
      return SpoolRecorder::Start(so, info);
    }
    case RecordingMode::kOff:
      return std::make_unique<OffTap>(i->audit_.get(), info, node);
  }
  return nullptr;
}

void Recorders::ConnectionEnded(const std::string& connection_id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    if (impl_->sync_tcpip_connections_.erase(connection_id) == 0) return;
  }
  pb::EndRecordingSessionRequest req;
  req.set_connection_id(connection_id);
  pb::EndRecordingSessionResponse resp;
  Status g =
      impl_->client_->EndRecordingSession(req, &resp, std::chrono::seconds(5));
  if (!g.ok()) {
    MEZ_LOG(kWarning) << "recording: EndRecordingSession " << connection_id
                      << ": " << g.message()
                      << " (mezrecd closes it after its idle timeout)";
  }
}

}  // namespace mez::recorder
