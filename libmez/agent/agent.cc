#include "libmez/agent/agent.h"

#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "libmez/agent/spool_recorder.h"
#include "libmez/agent/sync_recorder.h"
#include "libmez/agent/uploader.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"
#include "libmez/util/log.h"
#include "mezite/v1/cluster.grpc.pb.h"

namespace mez::agent {
namespace {

namespace pb = mezite::v1;

constexpr size_t kMaxQueuedAudit = 10'000;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("create " + path, errno);
  }
  return Status::Ok();
}

// Audit events the node reports (off mode, refusals, a full spool), sent
// in order by one thread; kept and retried while mezrecd is unreachable.
class AuditQueue {
 public:
  AuditQueue(std::shared_ptr<grpc::Channel> channel, std::string token)
      : stub_(pb::Cluster::NewStub(std::move(channel))),
        token_(std::move(token)),
        thread_([this] { Loop(); }) {}
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
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", "Bearer " + token_);
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
      pb::NodeAuditResponse resp;
      grpc::Status s = stub_->NodeAudit(&ctx, event, &resp);
      lock.lock();
      bool retry =
          !s.ok() && (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
      if (!s.ok() && !retry) {
        MEZ_LOG(kError) << "agent: mezrecd refused audit event " << event.type()
                        << ": " << s.error_message();
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

  std::unique_ptr<pb::Cluster::Stub> stub_;
  std::string token_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<pb::NodeAuditRequest> queue_;
  bool stop_ = false;
  std::thread thread_;
};

nlohmann::json SessionDetails(const ssh::ChannelInfo& info) {
  nlohmann::json d = {{"kind", std::string(ssh::ChannelKindName(info.kind))},
                      {"login", info.login},
                      {"remote", info.remote},
                      {"recording", "off"}};
  if (!info.command.empty()) d["command"] = info.command;
  if (info.kind == ssh::ChannelKind::kTcpip) {
    d["dst"] = info.dst_host + ":" + std::to_string(info.dst_port);
  }
  return d;
}

// off mode: nothing recorded; the session's start and end are audited.
class OffTap : public ssh::ChannelTap {
 public:
  OffTap(AuditQueue* audit, const ssh::ChannelInfo& info)
      : audit_(audit), info_(info), session_id_(NewRandomId()) {
    Report("session.start", SessionDetails(info_));
  }
  ~OffTap() override {
    if (!ended_) Report("session.end", SessionDetails(info_));
  }
  void OnData(ssh::Direction, std::string_view, int64_t) override {}
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
    e.set_details(details.dump());
    audit_->Push(std::move(e));
  }
  AuditQueue* audit_;
  ssh::ChannelInfo info_;
  std::string session_id_;
  bool ended_ = false;
};

}  // namespace

Status SplitHostPort(const std::string& addr, std::string* host,
                     uint16_t* port) {
  size_t colon = addr.rfind(':');
  auto bad = [&] {
    return InvalidArgument(
        "address must be HOST:PORT (IPv6 as [::1]:PORT), "
        "not \"" +
        addr + "\"");
  };
  if (colon == std::string::npos || colon == 0) return bad();
  *host = addr.substr(0, colon);
  if (host->front() == '[') {
    if (host->size() < 3 || host->back() != ']') return bad();
    *host = host->substr(1, host->size() - 2);
  } else if (host->find(':') != std::string::npos) {
    return bad();
  }
  std::string p = addr.substr(colon + 1);
  if (p.empty() || p.size() > 5 ||
      p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535) {
    return bad();
  }
  *port = static_cast<uint16_t>(std::stoi(p));
  return Status::Ok();
}

class Agent::Impl {
 public:
  explicit Impl(AgentOptions o)
      : opt_(std::move(o)), budget_(opt_.spool_budget) {}
  ~Impl() { Stop(); }

  Status Init();
  void Stop();
  RecordingMode ModeForNewSession();
  std::unique_ptr<ssh::ChannelTap> NewTap(const ssh::ChannelInfo& info);
  void ConnectionEnded(const std::string& connection_id);
  // JoinNode; on success updates the cached setting and CA file.
  Status Join(const std::string& addr, pb::JoinNodeResponse* resp);
  void Heartbeat();
  std::string EffectiveModeName();

  AgentOptions opt_;
  SpoolBudget budget_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Cluster::Stub> cluster_;
  std::shared_ptr<void> watcher_;
  std::unique_ptr<AuditQueue> audit_;
  std::unique_ptr<Uploader> uploader_;
  std::unique_ptr<ssh::SshServer> server_;
  std::string node_name_;
  std::string host_key_line_;
  std::string advertise_;
  std::string spool_dir_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::string setting_;  // guarded by mu_; last cluster setting seen
  std::set<std::string> sync_tcpip_connections_;  // guarded by mu_
  std::thread heartbeat_;
};

Status Agent::Impl::Join(const std::string& addr, pb::JoinNodeResponse* resp) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + opt_.node_token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  pb::JoinNodeRequest req;
  req.set_addr(addr);
  req.set_recording_mode(EffectiveModeName());
  req.set_host_key(host_key_line_);
  grpc::Status g = cluster_->JoinNode(&ctx, req, resp);
  if (!g.ok()) {
    Code c = Code::kUnavailable;
    if (g.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        g.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      c = Code::kUnauthenticated;
    } else if (g.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      c = Code::kFailedPrecondition;
    }
    return Status(c, g.error_message());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    setting_ = resp->session_recording();
  }
  AtomicWriteFile(opt_.data_dir + "/user_ca.pub", resp->user_ca_public() + "\n",
                  0644)
      .ok();
  if (!resp->host_certificate_line().empty()) {
    AtomicWriteFile(opt_.data_dir + "/host_key-cert.pub",
                    resp->host_certificate_line() + "\n", 0644)
        .ok();
  }
  return Status::Ok();
}

std::string Agent::Impl::EffectiveModeName() {
  if (opt_.mode_override)
    return std::string(RecordingModeName(*opt_.mode_override));
  std::lock_guard<std::mutex> lock(mu_);
  auto m = ParseRecordingMode(setting_);
  return std::string(RecordingModeName(m.ok() ? *m : RecordingMode::kNode));
}

Status Agent::Impl::Init() {
  if (opt_.clock == nullptr) opt_.clock = RealClock();
  if (opt_.node_token.empty()) {
    return InvalidArgument(
        "no node token: give --token (from mezctl nodes add NAME)");
  }
  std::string listen_host;
  uint16_t listen_port = 0;
  MEZ_RETURN_IF_ERROR(SplitHostPort(opt_.listen, &listen_host, &listen_port));
  MEZ_RETURN_IF_ERROR(MakeDir(opt_.data_dir));
  spool_dir_ = opt_.data_dir + "/spool";
  MEZ_RETURN_IF_ERROR(MakeDir(spool_dir_));

  // The SSH host key, made on first start.
  std::string key_path = opt_.data_dir + "/host_key";
  std::string host_key;
  if (Exists(key_path)) {
    MEZ_ASSIGN_OR_RETURN(host_key, ReadFile(key_path));
  } else {
    MEZ_ASSIGN_OR_RETURN(auto generated, auth::GenerateSshUserKey());
    host_key = generated.first;
    MEZ_RETURN_IF_ERROR(AtomicWriteFile(key_path, host_key, 0600));
  }

  channel_ = grpc::CreateChannel(opt_.auth_addr, opt_.credentials);
  cluster_ = pb::Cluster::NewStub(channel_);
  watcher_ = WatchChannel(channel_);
  audit_ = std::make_unique<AuditQueue>(channel_, opt_.node_token);

  // The user CA: given, learnt now, or cached from the last join.
  pb::JoinNodeResponse joined;
  Status join = Join("", &joined);
  if (join.code() == Code::kUnauthenticated) {
    return Status(Code::kUnauthenticated,
                  "mezrecd at " + opt_.auth_addr +
                      " refused this node's token (" + join.message() +
                      "); issue a new one with: mezctl nodes add NAME");
  }
  std::string ca_line = opt_.user_ca_line;
  if (join.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    node_name_ = joined.name();
    if (ca_line.empty()) ca_line = joined.user_ca_public();
  } else {
    MEZ_LOG(kWarning) << "agent: cannot reach mezrecd at " << opt_.auth_addr
                      << " (" << join.message()
                      << "); starting from the cached user CA, recording in "
                         "node mode until it answers";
    if (ca_line.empty()) {
      auto cached = ReadFile(opt_.data_dir + "/user_ca.pub");
      if (!cached.ok()) {
        return Status(Code::kUnavailable,
                      "cannot reach mezrecd at " + opt_.auth_addr + " (" +
                          join.message() + ") and no user CA is cached in " +
                          opt_.data_dir +
                          " yet; start mezd once while mezrecd is up, or give "
                          "--user-ca-file");
      }
      ca_line = *cached;
    }
  }
  MEZ_ASSIGN_OR_RETURN(std::string ca_blob,
                       auth::Ed25519BlobFromPublicLine(ca_line));

  UploaderOptions up;
  up.channel = channel_;
  up.node_token = opt_.node_token;
  up.spool_dir = spool_dir_;
  up.budget = &budget_;
  up.retry_min_us = opt_.upload_retry_min_us;
  up.retry_max_us = opt_.upload_retry_max_us;
  up.rate_limit = opt_.upload_rate_limit;
  up.clock = opt_.clock;
  up.on_rejected = [this](const std::string& id, const std::string& why) {
    pb::NodeAuditRequest e;
    e.set_type("recording.upload_rejected");
    e.set_session_id(id);
    e.set_details(nlohmann::json({{"reason", why}}).dump());
    audit_->Push(std::move(e));
  };
  MEZ_ASSIGN_OR_RETURN(uploader_, Uploader::Start(std::move(up)));

  ssh::SshServerOptions so;
  so.listen_address = listen_host;
  so.port = listen_port;
  so.host_key_openssh = host_key;
  so.trusted_user_ca_blob = ca_blob;
  so.required_cert_extensions = {std::string(auth::kMeziteTokenExtension)};
  so.clock = opt_.clock;
  so.tap_factory = [this](const ssh::ChannelInfo& info) {
    return NewTap(info);
  };
  so.on_connection_end = [this](const std::string& id) { ConnectionEnded(id); };
  so.on_refusal = [this](const ssh::AuthRefusal& r) {
    pb::NodeAuditRequest e;
    e.set_type("auth.refused");
    e.set_user(r.key_id);
    e.set_details(nlohmann::json({{"remote", r.remote},
                                  {"login", r.login},
                                  {"key_id", r.key_id},
                                  {"reason", r.reason}})
                      .dump());
    audit_->Push(std::move(e));
  };
  MEZ_ASSIGN_OR_RETURN(server_, ssh::SshServer::Start(std::move(so)));
  host_key_line_ = std::string(auth::kSshEd25519) + " " +
                   Base64Encode(server_->host_public_key_blob());

  if (!opt_.advertise.empty()) {
    advertise_ = opt_.advertise;
  } else {
    std::string host = listen_host;
    if (host.empty() || host == "0.0.0.0" || host == "::") {
      char name[256] = {};
      gethostname(name, sizeof(name) - 1);
      host = name;
    }
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    advertise_ = host + ":" + std::to_string(server_->port());
  }
  // Report the address, mode and host key now; then every heartbeat.
  if (join.ok()) {
    Status s = Join(advertise_, &joined);
    if (s.code() == Code::kFailedPrecondition) {
      server_->Stop();
      return Status(s.code(), "mezrecd refused this node: " + s.message());
    }
    if (!s.ok()) MEZ_LOG(kWarning) << "agent: join: " << s.message();
  }
  heartbeat_ = std::thread([this] { Heartbeat(); });
  return Status::Ok();
}

void Agent::Impl::Heartbeat() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::microseconds(opt_.heartbeat_us),
                 [this] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    pb::JoinNodeResponse resp;
    Status s = Join(advertise_, &resp);
    if (!s.ok()) MEZ_LOG(kDebug) << "agent: heartbeat: " << s.message();
    lock.lock();
    if (s.ok() && node_name_.empty()) node_name_ = resp.name();
  }
}

RecordingMode Agent::Impl::ModeForNewSession() {
  if (opt_.mode_override) return *opt_.mode_override;
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + opt_.node_token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  pb::GetConfigRequest req;
  req.set_key("session_recording");
  pb::ConfigValue value;
  grpc::Status g = cluster_->GetConfig(&ctx, req, &value);
  if (!g.ok()) {
    MEZ_LOG(kWarning) << "agent: cannot ask mezrecd for session_recording ("
                      << g.error_message()
                      << "); recording this session in node mode";
    return RecordingMode::kNode;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    setting_ = value.value();
  }
  if (value.value().empty()) return RecordingMode::kNode;
  auto mode = ParseRecordingMode(value.value());
  if (!mode.ok()) {
    MEZ_LOG(kWarning) << "agent: session_recording: " << mode.status().message()
                      << "; using node";
    return RecordingMode::kNode;
  }
  return *mode;
}

std::unique_ptr<ssh::ChannelTap> Agent::Impl::NewTap(
    const ssh::ChannelInfo& info) {
  RecordingMode mode = ModeForNewSession();
  std::string node;
  {
    std::lock_guard<std::mutex> lock(mu_);
    node = node_name_;
  }
  MEZ_LOG(kInfo) << "agent: " << ssh::ChannelKindName(info.kind) << " for "
                 << info.key_id << " as " << info.login << " from "
                 << info.remote << ", recording " << RecordingModeName(mode);
  switch (mode) {
    case RecordingMode::kNodeSync: {
      if (info.kind == ssh::ChannelKind::kTcpip) {
        std::lock_guard<std::mutex> lock(mu_);
        sync_tcpip_connections_.insert(info.connection_id);
      }
      SyncRecorderOptions so;
      so.channel = channel_;
      so.node_token = opt_.node_token;
      so.node = node;
      so.clock = opt_.clock;
      return SyncRecorder::Start(so, info);
    }
    case RecordingMode::kNode: {
      SpoolRecorderOptions so;
      so.spool_dir = spool_dir_;
      so.node = node;
      so.budget = &budget_;
      so.clock = opt_.clock;
      so.on_full = [this](const ssh::ChannelInfo& i, const std::string& why) {
        pb::NodeAuditRequest e;
        e.set_type("recording.spool_full");
        e.set_user_token(UserToken(i));
        e.set_user(i.key_id);
        e.set_details(
            nlohmann::json(
                {{"reason", why}, {"login", i.login}, {"remote", i.remote}})
                .dump());
        audit_->Push(std::move(e));
      };
      so.on_closed = [this](const std::string&) { uploader_->Notify(); };
      return SpoolRecorder::Start(so, info);
    }
    case RecordingMode::kOff:
      return std::make_unique<OffTap>(audit_.get(), info);
  }
  return nullptr;
}

void Agent::Impl::ConnectionEnded(const std::string& connection_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (sync_tcpip_connections_.erase(connection_id) == 0) return;
  }
  // Close the connection's shared pcaps now rather than at the idle timeout.
  auto stub = pb::Recording::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + opt_.node_token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  pb::EndRecordingSessionRequest req;
  req.set_connection_id(connection_id);
  pb::EndRecordingSessionResponse resp;
  grpc::Status g = stub->EndRecordingSession(&ctx, req, &resp);
  if (!g.ok()) {
    MEZ_LOG(kWarning) << "agent: EndRecordingSession " << connection_id << ": "
                      << g.error_message()
                      << " (mezrecd closes it after its idle timeout)";
  }
}

void Agent::Impl::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !heartbeat_.joinable() && !server_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (server_) server_->Stop();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (uploader_) uploader_->Stop();
  server_.reset();
  uploader_.reset();
  audit_.reset();
}

Result<std::unique_ptr<Agent>> Agent::Start(AgentOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  MEZ_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() { Stop(); }
uint16_t Agent::ssh_port() const { return impl_->server_->port(); }
std::string Agent::node_name() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->node_name_;
}
RecordingMode Agent::CurrentMode() { return impl_->ModeForNewSession(); }
void Agent::Stop() { impl_->Stop(); }

}  // namespace mez::agent
