// The commands typed at a session's prompt, as player markers, from the
// session's enhanced recording events (docs/formats/enhanced-events.md).
// Which execs count: docs/formats/playback.md, "Command markers".
#ifndef MEZ_PLAY_MARKERS_H_
#define MEZ_PLAY_MARKERS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "libmez/play/player.h"
#include "libmez/record/sink.h"
#include "libmez/util/status.h"

namespace mez::play {

// What the markers are made of: one exec event.
struct ExecEvent {
  int64_t offset_us = 0;  // From the recording's start.
  int64_t pid = 0;
  int64_t ppid = 0;
  int64_t pgid = 0;  // 0: not known (events of older agents)
  std::vector<std::string> argv;
};

// The longest label a marker gets, in bytes (cut at a character).
inline constexpr size_t kMarkerLabelBytes = 200;
// Without process groups to tell pipelines apart, commands started within
// this of each other share a marker.
inline constexpr int64_t kPipelineUs = 100'000;
// The longest event line read (mezrecd stores lines of up to 256 KiB, with
// its offset put first); a longer one is kDataLoss.
inline constexpr size_t kMaxMarkerLineBytes = 300 * 1024;
// Most markers kept: past them the rest of a session has none.
inline constexpr size_t kMaxMarkers = 100'000;

// Builds the markers from exec events given in the order of the events:
// the first exec is the session's shell (or its command); each exec of a
// child of that process is a command typed at the prompt. The commands of
// one pipeline make one marker labelled "a | b": those of one process
// group other than the shell's (a shell with job control makes one per
// pipeline), or, without that, those started within kPipelineUs of each
// other. Execs deeper in the tree (what a script or make runs) are not
// markers. Holds only the markers, not the events.
class CommandMarkerBuilder {
 public:
  void Add(const ExecEvent& e);
  // One stored event line: exec events are added, other types and lines
  // that are not a JSON object with integer "offset_us", "pid" and "ppid"
  // are skipped.
  void AddLine(std::string_view line);
  std::vector<Marker> Finish();

 private:
  std::vector<Marker> markers_;
  bool have_shell_ = false;
  int64_t shell_ = 0;
  int64_t shell_pgid_ = 0;
  int64_t last_start_ = 0;
  int64_t last_pgid_ = 0;
  // The last marker's commands, by the order their processes were forked
  // in (the group's leader first, then by pid), and their labels.
  std::vector<std::pair<int64_t, std::string>> parts_;
};

std::vector<Marker> CommandMarkers(const std::vector<ExecEvent>& execs);

// Most event bytes read for markers: a session's file events can make its
// events far larger than its commands, and playback waits for them.
inline constexpr uint64_t kMaxMarkerEventBytes = 64u << 20;

// Reads event lines from `lines` (EventLines of a source) to its end, or
// to `max_bytes`, setting *cut when it stopped there (the markers are
// then those of the session's first part).
Result<std::vector<Marker>> CommandMarkersFromLines(
    record::ByteSource* lines, uint64_t max_bytes = kMaxMarkerEventBytes,
    bool* cut = nullptr);

}  // namespace mez::play

#endif  // MEZ_PLAY_MARKERS_H_
