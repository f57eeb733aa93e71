// Recording of SSH channels in the mode that applies when each starts
// (DESIGN.md "modes"), shared by the node agent and the proxy's agentless
// bridge, so both record through the same path. The mode of a new
// channel is decided without asking anyone on the connection's thread:
//   mode_override (MEZITE_RECORDING_MODE) when set; else
//   node while mezrecd is unreachable (the channel to it is not
//   connected, or does not connect within 2 s) or before the cluster
//   setting session_recording was ever learnt (nothing is lost: the spool
//   is uploaded later); else
//   the setting as last learnt: from setting_source when given (the
//   in-process proxy reads the catalog), else from NoteSetting (mezd's
//   join and heartbeat answers) or the refresh thread (setting_refresh_us,
//   the proxy-only mezrecd).
// So a `mezctl config set session_recording` reaches new sessions within
// one heartbeat (mezd, --heartbeat, 30 s by default) or one refresh; a
// running session keeps the mode it started with.
// node-sync streams live (SyncRecorder, keeping a local copy in the spool
// directory that completes a broken stream), node spools and uploads
// (SpoolRecorder + Uploader), off records nothing but still reports
// session.start and session.end to the audit log.
#ifndef MEZ_RECORDER_RECORDERS_H_
#define MEZ_RECORDER_RECORDERS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "libmez/recorder/events.h"
#include "libmez/recorder/frames.h"
#include "libmez/rpc/bearer_token.h"
#include "libmez/rpc/channel.h"
#include "libmez/ssh/channel_tap.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"
#include "mezite/v1/cluster.pb.h"

namespace mez::recorder {

struct RecordersOptions {
  std::shared_ptr<grpc::Channel> channel;  // to mezrecd (rpc/channel.h)
  // The node's credential (mezd) or the proxy's token, sent with every
  // call; mezd replaces it when JoinNode renews it.
  std::shared_ptr<rpc::BearerToken> token;
  std::string spool_dir;  // node mode's spool; must exist
  uint64_t spool_budget = 1ULL << 30;
  int64_t upload_retry_min_us = 1'000'000;
  int64_t upload_retry_max_us = 60'000'000;
  uint64_t upload_rate_limit = 0;  // bytes per second, 0: none
  std::optional<RecordingMode> mode_override;
  // Reads the current session_recording for every new channel (it must
  // not make an RPC; the in-process proxy reads the catalog). Its answer
  // is noted as NoteSetting's; on error the value last learnt applies.
  std::function<Result<std::string>()> setting_source;
  // > 0: Start asks mezrecd for session_recording (GetConfig, at most
  // 5 s), then a thread asks again every setting_refresh_us; the answers
  // are noted. For a process
  // with no other regular contact with mezrecd (the proxy-only mezrecd).
  int64_t setting_refresh_us = 0;
  // node-sync: how long mezrecd may take to accept a header, and to take
  // queued data, before the session ends (0: the SyncRecorder defaults,
  // or MEZITE_SYNC_ACCEPT_TIMEOUT_MS / MEZITE_SYNC_STALL_TIMEOUT_MS).
  int64_t sync_accept_timeout_us = 0;
  int64_t sync_stall_timeout_us = 0;
  // Enhanced recording (events.h): RecordHeader.enhanced of every shell
  // and exec channel recorded (unset: absent; false: asked for but off, the
  // operator's degraded mode), and the router whose events those channels
  // record in node-sync and node mode (null: none).
  std::optional<bool> enhanced;
  EventRouter* events = nullptr;
  Clock* clock = nullptr;  // nullptr: RealClock()
};

class Recorders {
 public:
  // Starts the audit queue and the spool's uploads.
  static Result<std::unique_ptr<Recorders>> Start(RecordersOptions options);
  ~Recorders();  // Stop()
  Recorders(const Recorders&) = delete;
  Recorders& operator=(const Recorders&) = delete;

  // The mode a channel starting now gets (the rule above). Never calls
  // mezrecd; waits only for a channel that is not connected (at most 2 s),
  // and with setting_source, as long as that takes.
  RecordingMode ModeForNewSession();
  // The mode as last learnt (override, else the setting, else node),
  // whether or not mezrecd is reachable now: what mezd reports.
  RecordingMode LastKnownMode();
  // Keeps the cluster setting as learnt from mezrecd (a join or heartbeat
  // answer): new channels use it from now on. An empty value is ignored
  // (the one kept before stays); one this recorder does not know means
  // node. Thread-safe.
  void NoteSetting(const std::string& value);

  // The tap for a starting channel of node `node`. Thread-safe.
  std::unique_ptr<ssh::ChannelTap> NewTap(const ssh::ChannelInfo& info,
                                          const std::string& node);
  // For SshServerOptions::on_connection_end: closes the connection's
  // node-sync pcaps at mezrecd now rather than at its idle timeout.
  void ConnectionEnded(const std::string& connection_id);
  // Queues an audit event (kept and retried while mezrecd is away).
  void Audit(mezite::v1::NodeAuditRequest event);

  // Stops uploads and the audit queue. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit Recorders(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mez::recorder

#endif  // MEZ_RECORDER_RECORDERS_H_
