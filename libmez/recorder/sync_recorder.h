// node-sync recording (DESIGN.md "modes"): each SSH session channel is
// streamed live to mezrecd as one Recording.Record call. The header carries
// the user's JWT from the SSH certificate (auth::kMeziteTokenExtension);
// chunk, resize and exit frames follow as they happen.
//
// Frames are written by a thread of the recorder's own, so that the thread
// pumping the SSH channel never waits for gRPC: OnData queues the frame and
// returns. The writer lingers up to linger_us after a frame was queued,
// then sends everything queued as one message: consecutive chunks of one
// direction merged (stamped with the first one's time), the rest in a
// RecordBatch, up to merge_bytes of data. Bulk output then travels as a
// few large messages instead of one per read, and the recording's work for
// keystrokes happens in one go rather than alongside each echo. The end of
// a session sends what is queued at once.
//
// The queue is bounded (max_queued_bytes): a full queue makes OnData wait,
// which holds the channel back as a slow stream always did, and a queue
// that stays full for stall_timeout_us breaks the stream.
//
// When the stream breaks (a Write fails, Finish reports an error, or the
// service stops taking data), the recorder marks itself broken, stops
// writing, and calls on_broken once with a one-line message for the user's
// terminal; the SSH server polls EndReason() and ends the session with
// that message.
//
// The local copy (when options.spool_dir is set): a node-mode spool file
// (libmez/spool/spool.h), <spool_dir>/<session>.sync, with the same header
// and session id. The writer thread appends each message's frames to it
// just before it sends the message, so the copy always holds at least
// what mezrecd was sent (one write per message, off the connection's
// thread). When the stream fails, the frames still queued go to the copy,
// and from then on the connection's thread appends what the user still
// sees: the copy holds everything the user saw. At the end:
//   - the stream finished cleanly and mezrecd's summary counts every byte
//     sent: the copy is deleted;
//   - otherwise (the stream broke, mezrecd refused a write or went away):
//     the copy gets its end marker and becomes <session>.spool, which the
//     Uploader sends with retry; mezrecd replaces the incomplete recording
//     of that session with the replay of the copy, so the stored recording
//     holds everything the user saw.
// A crash of mezd loses from the copy only the queued frames, which the
// stream had not carried either (the .sync file is uploaded at the next
// start). A copy that cannot be written (spool budget, disk) breaks the
// recorder: the session ends (fail closed) and on_copy_failed reports it.
#ifndef MEZ_RECORDER_SYNC_RECORDER_H_
#define MEZ_RECORDER_SYNC_RECORDER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "libmez/recorder/events.h"
#include "libmez/recorder/frames.h"
#include "libmez/recorder/spool_recorder.h"
#include "libmez/rpc/bearer_token.h"
#include "libmez/rpc/channel.h"
#include "libmez/rpc/client.h"
#include "libmez/rpc/client_streams.h"
#include "libmez/spool/spool.h"
#include "libmez/ssh/channel_tap.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/util/clock.h"
#include "mezite/v1/recording.pb.h"

namespace mez::recorder {

// The credential and the channel watch live in rpc/; the names stay usable
// here for the recorders' callers.
using rpc::BearerToken;
using rpc::WatchChannel;

struct SyncRecorderOptions {
  // The channel to mezrecd (TLS with the cluster's CA in production).
  std::shared_ptr<grpc::Channel> channel;
  // Sent as "authorization: Bearer ..." (rpc::ClusterClient).
  std::shared_ptr<rpc::BearerToken> node_token;
  std::string node;        // this node's name, for the header
  Clock* clock = nullptr;  // nullptr: RealClock()
  // How long Start waits for mezrecd to accept the header.
  int64_t accept_timeout_us = 5'000'000;
  // Frames queued for the writer thread, in bytes of data, before OnData
  // waits for room.
  size_t max_queued_bytes = 4 << 20;
  // How long a queued frame may wait for others to go with it, and how
  // much data one message may carry (at most ingest's kMaxChunkBytes).
  int64_t linger_us = 20'000;
  size_t merge_bytes = 256 << 10;
  // How long the queue may stay full (mezrecd takes nothing) before the
  // stream is given up as broken; also bounds how long the end of a
  // session waits for the last frames to go out.
  int64_t stall_timeout_us = 20'000'000;
  // Called at most once per recorder, from the connection's thread, when
  // its stream breaks. `message` is one line without a newline.
  std::function<void(const std::string& message)> on_broken;
  // The local copy's directory (must exist); empty: no local copy.
  std::string spool_dir;
  SpoolBudget* budget = nullptr;  // Required with spool_dir.
  // Called once when the local copy cannot be written (the session then
  // ends), with the channel and a one-line description.
  std::function<void(const ssh::ChannelInfo&, const std::string&)>
      on_copy_failed;
  // Called with the path of a copy kept for upload (<session>.spool).
  std::function<void(const std::string&)> on_copy_kept;
  // Enhanced recording (events.h), shell and exec channels only: the
  // header's RecordHeader.enhanced (unset: absent), and the router whose
  // events the recorder writes as RecordEvents frames (null: none).
  std::optional<bool> enhanced;
  EventRouter* events = nullptr;
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

  void OnData(Direction direction, std::string_view bytes,
              int64_t micros) override;
  void OnResize(int width, int height, int64_t micros) override;
  void OnExit(int exit_status, int64_t micros) override;
  // The broken message once broken. Also notices a recording service that
  // went away while the session is idle (the channel left READY), and
  // queues the enhanced recording events delivered so far.
  std::string EndReason() override;
  Status TrackProcess(pid_t pid) override;

  const std::string& session_id() const { return session_id_; }
  // True once the stream broke; the session must then end. Thread-safe.
  bool broken() const { return broken_.load(); }
  // The one-line message for the user's terminal (empty until broken).
  std::string broken_message() const;
  // The server's summary, once finished without error.
  const mezite::v1::RecordSummary& summary() const { return summary_; }

 private:
  SyncRecorder(const SyncRecorderOptions& options, const ssh::ChannelInfo& info,
               std::string session_id);
  // Opens the local copy with `header`; false (and broken) when it cannot.
  bool OpenCopy(const mezite::v1::RecordFrame& header);
  // Appends frames to the local copy, by whichever thread owns it (the
  // writer thread while it runs, then the connection's thread): "" or why
  // it could not (the copy then stops). A batch is appended frame by frame.
  std::string WriteCopy(
      const std::vector<const mezite::v1::RecordFrame*>& frames);
  std::string WriteCopy(const mezite::v1::RecordFrame& frame);
  // Writer thread, queue_mu_ held, after the stream failed: the queued
  // frames go to the copy and leave the queue.
  void FlushQueueToCopy();
  // Connection's thread: keeps the first copy error for CopyFailed.
  void NoteCopyError(const std::string& why);
  // Connection's thread, after the writer stopped: reports a copy error
  // not reported yet.
  void TakeCopyError();
  // The copy cannot be kept: reports it and breaks the recorder.
  void CopyFailed(const std::string& why);
  // After the stream ended: deletes the copy when mezrecd confirmed every
  // byte, else closes it for upload.
  void SettleCopy();
  // Queues a frame for the writer thread (waits while the queue is full).
  // False when it was not queued (the stream is broken or closed).
  bool Send(mezite::v1::RecordFrame frame, size_t bytes);
  // Send, counting what went to the stream and noting what did not.
  void Emit(mezite::v1::RecordFrame frame, size_t bytes);
  // Queues `lines` (events) as RecordEvents frames stamped now, on the
  // stream like terminal data (not counted in sent_bytes_, which mezrecd's
  // summary compares with chunk data only).
  void EmitEvents(std::vector<std::string> lines);
  void AwaitAccepted();
  void WriterLoop();
  // Stops the writer after the queued frames, and finishes the call.
  void Close();
  void MarkBroken(const std::string& why);
  // Turns a failure the writer thread saw into MarkBroken (on the
  // connection's thread, as on_broken promises).
  void CheckWriter();

  SyncRecorderOptions options_;
  ssh::ChannelInfo info_;
  std::string session_id_;
  int64_t start_micros_;
  // The local copy: opened by Start, written by the writer thread while
  // it runs, then by the connection's thread (the hand-over is
  // writer_done_, under queue_mu_).
  std::unique_ptr<spool::SpoolWriter> copy_;
  std::string copy_path_;
  uint64_t copy_reserved_ = 0;             // Budget taken by the copy.
  std::atomic<bool> copy_stopped_{false};  // A write failed: no more.
  // The connection's thread: a copy error to report, and whether it was.
  std::string pending_copy_error_;
  bool copy_failed_ = false;
  bool stream_broke_first_ = false;  // broken before the copy failed
  bool accepted_ = false;            // mezrecd accepted the header.
  uint64_t sent_bytes_ = 0;          // Chunk bytes queued for the stream.
  bool dropped_ = false;             // A frame was not queued (broken).
  bool stream_clean_ = false;        // guarded by queue_mu_: Finish said OK.
  mezite::v1::RecordSummary summary_;
  std::unique_ptr<rpc::ClusterClient> client_;
  std::unique_ptr<rpc::RecordStream> writer_;  // the Record call
  bool closed_ = false;
  bool seen_ready_ = false;
  std::atomic<bool> broken_{false};
  mutable std::mutex mu_;
  std::string broken_message_;  // guarded by mu_

  // The queue between the connection's thread and the writer thread.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;  // frames queued, or closing_
  std::condition_variable room_cv_;   // room made, or writer_failed_
  struct Queued {
    mezite::v1::RecordFrame frame;
    size_t bytes = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::deque<Queued> queue_;
  size_t queued_bytes_ = 0;   // guarded by queue_mu_
  bool closing_ = false;      // guarded by queue_mu_
  bool writer_done_ = false;  // guarded by queue_mu_
  std::string writer_error_;  // guarded by queue_mu_; set once it failed
  std::string copy_error_;    // guarded by queue_mu_: the writer's copy error
  bool copy_error_seen_ = false;  // guarded by queue_mu_
  std::atomic<bool> writer_failed_{false};
  std::thread writer_thread_;
  std::unique_ptr<EventFeed> feed_;  // enhanced recording, else null
};

// The server's tap factory: a SyncRecorder per channel (shell, exec,
// direct-tcpip), all of a connection under its ChannelInfo::connection_id.
ssh::TapFactory MakeSyncTapFactory(SyncRecorderOptions options);

}  // namespace mez::recorder

#endif  // MEZ_RECORDER_SYNC_RECORDER_H_
