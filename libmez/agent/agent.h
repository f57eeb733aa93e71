// The node agent (mezd) as a library: joins the cluster, serves SSH to
// holders of the cluster's user certificates, and records every session
// channel in the mode that applies when it starts:
//   MEZITE_RECORDING_MODE (AgentOptions::mode_override) when set, else the
//   cluster setting session_recording as last learnt from the join and
//   heartbeat answers (so a change reaches new sessions within one
//   heartbeat_us), else node. While mezrecd is unreachable, and before its
//   first answer, node (nothing is lost: the spool is uploaded later).
//   No session waits on mezrecd to pick its mode (recorder/recorders.h).
// node-sync streams live (SyncRecorder), node spools and uploads
// (SpoolRecorder + Uploader), off records nothing but still reports
// session.start and session.end to the audit log.
//
// Files under data_dir (created 0700): host_key (the SSH host key, made on
// first start), host_key-cert.pub (from the cluster's host CA),
// user_ca.pub (the last user CA learnt from mezrecd, so mezd can start
// and record in node mode while mezrecd is down), node_credential and
// cluster_ca.pem (credential.h), spool/.
#ifndef MEZ_AGENT_AGENT_H_
#define MEZ_AGENT_AGENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "libmez/agent/credential.h"
#include "libmez/recorder/frames.h"
#include "libmez/rpc/channel.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::agent {

struct AgentOptions {
  std::string auth_addr;  // mezrecd HOST:PORT
  // How to reach mezrecd; null: ResolveNodeTransport (transport.h) with
  // ca_pem, insecure and the join token's CA pin.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // The cluster's TLS CA: --ca-file's content; after PrepareAgentStart
  // (config.h), or when Start resolves the transport, the CA in use
  // (empty: plaintext). Named in the errors of a failed first join.
  std::string ca_pem;
  bool insecure = false;
  // --token: a join token (exchanged at the first join), or a node
  // credential. May be empty once the node has joined: the credential in
  // data_dir is used (LoadStartCredential, credential.h).
  std::string node_token;
  // Already loaded by the caller (mezd checks it before starting); unset:
  // Start loads it from node_token and data_dir.
  std::optional<StartCredential> start_credential;
  std::string listen = "0.0.0.0:3022";  // HOST:PORT; port 0 picks one
  // Reported to the cluster as the node's address; empty: the listen
  // address with the bound port (the host name for a wildcard address).
  std::string advertise;
  std::string data_dir = "/var/lib/mezd";
  std::optional<recorder::RecordingMode> mode_override;
  // Trust this user CA line instead of the one learnt from mezrecd.
  std::string user_ca_line;
  uint64_t spool_budget = 1ULL << 30;
  int64_t upload_retry_min_us = 1'000'000;
  int64_t upload_retry_max_us = 60'000'000;
  uint64_t upload_rate_limit = 0;  // bytes per second, 0: none
  int64_t heartbeat_us = 30'000'000;
  // Enhanced recording (docs/enhanced-recording.md). bpf: Start opens the
  // BPF monitor before anything else and fails with its one-line message
  // when it cannot, unless bpf_degraded (the operator's explicit choice):
  // then it logs one warning and records every shell and exec channel
  // with RecordHeader.enhanced = false. Recorded channels' headers say
  // enhanced = true with the monitor open, and have no such field without
  // bpf.
  bool bpf = false;
  bool bpf_degraded = false;
  Clock* clock = nullptr;  // nullptr: RealClock()
};

class Agent {
 public:
  // Joins (or, with mezrecd unreachable, starts from the cached user CA),
  // starts uploads and the SSH server. Errors name the fix.
  static Result<std::unique_ptr<Agent>> Start(AgentOptions options);
  ~Agent();  // Stop()
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  uint16_t ssh_port() const;
  // The name the cluster knows this node by (empty until it answered).
  std::string node_name() const;
  // Enhanced recording: true when the BPF programs are loaded, false in
  // the degraded mode (asked for, could not load), unset when not asked.
  std::optional<bool> enhanced() const;
  // The mode a session starting now would use (never asks mezrecd).
  recorder::RecordingMode CurrentMode();
  // Stops the SSH server (sessions are hung up, their recordings closed),
  // then uploads and the heartbeat. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mez::agent

#endif  // MEZ_AGENT_AGENT_H_
