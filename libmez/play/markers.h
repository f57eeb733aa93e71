// The commands typed at a session's prompt, as player markers, from the
// session's enhanced recording events (docs/formats/enhanced-events.md).
#ifndef MEZ_PLAY_MARKERS_H_
#define MEZ_PLAY_MARKERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "libmez/play/player.h"

namespace mez::play {

// What the markers are made of: one exec event.
struct ExecEvent {
  int64_t offset_us = 0;  // From the recording's start.
  int pid = 0;
  int ppid = 0;
  std::vector<std::string> argv;
};

// The longest label a marker gets, in bytes (cut at a character).
inline constexpr size_t kMarkerLabelBytes = 200;
// Commands started within this of each other (a pipeline) share a marker.
inline constexpr int64_t kPipelineUs = 100'000;

// The session's first exec is its shell (or its command); each exec of a
// child of that process is a command typed at the prompt. The commands of
// one pipeline, started within kPipelineUs of each other, make one marker
// labelled "a | b". Execs deeper in the tree (what a script or make runs)
// are not markers. `execs` in the order of the events.
std::vector<Marker> CommandMarkers(const std::vector<ExecEvent>& execs);

// The exec events among stored event lines (JSON objects with "type",
// "pid", "ppid", "argv" and the offset key `offset_key`); other lines and
// lines that do not parse are skipped.
std::vector<ExecEvent> ExecEventsFromLines(
    const std::vector<std::string>& lines, const std::string& offset_key);

}  // namespace mez::play

#endif  // MEZ_PLAY_MARKERS_H_
