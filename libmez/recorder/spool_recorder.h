// node mode (DESIGN.md "modes"): each channel is recorded into a local
// spool file (libmez/spool/spool.h) while the session runs; the Uploader
// sends it to mezrecd afterwards. Nothing depends on mezrecd being
// reachable during the session.
//
// Files in the spool directory:
//   <session>.part    being written (a crash leaves it; the Uploader trims
//                     its torn tail and uploads it, marked incomplete)
//   <session>.spool   closed, waiting for upload
#ifndef MEZ_RECORDER_SPOOL_RECORDER_H_
#define MEZ_RECORDER_SPOOL_RECORDER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "libmez/recorder/events.h"
#include "libmez/recorder/frames.h"
#include "libmez/spool/spool.h"
#include "libmez/ssh/channel_tap.h"
#include "libmez/util/clock.h"

namespace mez::recorder {

// The bytes the spool directory may hold. Thread-safe.
class SpoolBudget {
 public:
  explicit SpoolBudget(uint64_t limit) : limit_(limit) {}
  // Takes `bytes` from the budget; false (and nothing taken) when they do
  // not fit.
  bool Reserve(uint64_t bytes);
  void Release(uint64_t bytes);
  uint64_t used() const { return used_.load(); }
  uint64_t limit() const { return limit_; }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> used_{0};
};

struct SpoolRecorderOptions {
  std::string spool_dir;
  std::string node;
  SpoolBudget* budget = nullptr;
  Clock* clock = nullptr;  // nullptr: RealClock()
  // Called (once per recorder) when the budget is exhausted, with the
  // channel and a one-line description.
  std::function<void(const ssh::ChannelInfo&, const std::string&)> on_full;
  // Called with the path of each closed spool file.
  std::function<void(const std::string&)> on_closed;
  // Enhanced recording (events.h), shell and exec channels only: the
  // header's RecordHeader.enhanced (unset: absent), and the router whose
  // events the recorder writes as RecordEvents frames (null: none).
  std::optional<bool> enhanced;
  EventRouter* events = nullptr;
};

class SpoolRecorder : public ssh::ChannelTap {
 public:
  // Never null: a spool that cannot be created (full budget, disk error)
  // gives a recorder that is broken from the start, so the session ends
  // at once rather than running unrecorded.
  static std::unique_ptr<SpoolRecorder> Start(
      const SpoolRecorderOptions& options, const ssh::ChannelInfo& info);
  // Ends the spool cleanly and hands it to on_closed.
  ~SpoolRecorder() override;

  void OnData(Direction direction, std::string_view bytes,
              int64_t micros) override;
  void OnResize(int width, int height, int64_t micros) override;
  void OnExit(int exit_status, int64_t micros) override;
  // Also appends the enhanced recording events delivered so far.
  std::string EndReason() override;
  Status TrackProcess(pid_t pid) override;

  const std::string& session_id() const { return session_id_; }

 private:
  SpoolRecorder(SpoolRecorderOptions options, ssh::ChannelInfo info)
      : options_(std::move(options)), info_(std::move(info)) {}
  void Append(const mezite::v1::RecordFrame& frame);
  // Appends `lines` (events) as RecordEvents frames stamped now.
  void AppendEvents(std::vector<std::string> lines);
  void Break(const std::string& why);
  void Close();

  SpoolRecorderOptions options_;
  ssh::ChannelInfo info_;
  std::string session_id_;
  std::string part_path_;
  std::unique_ptr<spool::SpoolWriter> writer_;
  std::string broken_message_;
  std::unique_ptr<EventFeed> feed_;  // enhanced recording, else null
};

}  // namespace mez::recorder

#endif  // MEZ_RECORDER_SPOOL_RECORDER_H_
