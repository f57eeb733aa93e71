#include "libmez/agent/agent.h"

#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_set>

#include "libmez/agent/diagnose.h"
#include "libmez/agent/transport.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/auth/token.h"
#include "libmez/recorder/events.h"
#include "libmez/recorder/recorders.h"
#include "libmez/recorder/sync_recorder.h"
#include "libmez/rpc/channel.h"
#include "libmez/rpc/client.h"
#include "libmez/ssh/login_policy.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"
#include "libmez/util/host_port.h"
#include "libmez/util/log.h"
#include "libmez/util/thread_name.h"
#include "mezite/v1/cluster.pb.h"

namespace mez::agent {
namespace {

namespace pb = mezite::v1;
using recorder::Recorders;
using recorder::RecordersOptions;
using recorder::RecordingMode;
using recorder::RecordingModeName;

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

}  // namespace

class Agent::Impl {
 public:
  explicit Impl(AgentOptions o) : opt_(std::move(o)) {}
  ~Impl() { Stop(); }

  Status Init();
  // Enhanced recording as AgentOptions::bpf and bpf_degraded ask.
  Status OpenEvents();
  void Stop();
  // JoinNode; on success updates the cached setting and CA file.
  Status Join(const std::string& addr, pb::JoinNodeResponse* resp);
  void Heartbeat();
  std::string EffectiveModeName();
  // Why the first JoinNode failed with `join` (not a refused credential):
  // the transport's cause when DiagnoseMezrecd finds one.
  std::string JoinFailureCause(const Status& join);
  // Removed users (issue 14 item 7): the ids of the last join or
  // heartbeat answer replace the set; certificates whose recording grant
  // names one of them are refused at authentication.
  void NoteRevokedUsers(const pb::JoinNodeResponse& resp);
  Status CheckUserCertificate(const auth::SshCert& cert);

  AgentOptions opt_;
  StartCredential cred_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<rpc::ClusterClient> client_;
  std::shared_ptr<void> watcher_;
  // Outlives the recorders and the server, whose taps feed from it.
  std::unique_ptr<recorder::EventRouter> events_;
  std::optional<bool> enhanced_;  // RecordHeader.enhanced (AgentOptions::bpf)
  std::unique_ptr<Recorders> recorders_;
  std::unique_ptr<ssh::SshServer> server_;
  std::string node_name_;
  std::string host_key_line_;
  std::string advertise_;
  std::string spool_dir_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread heartbeat_;
  std::mutex revoked_mu_;
  std::unordered_set<std::string> revoked_user_ids_;  // guarded by revoked_mu_
};

Status Agent::Impl::Join(const std::string& addr, pb::JoinNodeResponse* resp) {
  pb::JoinNodeRequest req;
  req.set_addr(addr);
  req.set_recording_mode(EffectiveModeName());
  req.set_host_key(host_key_line_);
  req.set_stores_credential(true);
  Status g = client_->JoinNode(req, resp, std::chrono::seconds(10));
  if (!g.ok()) {
    // A refused credential, a refused join, or (anything else) a mezrecd
    // to try again later.
    Code c = Code::kUnavailable;
    if (g.code() == Code::kUnauthenticated ||
        g.code() == Code::kPermissionDenied) {
      c = Code::kUnauthenticated;
    } else if (g.code() == Code::kFailedPrecondition) {
      c = Code::kFailedPrecondition;
    }
    return Status(c, g.message());
  }
  NoteRevokedUsers(*resp);
  // A new credential (the join token exchanged, or a renewal): kept for
  // every caller and the next start.
  if (!resp->node_token().empty()) {
    // In use at once (StoreCredential sets it even when the file cannot be
    // written: the join token is used up, so the new credential must not
    // be lost while mezd runs).
    Status stored = StoreCredential(opt_.data_dir, cred_, resp->node_token(),
                                    resp->node_token_expires_at());
    if (!stored.ok()) {
      MEZ_LOG(kError) << "agent: cannot store the node credential in "
                      << opt_.data_dir << " (" << stored.message()
                      << "); it is in use until mezd stops, and the next "
                         "renewal tries again. Free the disk, or mezd cannot "
                         "start again without a new join token";
    } else {
      MEZ_LOG(kInfo) << "agent: node credential stored, valid until "
                     << resp->node_token_expires_at() << " (Unix time)";
    }
  }
  recorders_->NoteSetting(resp->session_recording());
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

void Agent::Impl::NoteRevokedUsers(const pb::JoinNodeResponse& resp) {
  std::unordered_set<std::string> ids(resp.revoked_user_ids().begin(),
                                      resp.revoked_user_ids().end());
  std::lock_guard<std::mutex> lock(revoked_mu_);
  revoked_user_ids_.swap(ids);
}

Status Agent::Impl::CheckUserCertificate(const auth::SshCert& cert) {
  // The CA's signature over the certificate vouches for the grant in it.
  auto it = cert.extensions.find(std::string(auth::kMeziteTokenExtension));
  if (it == cert.extensions.end()) return Status::Ok();  // Required anyway.
  Result<auth::Claims> grant = auth::ReadClaimsUnverified(it->second);
  if (!grant.ok()) {
    return PermissionDenied("the certificate's recording grant (" +
                            std::string(auth::kMeziteTokenExtension) +
                            ") cannot be read: " + grant.status().message() +
                            "; get certificates from mezrecd (msh ssh)");
  }
  // A grant is for one node: a certificate asked for another node does not
  // log in here (node-sync's ingest refuses it too; node and off modes
  // would otherwise run the session unrecorded at the cluster).
  std::string node;
  {
    std::lock_guard<std::mutex> lock(mu_);
    node = node_name_;
  }
  if (grant->role != auth::Role::kSession) {
    return PermissionDenied(
        "the certificate's recording grant is a " +
        std::string(auth::RoleName(grant->role)) +
        " token, not a session grant; get certificates from mezrecd (msh "
        "ssh)");
  }
  if (!node.empty() && grant->audience != node) {
    return PermissionDenied("the certificate is for node '" + grant->audience +
                            "', not for " + node +
                            "; msh ssh asks for one per node");
  }
  if (grant->uid.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(revoked_mu_);
  if (revoked_user_ids_.count(grant->uid) == 0) return Status::Ok();
  return PermissionDenied(
      "user " + grant->subject + " (id " + grant->uid +
      ") was removed from the cluster; their certificates are refused. An "
      "admin who means to let them in again adds them anew (mezctl users "
      "add), and they log in again");
}

std::string Agent::Impl::JoinFailureCause(const Status& join) {
  Expect expect = opt_.insecure          ? Expect::kPlaintext
                  : !opt_.ca_pem.empty() ? Expect::kTls
                                         : Expect::kUnknown;
  Status why = DiagnoseMezrecd(opt_.auth_addr, expect, opt_.ca_pem);
  if (!why.ok()) return why.message();
  return "mezrecd at " + opt_.auth_addr +
         " answers, but the join failed: " + join.message();
}

std::string Agent::Impl::EffectiveModeName() {
  return std::string(RecordingModeName(recorders_->LastKnownMode()));
}

Status Agent::Impl::OpenEvents() {
  if (!opt_.bpf) return Status::Ok();
  auto router = recorder::EventRouter::Open();
  if (router.ok()) {
    events_ = std::move(router).value();
    enhanced_ = true;
    MEZ_LOG(kInfo) << "agent: enhanced recording on";
    return Status::Ok();
  }
  if (!opt_.bpf_degraded) return router.status();
  enhanced_ = false;
  MEZ_LOG(kWarning) << "agent: " << router.status().message()
                    << "; running without it (degraded mode: sessions are "
                       "recorded with enhanced recording off)";
  return Status::Ok();
}

Status Agent::Impl::Init() {
  if (opt_.clock == nullptr) opt_.clock = RealClock();
  MEZ_RETURN_IF_ERROR(OpenEvents());
  std::string listen_host;
  uint16_t listen_port = 0;
  MEZ_RETURN_IF_ERROR(SplitHostPort(opt_.listen, &listen_host, &listen_port));
  MEZ_RETURN_IF_ERROR(MakeDir(opt_.data_dir));
  MEZ_RETURN_IF_ERROR(CheckDataDir(opt_.data_dir));
  if (opt_.start_credential) {
    cred_ = *opt_.start_credential;
  } else {
    MEZ_ASSIGN_OR_RETURN(cred_,
                         LoadStartCredential(opt_.data_dir, opt_.node_token));
  }
  if (!opt_.credentials) {
    std::string ca_in_use;
    MEZ_ASSIGN_OR_RETURN(
        opt_.credentials,
        ResolveNodeTransport(opt_.auth_addr, opt_.data_dir, opt_.ca_pem,
                             opt_.insecure, cred_.ca_sha256, &ca_in_use));
    opt_.ca_pem = ca_in_use;
  }
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

  channel_ = rpc::OpenChannel(opt_.auth_addr, opt_.credentials);
  client_ = std::make_unique<rpc::ClusterClient>(channel_, cred_.token,
                                                 opt_.auth_addr);
  watcher_ = rpc::WatchChannel(channel_);
  RecordersOptions ro;
  ro.channel = channel_;
  ro.token = cred_.token;
  ro.spool_dir = spool_dir_;
  ro.spool_budget = opt_.spool_budget;
  ro.upload_retry_min_us = opt_.upload_retry_min_us;
  ro.upload_retry_max_us = opt_.upload_retry_max_us;
  ro.upload_rate_limit = opt_.upload_rate_limit;
  ro.mode_override = opt_.mode_override;
  ro.enhanced = enhanced_;
  ro.events = events_.get();
  ro.clock = opt_.clock;
  MEZ_ASSIGN_OR_RETURN(recorders_, Recorders::Start(std::move(ro)));

  // The user CA: given, learnt now, or cached from the last join.
  pb::JoinNodeResponse joined;
  Status join = Join("", &joined);
  if (join.code() == Code::kUnauthenticated) {
    return Status(Code::kUnauthenticated,
                  "mezrecd at " + opt_.auth_addr + " refused this node's " +
                      (cred_.join ? "join token" : "credential") + " (" +
                      join.message() +
                      "); an admin issues a new join token with: mezctl "
                      "nodes rm NAME && mezctl nodes add NAME");
  }
  std::string ca_line = opt_.user_ca_line;
  if (join.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    node_name_ = joined.name();
    if (ca_line.empty()) ca_line = joined.user_ca_public();
  } else {
    std::string cause = JoinFailureCause(join);
    if (ca_line.empty()) {
      auto cached = ReadFile(opt_.data_dir + "/user_ca.pub");
      if (!cached.ok()) {
        // Never joined: nothing to serve with until mezrecd answers.
        return Status(join.code() == Code::kFailedPrecondition
                          ? Code::kFailedPrecondition
                          : Code::kUnavailable,
                      "cannot join the cluster: " + cause +
                          ". (mezd has not joined from " + opt_.data_dir +
                          " yet, so it has no user CA to start with.)");
      }
      ca_line = *cached;
    }
    MEZ_LOG(kWarning) << "agent: cannot reach mezrecd: " << cause
                      << "; starting from the cached user CA, recording in "
                         "node mode until it answers";
  }
  MEZ_ASSIGN_OR_RETURN(std::string ca_blob,
                       auth::Ed25519BlobFromPublicLine(ca_line));

  ssh::SshServerOptions so;
  so.listen_address = listen_host;
  so.port = listen_port;
  so.host_key_openssh = host_key;
  so.trusted_user_ca_blob = ca_blob;
  so.required_cert_extensions = {std::string(auth::kMeziteTokenExtension)};
  so.clock = opt_.clock;
  MEZ_ASSIGN_OR_RETURN(so.login_policy,
                       ssh::LocalLoginPolicy::ForThisProcess());
  so.check_certificate = [this](const std::string&, const auth::SshCert& c) {
    return CheckUserCertificate(c);
  };
  so.tap_factory = [this](const ssh::ChannelInfo& info) {
    std::string node;
    {
      std::lock_guard<std::mutex> lock(mu_);
      node = node_name_;
    }
    return recorders_->NewTap(info, node);
  };
  so.on_connection_end = [this](const std::string& id) {
    recorders_->ConnectionEnded(id);
  };
  so.on_refusal = [this](const ssh::AuthRefusal& r) {
    pb::NodeAuditRequest e;
    e.set_type("auth.refused");
    e.set_user(r.key_id);
    e.set_details(nlohmann::json({{"remote", r.remote},
                                  {"login", r.login},
                                  {"key_id", r.key_id},
                                  {"reason", r.reason}})
                      .dump());
    recorders_->Audit(std::move(e));
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
  heartbeat_ = std::thread([this] {
    NameThisThread("mez-heartbeat");
    Heartbeat();
  });
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
    if (s.code() == Code::kUnauthenticated) {
      MEZ_LOG(kError) << "agent: mezrecd refuses this node's credential ("
                      << s.message()
                      << "); nothing is recorded to the cluster until an "
                         "admin joins the node again";
    } else if (!s.ok()) {
      MEZ_LOG(kDebug) << "agent: heartbeat: " << s.message();
    }
    lock.lock();
    if (s.ok() && node_name_.empty()) node_name_ = resp.name();
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
  if (recorders_) recorders_->Stop();
  server_.reset();
  recorders_.reset();
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
std::optional<bool> Agent::enhanced() const { return impl_->enhanced_; }
RecordingMode Agent::CurrentMode() {
  return impl_->recorders_->ModeForNewSession();
}
void Agent::Stop() { impl_->Stop(); }

}  // namespace mez::agent
