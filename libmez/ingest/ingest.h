// Recording ingest, independent of gRPC: validates a stream's header,
// opens the file in the storage layout, writes frames as they arrive, keeps
// the catalog and the audit log up to date, and shares one pcap per
// (connection, destination) between the channels that use it.
#ifndef MEZ_INGEST_INGEST_H_
#define MEZ_INGEST_INGEST_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "libmez/auth/token.h"
#include "libmez/catalog/catalog.h"
#include "libmez/catalog/catalog_retry.h"
#include "libmez/ingest/recording_config.h"
#include "libmez/record/asciicast_writer.h"
#include "libmez/record/gzip.h"
#include "libmez/record/pcap_writer.h"
#include "libmez/spool/limits.h"
#include "libmez/store/blob_store.h"
#include "libmez/util/clock.h"
#include "libmez/util/stream.h"

namespace mez::ingest {

struct CheckedEvent;

// Largest chunk payload accepted (the protocol's limit).
inline constexpr size_t kMaxChunkBytes = spool::kMaxChunkBytes;
// How far a live stream's start (or an upload's) may be from mezrecd's
// clock (ahead, for uploads) before the header is refused.
inline constexpr int64_t kMaxClockSkewUs = 300'000'000;
// How long before a grant's iat an uploaded session may have started (the
// certificate's valid_after is backdated by this much).
inline constexpr int64_t kGrantBackdateUs = 60'000'000;

// A stream's header, as the transport delivered it (unverified).
struct StreamHeader {
  std::string session_id;
  std::string connection_id;
  // The user's recording grant (auth::Role::kSession) for the recording's
  // node, as the user's SSH certificate carried it. API tokens are refused.
  std::string user_token;
  // Live streams: 0 for now, else within kMaxClockSkewUs of mezrecd's
  // clock. Uploads: the spool's start (required).
  int64_t started_at_us = 0;
  // nullopt: a kind this build does not know (refused).
  std::optional<ChannelKind> kind;
  uint32_t width = 0, height = 0;
  std::string command;
  std::string src_host;
  uint32_t src_port = 0;
  std::string dst_host;
  uint32_t dst_port = 0;
  // Ignored from a node caller (the recording's node is the caller's own
  // name); a proxy names the agentless node it records for, an admin any
  // registered node.
  std::string node;
  std::string login;
  std::string term;
  // Whether the channel had a terminal; nullopt: not said (then: a
  // terminal when `term` is set). Without one, output newlines are stored
  // as "\r\n" (docs/formats/asciicast.md).
  std::optional<bool> pty;
  // Enhanced recording (RecordHeader.enhanced): nullopt when not said.
  // Only a node credential may set it (a proxy's agentless nodes run no
  // BPF); session.start reports it as enhanced_recording on/off.
  std::optional<bool> enhanced;
  // When the grant is checked: 0 for now (live streams: the grant must be
  // valid now and its user still exist with the grant's uid). A node-mode
  // upload checks it at the session's start, which may be long past: the
  // start must lie in [grant iat - 60 s, grant exp], not in the future,
  // and before any removal of the user.
  int64_t verify_token_at_us = 0;
};

// Who opened the stream (the verified caller credential).
struct Caller {
  Caller() = default;
  // Not an aggregate, so that callers may leave uid out.
  Caller(std::string name_arg, auth::Role role_arg, std::string uid_arg = "")
      : name(std::move(name_arg)), role(role_arg), uid(std::move(uid_arg)) {}
  std::string name;  // token sub
  auth::Role role = auth::Role::kNode;
  std::string uid;  // token uid: the identity's catalog id (CallerCheck)
  // CallAuthenticator::LegacyJoinHash (CallerCheck).
  std::string legacy_join_hash;
};

struct IngestOptions {
  RecordingConfig recording;
  store::BlobStore* store = nullptr;              // Not owned.
  catalog::Catalog* catalog = nullptr;            // Not owned.
  const auth::TokenVerifier* verifier = nullptr;  // Not owned.
  Clock* clock = nullptr;                         // Default: RealClock().
  // This mezrecd's replica id, recorded in the sessions it creates
  // (catalog/replica_lease.h). Empty: none.
  std::string replica_id;
  // Retry failed audit writes and session ends from a background thread
  // (tests may turn it off and call retrier()->RetryNow()).
  bool retry_thread = true;
  // Told about every session that ended (its row as finished: status,
  // bytes, end), after its file is closed; mezrecd queues seek indexes
  // with it. Must not block: it runs on the stream's thread.
  std::function<void(const catalog::Session&)> on_end;
};

class IngestManager;

// One Record stream. REQUIRES: external synchronization (one frame at a
// time, as a gRPC reactor delivers them); Tick may run concurrently.
class IngestStream {
 public:
  ~IngestStream();
  Status Chunk(int64_t offset_us, Direction dir, std::string_view data);
  Status Resize(int64_t offset_us, uint32_t width, uint32_t height);
  Status Exit(int64_t offset_us, int32_t status);
  // An events frame (docs/formats/enhanced-events.md): checked whole
  // (CheckEventLines) before anything is stored, refused on a stream that
  // may not carry events (not shell/exec, or not opened by a node), then
  // appended to the events file beside the recording and audited
  // (ingest_events.cc).
  Status Events(int64_t offset_us, const std::vector<std::string_view>& lines);
  // Ends the stream: closes (or releases) the file, records the end in the
  // catalog (`complete` or incomplete) and audits session.end. Idempotent.
  // `ended_us` is the wall time of the end; 0 for now.
  Status Finish(bool complete, int64_t ended_us = 0);

  const std::string& session_id() const { return session_.id; }
  const std::string& storage_key() const { return session_.storage_key; }
  uint64_t frames() const { return frames_; }
  uint64_t bytes() const { return bytes_; }

 private:
  friend class IngestManager;
  struct PcapShare;
  IngestStream(IngestManager* manager, catalog::Session session);
  Status Tick(int64_t now_mono_us);
  // Passes `s` on, remembering it as storage_error_ (the caller reports it).
  Status Stored(Status s);
  // storage_error_ once a frame is to report it; Ok while there is none.
  Status TakeStorageError();

  IngestManager* manager_;
  catalog::Session session_;
  std::mutex mu_;  // Guards the writers against Tick.
  std::unique_ptr<record::AsciicastWriter> cast_;
  std::shared_ptr<PcapShare> pcap_;
  std::string src_host_, dst_host_;
  uint16_t src_port_ = 0, dst_port_ = 0;
  record::FlowId flow_ = 0;
  bool flow_open_ = false;
  bool failed_open_ = false;
  bool out_shut_ = false, in_shut_ = false;
  int64_t last_flush_mono_us_ = 0;
  bool dirty_ = false;
  // The first failed write of the recording (sticky; found by a frame, by
  // Tick or at Close). A frame returns it, and its caller logs it and fails
  // the stream; else Finish logs it: one line per stream either way.
  Status storage_error_;
  bool storage_error_returned_ = false;
  uint64_t frames_ = 0;
  uint64_t bytes_ = 0;
  std::optional<int32_t> exit_status_;  // From the exit frame, if any.
  // Enhanced recording events (ingest_events.cc).
  Status OpenEventsFile();
  void AuditEvents(const std::vector<CheckedEvent>& events);
  void AuditEventsOmitted();
  std::string events_refusal_;  // Why this stream may not carry events.
  record::AsciicastOptions cast_opt_;
  std::string events_key_;
  std::unique_ptr<record::AsciicastWriter> events_writer_;
  bool events_dirty_ = false;
  uint64_t event_lines_ = 0;
  std::map<std::string, uint64_t> audited_, omitted_;  // By audit type.
  bool finished_ = false;
};

// Thread-safe.
class IngestManager {
 public:
  explicit IngestManager(IngestOptions options);
  // Closes every shared pcap still open.
  ~IngestManager();

  // Runs every check Begin runs, without side effects (catalog reads
  // only): the grant (StreamHeader::user_token, verify_token_at_us), the
  // node (from the caller's credential), the start time and the fields.
  // kUnauthenticated for a grant that does not verify or whose user is
  // gone, kPermissionDenied for a token that is not a grant for that node
  // or a node the caller may not name, kInvalidArgument for bad fields or
  // times, kNotFound for an unregistered node a proxy named.
  Status CheckHeader(const StreamHeader& header, const Caller& caller) const;
  // CheckHeader, then creates the catalog entry (kAlreadyExists for a
  // duplicate id) and the file, and audits session.start. A refused header
  // is audited as recording.rejected by the transport (AuditRejected).
  // Errors carry a Code the transport maps to its status.
  Result<std::unique_ptr<IngestStream>> Begin(const StreamHeader& header,
                                              const Caller& caller);
  // Audits a stream refused before or after its header.
  void AuditRejected(const Caller& caller, const std::string& session_id,
                     const Status& why);
  // Closes every shared pcap of `connection_id` that `caller` opened (once
  // their channels are done); another caller's pcaps are left alone.
  // Returns how many were closed or marked.
  int EndConnection(const Caller& caller, const std::string& connection_id);

  // Flushes gzip streams that have had data pending for a second, and
  // closes shared pcaps idle for pcap_idle_timeout. Called by the timer
  // thread started with StartTimer (tests may call it directly).
  void Tick();
  void StartTimer(int64_t period_us = 250'000);
  void StopTimer();

  int open_streams() const;
  int open_pcaps() const;
  // Audit events and session ends that failed and wait for a retry.
  catalog::CatalogRetrier* retrier() { return retrier_.get(); }

 private:
  friend class IngestStream;
  // (opener, user, connection_id, dst_host, dst_port): a pcap is shared
  // only by the channels of one caller.
  using PcapKey =
      std::tuple<std::string, std::string, std::string, std::string, uint32_t>;
  // What CheckHeader derives: who, where and when (the checks:
  // ingest_check.cc).
  struct Checked {
    std::string user;
    std::string node;
    std::string kind;
    int64_t started_us = 0;
  };
  Result<Checked> Check(const StreamHeader& h, const Caller& caller) const;
  Status CheckGrant(const auth::Claims& grant, const std::string& node,
                    const StreamHeader& h, int64_t now_us,
                    int64_t started_us) const;
  Result<std::string> RecordingNode(const StreamHeader& h,
                                    const Caller& caller) const;

  Result<std::shared_ptr<IngestStream::PcapShare>> AcquirePcap(
      const Caller& caller, const std::string& user, const StreamHeader& h,
      catalog::Session* s);
  void ReleasePcap(const std::shared_ptr<IngestStream::PcapShare>& share);
  void Audit(const std::string& type, const std::string& user,
             const std::string& session_id, const std::string& node,
             const std::string& details);
  void Forget(IngestStream* stream);

  IngestOptions opt_;
  std::unique_ptr<catalog::CatalogRetrier> retrier_;
  mutable std::mutex mu_;
  std::map<PcapKey, std::shared_ptr<IngestStream::PcapShare>> pcaps_;
  std::map<IngestStream*, bool> streams_;
  std::thread timer_;
  std::condition_variable timer_cv_;
  bool timer_stop_ = false;
};

}  // namespace mez::ingest

#endif  // MEZ_INGEST_INGEST_H_
